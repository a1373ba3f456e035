//! The FHIR agenda connector against a real FHIR R4 server: Medplum's `FhirRouter` +
//! `MemoryRepository` behind the small wrapper of `tests/peers/fhir/` (started by
//! `scripts/test.sh`). Each test seeds its own week, so they share one server; the downtime test
//! starts a server of its own, because pausing the shared one would stop the others.
//!
//! What each test proves, given the peer's known limits: Medplum's memory repository returns no
//! `next` links and its transactions are not atomic, so the wrapper adds `next`/`self` links with
//! `_offset` (the pagination test proves Rappel follows them across pages) and writes are tested
//! on their end state on the server (accepted, cancelled + pat-crs + Slot free, extension kept),
//! with the 412 path driven by a real concurrent change on the server.

use crate::helpers::*;
use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

pub struct FhirApp {
    pub app: TestApp,
    pub base: String,
    pub control: String,
    pub day: NaiveDate,
}

/// A Rappel whose Paris site reads its agenda from `base`, on its own week (`week` ≥ 1 after
/// the test Wednesday), with the clock at Monday 07:00 of that week.
pub async fn spawn_fhir_app(base: &str, control: &str, week: i64, page_size: u32) -> FhirApp {
    spawn_fhir_app_on(Kind::Sqlite, base, control, week, page_size).await
}

/// [`spawn_fhir_app`] on a database of this kind.
pub async fn spawn_fhir_app_on(
    kind: Kind,
    base: &str,
    control: &str,
    week: i64,
    page_size: u32,
) -> FhirApp {
    let day = wednesday() + Duration::weeks(week);
    let app = spawn_configured_on(kind, paris(day - Duration::days(2), 7, 0), |_| {
        format!(
            "[worker]\noutbox_backoff_secs = 30\n\
             [sites.paris-nord.agenda]\nkind = \"fhir\"\nbase_url = \"{base}\"\npage_size = {page_size}\ntimeout_ms = 3000\n"
        )
    })
    .await;
    FhirApp {
        app,
        base: base.to_string(),
        control: control.to_string(),
        day,
    }
}

impl FhirApp {
    /// Seeds `count` booked appointments of this week's Wednesday (08:00 + 20 min each).
    async fn seed(&self, count: usize, prefix: &str) -> Value {
        reqwest::Client::new()
            .post(format!("{}/seed", self.control))
            .json(&json!({"day": self.day.to_string(), "tz_offset": "+01:00", "count": count, "prefix": prefix}))
            .send()
            .await
            .expect("seed")
            .json()
            .await
            .expect("seed json")
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}/{path}", self.base))
            .await
            .expect("FHIR GET")
            .json()
            .await
            .expect("json")
    }

    async fn put(&self, path: &str, body: &Value) -> u16 {
        reqwest::Client::new()
            .put(format!("{}/{path}", self.base))
            .header("Content-Type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("FHIR PUT")
            .status()
            .as_u16()
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}/{path}", self.base))
            .header("Content-Type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("FHIR POST");
        assert_eq!(res.status().as_u16(), 201, "FHIR create");
        res.json().await.expect("json")
    }

    /// The centre moves an appointment to `h`:00 the same day, the way a RIS does it: a new busy
    /// Slot at the new time, the old Slot freed, the appointment pointing at the new one.
    async fn move_to(&self, appointment: &str, h: u32) -> String {
        let mut a = self.get(&format!("Appointment/{appointment}")).await;
        let old_slot = a["slot"][0]["reference"].as_str().unwrap().to_string();
        let mut old = self.get(&old_slot).await;
        let (start, end) = (
            format!("{}T{h:02}:00:00+01:00", self.day),
            format!("{}T{h:02}:20:00+01:00", self.day),
        );
        let slot = self
            .post(
                "Slot",
                &json!({"resourceType": "Slot", "schedule": old["schedule"].clone(),
                        "status": "busy", "start": start, "end": end}),
            )
            .await;
        old["status"] = json!("free");
        assert_eq!(self.put(&old_slot, &old).await, 200);
        a["start"] = json!(start);
        a["end"] = json!(end);
        a["slot"] = json!([{"reference": format!("Slot/{}", slot["id"].as_str().unwrap())}]);
        assert_eq!(
            self.put(&format!("Appointment/{appointment}"), &a).await,
            200
        );
        slot["id"].as_str().unwrap().to_string()
    }

    /// The acknowledgements the patients were sent, in order.
    async fn acks(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT body FROM sandbox_messages WHERE client_ref LIKE '%-s100_-%' ORDER BY id",
        )
        .fetch_all(&self.app.engine.db.pool)
        .await
        .expect("acknowledgements")
    }

    async fn phone_of(&self, appointment: &str) -> String {
        sqlx::query_scalar("SELECT phone FROM appointments WHERE external_id = $1")
            .bind(appointment.to_string())
            .fetch_one(&self.app.engine.db.pool)
            .await
            .expect("synced appointment")
    }

    fn monday(&self, h: u32, m: u32) -> chrono::DateTime<chrono::Utc> {
        paris(self.day - Duration::days(2), h, m)
    }
}

fn patient_status(appointment: &Value) -> String {
    appointment["participant"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["actor"]["reference"]
                .as_str()
                .unwrap_or("")
                .starts_with("Patient/")
        })
        .and_then(|p| p["status"].as_str())
        .unwrap_or("")
        .to_string()
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_campaign_on_fhir_writes_accepted_and_cancelled_with_a_free_slot() {
    let f = spawn_fhir_app(
        &peer("RAPPEL_TEST_FHIR_URL"),
        &peer("RAPPEL_TEST_FHIR_CONTROL"),
        1,
        100,
    )
    .await;
    let seeded = f.seed(3, "whole").await;
    let (appts, slots) = (ids(&seeded, "appointments"), ids(&seeded, "slots"));
    f.app.at(f.monday(9, 0)).await;
    assert_eq!(
        f.app.scalar("SELECT COUNT(*) FROM appointments").await,
        3,
        "read from FHIR"
    );
    assert_eq!(
        f.app
            .scalar("SELECT COUNT(*) FROM campaigns WHERE state = 'awaiting_reply'")
            .await,
        3
    );
    // The mobile was chosen over the home landline listed first.
    assert!(f.phone_of(&appts[0]).await.starts_with("+336"));
    f.app.clock.advance(Duration::minutes(30));
    f.app
        .patient_replies(&f.phone_of(&appts[0]).await, "oui je serai là")
        .await;
    f.app
        .patient_replies(&f.phone_of(&appts[1]).await, "je dois annuler")
        .await;
    let confirmed = f.get(&format!("Appointment/{}", appts[0])).await;
    assert_eq!(patient_status(&confirmed), "accepted");
    assert_eq!(confirmed["status"], "booked");
    assert!(
        confirmed["meta"]["tag"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["code"] == "confirmed-by-patient")
    );
    assert_eq!(
        confirmed["extension"][0]["valueString"], "RIS-1",
        "extension preserved"
    );
    let cancelled = f.get(&format!("Appointment/{}", appts[1])).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["cancelationReason"]["coding"][0]["code"],
        "pat-crs"
    );
    assert_eq!(patient_status(&cancelled), "declined");
    assert_eq!(cancelled["extension"][0]["valueString"], "RIS-2");
    assert_eq!(f.get(&format!("Slot/{}", slots[1])).await["status"], "free");
    assert_eq!(f.get(&format!("Slot/{}", slots[0])).await["status"], "busy");
    // The next read sees the cancellation and opens nothing new.
    f.app.clock.advance(Duration::minutes(5));
    f.app.run().await;
    assert_eq!(f.app.scalar("SELECT COUNT(*) FROM campaigns").await, 3);
    assert_eq!(
        f.app
            .scalar("SELECT COUNT(*) FROM outbox WHERE state = 'done'")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_412_is_re_read_and_the_confirmation_re_applied() {
    let f = spawn_fhir_app(
        &peer("RAPPEL_TEST_FHIR_URL"),
        &peer("RAPPEL_TEST_FHIR_CONTROL"),
        2,
        100,
    )
    .await;
    let appts = ids(&f.seed(1, "stale").await, "appointments");
    f.app.at(f.monday(9, 0)).await;
    // The RIS changes the appointment after Rappel read it: Rappel's copy is now stale.
    let mut a = f.get(&format!("Appointment/{}", appts[0])).await;
    a["comment"] = json!("note added by the RIS");
    assert_eq!(f.put(&format!("Appointment/{}", appts[0]), &a).await, 200);
    f.app
        .patient_replies(&f.phone_of(&appts[0]).await, "ok")
        .await;
    let after = f.get(&format!("Appointment/{}", appts[0])).await;
    assert_eq!(patient_status(&after), "accepted");
    assert_eq!(
        after["comment"], "note added by the RIS",
        "the RIS change survives"
    );
    assert_eq!(
        after["extension"][0]["url"],
        "http://example.org/fhir/StructureDefinition/ris-id"
    );
    let requests: Value = reqwest::get(format!("{}/requests", f.control))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stale = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "PUT"
                && r["url"].as_str().unwrap().contains(&appts[0])
                && r["status"] == 412
        })
        .count();
    assert_eq!(stale, 1, "the first write met a 412 and was re-applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_never_frees_an_appointment_the_centre_moved_meanwhile() {
    let f = spawn_fhir_app(
        &peer("RAPPEL_TEST_FHIR_URL"),
        &peer("RAPPEL_TEST_FHIR_CONTROL"),
        3,
        100,
    )
    .await;
    let seeded = f.seed(1, "moved").await;
    let (appts, slots) = (ids(&seeded, "appointments"), ids(&seeded, "slots"));
    f.app.at(f.monday(9, 0)).await;
    let mut a = f.get(&format!("Appointment/{}", appts[0])).await;
    a["start"] = json!(format!("{}T15:00:00+01:00", f.day + Duration::days(1)));
    a["end"] = json!(format!("{}T15:20:00+01:00", f.day + Duration::days(1)));
    assert_eq!(f.put(&format!("Appointment/{}", appts[0]), &a).await, 200);
    f.app
        .patient_replies(&f.phone_of(&appts[0]).await, "annuler")
        .await;
    let after = f.get(&format!("Appointment/{}", appts[0])).await;
    assert_eq!(
        after["status"], "booked",
        "the moved appointment is not cancelled"
    );
    assert_eq!(f.get(&format!("Slot/{}", slots[0])).await["status"], "busy");
    assert_eq!(
        f.app
            .scalar("SELECT COUNT(*) FROM outbox WHERE state = 'failed'")
            .await,
        1
    );
    assert_eq!(
        f.app
            .scalar("SELECT COUNT(*) FROM notes WHERE reason = 'agenda_write_failed'")
            .await,
        1
    );
    // The patient is not told the slot is free: the centre will call.
    let acks = f.acks().await;
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert!(
        acks[0].contains("Le secrétariat va vous appeler"),
        "{}",
        acks[0]
    );
}

/// Issue 10, point 1: the appointment is moved on the server after its first SMS; Rappel sends
/// the new time, the patients answer that new message, and the server ends as they asked:
/// accepted for the one who confirms, cancelled with `pat-crs` and its new Slot free for the one
/// who cancels. Each backend has its own week of the shared server.
async fn a_moved_appointment_s_answer_reaches_the_fhir_server(kind: Kind) {
    let week = if kind == Kind::Sqlite { 7 } else { 8 };
    let f = spawn_fhir_app_on(
        kind,
        &peer("RAPPEL_TEST_FHIR_URL"),
        &peer("RAPPEL_TEST_FHIR_CONTROL"),
        week,
        100,
    )
    .await;
    let appts = ids(&f.seed(2, "moved-answer").await, "appointments");
    f.app.at(f.monday(9, 0)).await;
    assert_eq!(
        f.app
            .scalar("SELECT COUNT(*) FROM campaigns WHERE state = 'awaiting_reply'")
            .await,
        2,
        "both patients were asked"
    );
    let new_slots = [
        f.move_to(&appts[0], 16).await,
        f.move_to(&appts[1], 17).await,
    ];
    f.app.clock.advance(Duration::minutes(10));
    f.app.run().await;
    let new_campaigns = f
        .app
        .scalar(
            "SELECT COUNT(*) FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
             WHERE c.appointment_version = a.version AND a.version = 2 AND c.state = 'awaiting_reply'",
        )
        .await;
    assert_eq!(new_campaigns, 2, "the new times were sent");
    f.app.clock.advance(Duration::minutes(20));
    f.app
        .patient_replies(&f.phone_of(&appts[0]).await, "oui c'est noté")
        .await;
    f.app
        .patient_replies(&f.phone_of(&appts[1]).await, "je ne peux pas, j'annule")
        .await;
    f.app.run().await;
    let confirmed = f.get(&format!("Appointment/{}", appts[0])).await;
    assert_eq!(patient_status(&confirmed), "accepted", "{confirmed}");
    assert_eq!(confirmed["status"], "booked");
    assert_eq!(
        f.get(&format!("Slot/{}", new_slots[0])).await["status"],
        "busy"
    );
    let cancelled = f.get(&format!("Appointment/{}", appts[1])).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["cancelationReason"]["coding"][0]["code"],
        "pat-crs"
    );
    assert_eq!(patient_status(&cancelled), "declined");
    assert_eq!(
        f.get(&format!("Slot/{}", new_slots[1])).await["status"],
        "free",
        "the moved appointment's own slot is freed"
    );
    assert_eq!(
        f.app
            .scalar("SELECT COUNT(*) FROM outbox WHERE state = 'done'")
            .await,
        2
    );
    assert_eq!(f.app.appointment_status(&appts[0]).await, "confirmed");
    assert_eq!(f.app.appointment_status(&appts[1]).await, "cancelled");
}

crate::on_both!(a_moved_appointment_s_answer_reaches_the_fhir_server);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_follows_next_links_over_several_pages() {
    let f = spawn_fhir_app(
        &peer("RAPPEL_TEST_FHIR_URL"),
        &peer("RAPPEL_TEST_FHIR_CONTROL"),
        4,
        10,
    )
    .await;
    f.seed(25, "pages").await;
    f.app.at(f.monday(9, 0)).await;
    assert_eq!(f.app.scalar("SELECT COUNT(*) FROM appointments").await, 25);
    let requests: Value = reqwest::get(format!("{}/requests", f.control))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let day = f.day.to_string();
    let pages = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "GET"
                && r["url"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{}", f.day - Duration::days(2)))
        })
        .filter(|r| {
            r["url"]
                .as_str()
                .unwrap()
                .starts_with("/fhir/R4/Appointment?")
        })
        .count();
    assert!(
        pages >= 3,
        "25 appointments at 10 a page: {pages} page requests ({day})"
    );
}

/// Starts a FHIR server of this test's own (same code as the shared one).
fn own_fhir_server() -> (std::process::Child, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let peers = peer("PEERS_DIR");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("node")
        .arg("--experimental-websocket")
        .arg(format!("{peers}/fhir/server.mjs"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node");
    (child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_lost_to_a_server_outage_lands_when_the_server_returns() {
    let (mut child, root) = own_fhir_server();
    let control = format!("{root}/_control");
    let mut up = false;
    for _ in 0..100 {
        if reqwest::get(format!("{control}/health"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "own FHIR server did not start");
    let f = spawn_fhir_app(&format!("{root}/fhir/R4"), &control, 5, 100).await;
    let seeded = f.seed(1, "outage").await;
    let (appts, slots) = (ids(&seeded, "appointments"), ids(&seeded, "slots"));
    f.app.at(f.monday(9, 0)).await;
    let phone = f.phone_of(&appts[0]).await;
    let client = reqwest::Client::new();
    client
        .post(format!("{control}/pause"))
        .send()
        .await
        .unwrap();
    f.app.patient_replies(&phone, "annulez svp").await;
    // The agenda is down: the patient is told the cancellation is being recorded, not that
    // the slot is free (issue 10, point 2).
    let acks = f.acks().await;
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert!(
        acks[0].contains("bien reçu, nous confirmons votre annulation"),
        "{}",
        acks[0]
    );
    f.app.clock.advance(Duration::seconds(40));
    f.app.run().await;
    assert_eq!(
        f.app
            .scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND tries >= 2")
            .await,
        1,
        "retried with backoff, kept"
    );
    assert_eq!(
        f.acks().await.len(),
        1,
        "one holding message, not one per try"
    );
    client
        .post(format!("{control}/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        f.get(&format!("Appointment/{}", appts[0])).await["status"],
        "booked"
    );
    f.app.clock.advance(Duration::minutes(2));
    f.app.run().await;
    assert_eq!(
        f.get(&format!("Appointment/{}", appts[0])).await["status"],
        "cancelled"
    );
    assert_eq!(f.get(&format!("Slot/{}", slots[0])).await["status"], "free");
    assert_eq!(
        f.app
            .scalar("SELECT COUNT(*) FROM outbox WHERE state = 'done'")
            .await,
        1
    );
    // Now that the agenda took it, the real acknowledgement follows.
    let acks = f.acks().await;
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert!(
        acks[1].contains("est annulé, le créneau est libéré"),
        "{}",
        acks[1]
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appointment_cancelled_or_moved_on_the_server_closes_or_supersedes_its_campaign() {
    let f = spawn_fhir_app(
        &peer("RAPPEL_TEST_FHIR_URL"),
        &peer("RAPPEL_TEST_FHIR_CONTROL"),
        6,
        100,
    )
    .await;
    let appts = ids(&f.seed(2, "upstream").await, "appointments");
    f.app.at(f.monday(9, 0)).await;
    assert_eq!(
        f.app
            .scalar("SELECT COUNT(*) FROM campaigns WHERE state = 'awaiting_reply'")
            .await,
        2
    );
    let mut cancelled = f.get(&format!("Appointment/{}", appts[0])).await;
    cancelled["status"] = json!("cancelled");
    assert_eq!(
        f.put(&format!("Appointment/{}", appts[0]), &cancelled)
            .await,
        200
    );
    let mut moved = f.get(&format!("Appointment/{}", appts[1])).await;
    moved["start"] = json!(format!("{}T17:00:00+01:00", f.day));
    moved["end"] = json!(format!("{}T17:20:00+01:00", f.day));
    assert_eq!(
        f.put(&format!("Appointment/{}", appts[1]), &moved).await,
        200
    );
    f.app.clock.advance(Duration::minutes(10));
    f.app.run().await;
    assert_eq!(f.app.campaign_state(&appts[0]).await, "cancelled_upstream");
    let states: Vec<String> = sqlx::query_scalar(
        "SELECT c.state FROM campaigns c JOIN appointments a ON a.id = c.appointment_id WHERE a.external_id = $1 ORDER BY c.id",
    )
    .bind(appts[1].clone())
    .fetch_all(&f.app.engine.db.pool)
    .await
    .unwrap();
    assert_eq!(
        states[0], "expired",
        "the old version's campaign is superseded"
    );
    assert_eq!(
        states.len(),
        2,
        "a new campaign follows the moved appointment"
    );
}
