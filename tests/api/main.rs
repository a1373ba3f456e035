//! Rappel's integration suite: one binary, every scenario on SQLite and on PostgreSQL.

mod config_cli;
mod fhir;
mod helpers;
mod inputs;
mod realtime;
mod structure;
mod twilio;
mod voice;

use chrono::Duration;
use helpers::*;
use serde_json::json;

/// Runs a scenario on both engines: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Kind::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Kind::Postgres).await
            }
        }
    )*};
}

on_both!(
    every_process_of_a_deployment_reads_the_same_simulated_clock,
    a_secretary_records_what_she_settled_by_phone,
    a_patient_who_confirms_is_confirmed_in_the_agenda_and_never_touched_again,
    a_silent_patient_gets_a_nudge_then_calls_then_is_unreachable_with_a_note,
    a_cancel_frees_the_slot_at_once_and_acknowledges_with_the_stop_hint,
    a_moved_appointment_supersedes_its_campaign_and_a_new_one_opens,
    an_appointment_cancelled_by_the_centre_closes_its_campaign_without_a_message,
    the_planner_is_idempotent_and_catches_up_after_downtime,
    two_appointments_of_one_patient_the_same_day_get_one_message,
    a_replayed_reply_changes_nothing,
    replies_nobody_expects_are_handled_without_loss,
    an_opt_out_stops_every_later_message_but_one_confirmation,
    the_admin_api_lists_campaigns_timelines_and_notes,
    a_malformed_api_request_names_the_field_and_changes_nothing,
    a_crash_between_recording_and_sending_never_sends_twice,
);

async fn a_patient_who_confirms_is_confirmed_in_the_agenda_and_never_touched_again(kind: Kind) {
    let mut app = spawn_app(kind).await;
    app.book("A1", 10, 0, "+33612345678").await;
    app.run().await;
    assert_eq!(app.drain_sent().len(), 0, "nothing before the 09:00 window");
    // Monday 09:00 Paris: J-2, the SMS window opens.
    app.at(paris(wednesday() - Duration::days(2), 9, 0)).await;
    let sent = app.drain_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to.as_e164(), "+33612345678");
    assert_eq!(app.campaign_state("A1").await, "awaiting_reply");

    app.clock.advance(Duration::minutes(20));
    let out = app
        .patient_replies("06 12 34 56 78", "oui je serai là")
        .await;
    assert_eq!(out.state.map(|s| s.as_str()), Some("confirmed"));
    assert_eq!(app.appointment_status("A1").await, "confirmed");
    let ack = app.drain_sent();
    assert_eq!(ack.len(), 1, "one acknowledgement");
    assert!(ack[0].client_ref.contains("-s1000-"));

    // Nothing more until the appointment, on any channel.
    app.run_until(paris(wednesday(), 12, 0)).await;
    assert_eq!(app.drain_sent().len(), 0);
    assert_eq!(app.campaign_state("A1").await, "confirmed");
}

async fn a_silent_patient_gets_a_nudge_then_calls_then_is_unreachable_with_a_note(kind: Kind) {
    let mut app = spawn_app(kind).await;
    app.book("S1", 16, 0, "+33611111111").await;
    app.run_until(paris(wednesday(), 16, 0)).await;
    let sent = app.drain_sent();
    let messages: Vec<_> = sent.iter().filter(|s| s.channel.is_message()).collect();
    let calls: Vec<_> = sent.iter().filter(|s| !s.channel.is_message()).collect();
    assert_eq!(messages.len(), 2, "request and nudge");
    assert_eq!(calls.len(), 3, "three call attempts");
    // The nudge goes 4 h after the first SMS, inside the window.
    let gap = messages[1].at - messages[0].at;
    assert_eq!(gap, Duration::hours(4));
    // Every touch inside its window, none later than 2 h before the appointment.
    for s in &sent {
        assert!(
            s.at <= paris(wednesday(), 14, 0),
            "touch after the give-up deadline"
        );
        let local = s.at.with_timezone(&PARIS).time();
        assert!(local >= chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap());
        assert!(local < chrono::NaiveTime::from_hms_opt(19, 30, 0).unwrap());
    }
    assert_eq!(app.campaign_state("S1").await, "unreachable");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notes WHERE reason = 'unreachable'")
            .await,
        1
    );
    // The secretaries learn of it half an hour after the last call, the day before (not two
    // hours before the appointment), as a note to act on today.
    let last_touch = sent.iter().map(|s| s.at).max().unwrap();
    let (created_at, priority): (i64, i64) =
        sqlx::query_as("SELECT created_at, priority FROM notes WHERE reason = 'unreachable'")
            .fetch_one(&app.engine.db.pool)
            .await
            .unwrap();
    assert_eq!(created_at, (last_touch + Duration::minutes(30)).timestamp());
    let notice = paris(wednesday(), 16, 0).timestamp() - created_at;
    assert!(
        notice >= 18 * 3600,
        "told {notice} s before the appointment"
    );
    assert_eq!(
        priority, 2,
        "a day ahead: call today, the slot can still be refilled"
    );
    assert_eq!(
        app.admin_get("/admin/stats")
            .await
            .json::<serde_json::Value>()
            .await
            .unwrap()["unreachable_notice_hours_median"]
            .as_f64()
            .map(|h| h >= 18.0),
        Some(true)
    );
}

async fn a_cancel_frees_the_slot_at_once_and_acknowledges_with_the_stop_hint(kind: Kind) {
    let mut app = spawn_app(kind).await;
    app.book("C1", 11, 30, "+33622222222").await;
    app.at(paris(wednesday() - Duration::days(2), 9, 0)).await;
    app.drain_sent();
    let out = app
        .patient_replies("+33622222222", "je ne pourrai pas venir")
        .await;
    assert_eq!(out.state.map(|s| s.as_str()), Some("cancelled"));
    // Released in the same call, before any worker tick.
    assert_eq!(app.appointment_status("C1").await, "cancelled");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE action = 'release' AND state = 'done'")
            .await,
        1
    );
    let body: String =
        sqlx::query_scalar("SELECT body FROM sandbox_messages WHERE client_ref LIKE '%-s1000-%'")
            .fetch_one(&app.engine.db.pool)
            .await
            .unwrap();
    assert!(
        body.contains("STOP"),
        "the cancel acknowledgement says how to stop messages"
    );
    assert_eq!(app.drain_sent().len(), 1, "the acknowledgement");
    app.run_until(paris(wednesday(), 11, 0)).await;
    assert!(app.drain_sent().is_empty());
}

async fn a_moved_appointment_supersedes_its_campaign_and_a_new_one_opens(kind: Kind) {
    let mut app = spawn_app(kind).await;
    app.book("M1", 10, 0, "+33633333333").await;
    app.at(paris(wednesday() - Duration::days(2), 9, 0)).await;
    assert_eq!(app.drain_sent().len(), 1);
    // The centre moves it to Thursday 15:00.
    let start = format!("{}T15:00", wednesday() + Duration::days(1));
    let report = app
        .import(&format!(
            "{CSV_HEADER}{}",
            csv_row("M1", "paris-nord", "RX-THO", &start, "+33633333333", "")
        ))
        .await;
    assert_eq!(report.moved, 1);
    app.run().await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM campaigns WHERE state = 'expired'")
            .await,
        1
    );
    // Thursday's appointment opens its campaign on Tuesday (J-2), and sends then.
    app.run_until(paris(wednesday() - Duration::days(1), 9, 30))
        .await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM campaigns WHERE state = 'awaiting_reply'")
            .await,
        1
    );
    // The reply now confirms the new version, not the old one.
    let out = app.patient_replies("+33633333333", "ok").await;
    assert_eq!(out.state.map(|s| s.as_str()), Some("confirmed"));
    assert_eq!(app.appointment_status("M1").await, "confirmed");
}

async fn an_appointment_cancelled_by_the_centre_closes_its_campaign_without_a_message(kind: Kind) {
    let mut app = spawn_app(kind).await;
    app.book("U1", 10, 0, "+33644444444").await;
    app.run().await;
    let start = format!("{}T10:00", wednesday());
    app.import(&format!(
        "external_id,site,exam_code,start,duration_min,patient_name,phone,locale,channel,status\n\
         U1,paris-nord,RX-THO,{start},,Patient U1,+33644444444,fr,sms,cancelled\n"
    ))
    .await;
    app.run_until(paris(wednesday(), 10, 0)).await;
    assert!(app.drain_sent().is_empty());
    assert_eq!(app.campaign_state("U1").await, "cancelled_upstream");
}

async fn the_planner_is_idempotent_and_catches_up_after_downtime(kind: Kind) {
    let app = spawn_app(kind).await;
    for i in 0..5 {
        app.book(&format!("P{i}"), 9 + i, 0, &format!("+3365555555{i}"))
            .await;
    }
    let first = app.engine.plan().await.unwrap().opened;
    let again = app.engine.plan().await.unwrap().opened;
    assert_eq!((first, again), (5, 0));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM campaigns").await, 5);
    // Appointments booked while the worker was down for a day are still planned.
    let start = format!("{}T17:00", wednesday());
    app.import(&format!(
        "{CSV_HEADER}{}",
        csv_row("LATE", "paris-nord", "RX-THO", &start, "+33655555559", "")
    ))
    .await;
    app.clock.set(paris(wednesday() - Duration::days(1), 10, 0));
    assert_eq!(app.engine.plan().await.unwrap().opened, 1);
}

async fn two_appointments_of_one_patient_the_same_day_get_one_message(kind: Kind) {
    let mut app = spawn_app(kind).await;
    let day = wednesday();
    app.import(&format!(
        "{CSV_HEADER}{}{}",
        csv_row(
            "G1",
            "paris-nord",
            "RX-THO",
            &format!("{day}T09:00"),
            "+33666666666",
            ""
        ),
        csv_row(
            "G2",
            "paris-nord",
            "ECHO-PEL",
            &format!("{day}T11:00"),
            "+33666666666",
            ""
        )
    ))
    .await;
    app.at(paris(day - Duration::days(2), 9, 0)).await;
    assert_eq!(app.drain_sent().len(), 1, "one message for both");
    let body: String = sqlx::query_scalar("SELECT body FROM sandbox_messages")
        .fetch_one(&app.engine.db.pool)
        .await
        .unwrap();
    assert!(
        body.contains("09:00") && body.contains("11:00"),
        "both times in the message"
    );
    app.patient_replies("+33666666666", "oui").await;
    assert_eq!(app.appointment_status("G1").await, "confirmed");
    assert_eq!(app.appointment_status("G2").await, "confirmed");
}

async fn a_replayed_reply_changes_nothing(kind: Kind) {
    let mut app = spawn_app(kind).await;
    app.book("R1", 10, 0, "+33677777777").await;
    app.at(paris(wednesday() - Duration::days(2), 9, 0)).await;
    app.drain_sent();
    let first = app
        .patient_replies_with_id("+33677777777", "annuler", "SMREPLAY1")
        .await;
    let again = app
        .patient_replies_with_id("+33677777777", "annuler", "SMREPLAY1")
        .await;
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(app.drain_sent().len(), 1, "one acknowledgement only");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM replies").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox").await, 1);
}

async fn replies_nobody_expects_are_handled_without_loss(kind: Kind) {
    let app = spawn_app(kind).await;
    let out = app.patient_replies("+33688888888", "oui").await;
    assert_eq!(out.campaign_id, None);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM notes").await, 1);
    app.book("E1", 10, 0, "+33699999999").await;
    app.at(paris(wednesday() - Duration::days(2), 9, 0)).await;
    let empty = app.patient_replies("+33699999999", "").await;
    assert_eq!(empty.intent.as_str(), "unclear");
    let long = "je ".repeat(1_700);
    let out = app.patient_replies("+33699999999", &long).await;
    assert!(!out.duplicate);
    let stored: String = sqlx::query_scalar("SELECT body FROM replies ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.engine.db.pool)
        .await
        .unwrap();
    assert_eq!(
        stored.chars().count(),
        long.chars().count(),
        "a 5,000-character reply is kept whole"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM replies").await, 3);
}

async fn an_opt_out_stops_every_later_message_but_one_confirmation(kind: Kind) {
    let mut app = spawn_app(kind).await;
    let day = wednesday();
    app.import(&format!(
        "{CSV_HEADER}{}{}",
        csv_row(
            "O1",
            "paris-nord",
            "RX-THO",
            &format!("{day}T09:00"),
            "+33610101010",
            ""
        ),
        csv_row(
            "O2",
            "paris-nord",
            "RX-THO",
            &format!("{}T09:00", day + Duration::days(2)),
            "+33610101010",
            ""
        )
    ))
    .await;
    app.at(paris(day - Duration::days(2), 9, 0)).await;
    app.drain_sent();
    app.patient_replies("+33610101010", "STOP").await;
    assert_eq!(app.drain_sent().len(), 1, "the opt-out is confirmed once");
    app.patient_replies("+33610101010", "STOP").await;
    assert!(app.drain_sent().is_empty(), "no second confirmation");
    // The second appointment's campaign opens later and sends nothing.
    app.run_until(paris(day + Duration::days(2), 9, 0)).await;
    assert!(app.drain_sent().is_empty());
    assert_eq!(app.campaign_state("O2").await, "opted_out");
}

async fn the_admin_api_lists_campaigns_timelines_and_notes(kind: Kind) {
    let app = spawn_app(kind).await;
    app.book("H1", 10, 0, "+33620202020").await;
    app.at(paris(wednesday() - Duration::days(2), 9, 0)).await;
    app.patient_replies("+33620202020", "je suis enceinte, est-ce un problème ?")
        .await;
    let r = app
        .http
        .get(app.url("/admin/campaigns"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no token, no data");
    let r: serde_json::Value = app
        .admin_get("/admin/campaigns")
        .await
        .json()
        .await
        .unwrap();
    let c = &r["campaigns"][0];
    assert_eq!(c["appointment"], "H1");
    assert_eq!(c["phone"], "+336******20", "masked");
    let id = c["id"].as_i64().unwrap();
    let t: serde_json::Value = app
        .admin_get(&format!("/admin/campaigns/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["opened", "sent", "reply"]);
    let notes: serde_json::Value = app.admin_get("/admin/notes").await.json().await.unwrap();
    let note = &notes["notes"][0];
    assert_eq!(note["patient_name"], "Patient H1");
    let nid = note["id"].as_i64().unwrap();
    let r = app
        .admin_post(
            &format!("/admin/notes/{nid}/resolve"),
            json!({"by": "secretary-1", "resolution": "called back"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let open: serde_json::Value = app.admin_get("/admin/notes").await.json().await.unwrap();
    assert_eq!(open["notes"].as_array().unwrap().len(), 0);
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Issue 10, point 4: what a secretary settled by phone reaches the campaign, the agenda and
/// the timeline, with who did it; a note is resolved once.
async fn a_secretary_records_what_she_settled_by_phone(kind: Kind) {
    let mut app = spawn_app(kind).await;
    app.book("P1", 16, 0, "+33611110001").await;
    app.book("P2", 16, 30, "+33611110002").await;
    app.run_until(paris(wednesday(), 16, 0)).await;
    app.drain_sent();
    let notes = app.admin_json("/admin/notes").await;
    let notes = notes["notes"].as_array().unwrap().clone();
    assert_eq!(notes.len(), 2, "both unreachable");
    let note_of = |appointment: &str| {
        notes
            .iter()
            .find(|n| n["appointment"] == appointment)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let resolve = |id: i64, body: serde_json::Value| {
        let app = &app;
        async move {
            app.admin_post(&format!("/admin/notes/{id}/resolve"), body)
                .await
        }
    };
    let r = resolve(
        note_of("P1"),
        json!({"by": "amelie", "resolution": "reached at work", "outcome": "cancelled_by_phone"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.campaign_state("P1").await, "cancelled");
    assert_eq!(
        app.appointment_status("P1").await,
        "cancelled",
        "slot released"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE action = 'release' AND state = 'done'")
            .await,
        1
    );
    let r = resolve(
        note_of("P2"),
        json!({"by": "bruno", "outcome": "confirmed_by_phone"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.campaign_state("P2").await, "confirmed");
    assert_eq!(app.appointment_status("P2").await, "confirmed");
    // The timeline says who did it.
    let campaigns = app.admin_json("/admin/campaigns").await;
    let id = campaigns["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["appointment"] == "P2")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let t = app.admin_json(&format!("/admin/campaigns/{id}")).await;
    let last = t["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "secretary", "{last}");
    assert!(last.to_string().contains("bruno"), "{last}");
    // A second resolve is refused and the first secretary's text is kept.
    let again = resolve(
        note_of("P1"),
        json!({"by": "chloe", "resolution": "overwrite"}),
    )
    .await;
    assert_eq!(again.status(), 409);
    let resolved = app.admin_json("/admin/notes?state=resolved").await;
    let first = resolved["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["appointment"] == "P1")
        .unwrap()
        .clone();
    assert_eq!(first["resolved_by"], "amelie");
    assert_eq!(first["resolution"], "reached at work");
    // An unknown outcome names the field; nothing to do on a missing note.
    assert_eq!(
        resolve(note_of("P2"), json!({"by": "x", "outcome": "maybe"}))
            .await
            .status(),
        422
    );
    assert_eq!(resolve(999_999, json!({"by": "x"})).await.status(), 404);
    // Nothing was sent to either patient after the secretaries took over.
    assert!(app.drain_sent().is_empty());
}

/// Issue 10, point 5: a simulated clock is one per deployment. A second process started later
/// (an import beside `serve`) reads the same simulated "now", not its own restart of
/// `clock.start`.
async fn every_process_of_a_deployment_reads_the_same_simulated_clock(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(kind, dir.path()).await;
    let settings = || {
        let mut layers = rappel::config::read_layers(None).unwrap();
        layers.push(rappel::config::Layer {
            name: "test".into(),
            text: format!(
                "[database]\nurl = \"{url}\"\nmax_connections = 2\n\
                 [clock]\nstart = \"2026-11-23T08:00:00Z\"\nspeed = 60.0\n"
            ),
        });
        rappel::config::load_from(&layers, &[]).unwrap()
    };
    let serve = rappel::app::build_engine(settings(), None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let import = rappel::app::build_engine(settings(), None).await.unwrap();
    let (a, b) = (serve.now(), import.now());
    // 1.5 s at 60× is 90 simulated seconds: a clock restarted per process would be that far off.
    assert!(
        (a - b).num_seconds().abs() <= 5,
        "serve says {a}, the later process says {b}"
    );
    assert!(a >= chrono::DateTime::parse_from_rfc3339("2026-11-23T08:01:00Z").unwrap());
}

async fn a_malformed_api_request_names_the_field_and_changes_nothing(kind: Kind) {
    let app = spawn_app(kind).await;
    let good = json!({"external_id": "X1", "site": "paris-nord", "exam_code": "RX-THO",
        "start": format!("{}T10:00", wednesday()), "patient_name": "A", "phone": "+33612121212"});
    let mut bad = good.clone();
    bad["external_id"] = json!("X2");
    bad["phone"] = json!("06 12 ab");
    let r = app
        .admin_post("/admin/appointments", json!([good, bad]))
        .await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["field"], "[1].phone");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM appointments").await,
        0,
        "all or nothing"
    );
    let r = app
        .admin_post(
            "/admin/appointments",
            json!({"external_id": "X3", "site": "paris-nord"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = app.admin_post("/admin/appointments", json!(good)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM appointments").await, 1);
}

/// Runs `rappel serve` as a real process against the test database.
fn serve(
    app: &TestApp,
    crash_point: Option<&str>,
    log: &std::path::Path,
    port: u16,
) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"));
    cmd.arg("serve")
        .env(
            "RAPPEL_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("RAPPEL__DATABASE__URL", &app.db_url)
        .env("RAPPEL__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("RAPPEL__SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RAPPEL__CLOCK__START", app.now().to_rfc3339())
        .env("RAPPEL__WORKER__CLAIM_LEASE_SECS", "1")
        .env("RAPPEL__WORKER__SWEEP_INTERVAL_MS", "100")
        .env("RAPPEL__WORKER__PLANNER_INTERVAL_SECS", "1")
        .env("RAPPEL__WORKER__BATCH_SIZE", "25")
        // Rappel's own code at its most verbose, its libraries at debug.
        .env("RUST_LOG", "debug,rappel=trace")
        .stdout(std::process::Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        );
    match crash_point {
        Some(p) => cmd.env("RAPPEL_TEST_CRASH_POINT", p),
        None => cmd.env_remove("RAPPEL_TEST_CRASH_POINT"),
    };
    cmd.spawn().expect("start rappel serve")
}

async fn a_crash_between_recording_and_sending_never_sends_twice(kind: Kind) {
    let app = spawn_app(kind).await;
    let n = 120;
    let mut csv = CSV_HEADER.to_string();
    for i in 0..n {
        let start = format!("{}T{:02}:{:02}", wednesday(), 9 + i / 20, (i % 20) * 3);
        csv.push_str(&csv_row(
            &format!("K{i}"),
            "paris-nord",
            "RX-THO",
            &start,
            &format!("+336100{i:05}"),
            "",
        ));
    }
    app.import(&csv).await;
    // Monday 09:05: every first SMS is due as soon as the worker starts.
    app.clock.set(paris(wednesday() - Duration::days(2), 9, 5));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    for point in ["after_record", "after_send"] {
        let mut child = serve(&app, Some(point), &log, 0);
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(!status.success(), "the process must have died at {point}");
    }
    // A plain kill -9 in the middle of the work, then a clean run to the end.
    let mut child = serve(&app, None, &log, 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = serve(&app, None, &log, port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        let sent = app
            .scalar("SELECT COUNT(*) FROM attempts WHERE state = 'sent'")
            .await;
        if sent >= n as i64 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // A patient answers through the running server; neither the number nor the words may be logged.
    let r = app
        .http
        .post(format!("http://127.0.0.1:{port}/admin/sandbox/replies"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"from": "+33610000007", "body": "oui je viens, mot-secret-de-test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    // No lost step: every campaign's first SMS went out. No double send: one provider message
    // per attempt key (the n requests and the one acknowledgement of the reply).
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM attempts WHERE purpose = 'request' AND state = 'sent'")
            .await,
        n as i64
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sandbox_messages").await,
        n as i64 + 1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(DISTINCT client_ref) FROM sandbox_messages")
            .await,
        n as i64 + 1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM campaigns WHERE state = 'awaiting_reply'")
            .await,
        n as i64 - 1
    );
    // And the logs, at trace level, never show a full number or a message body.
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("crash point after_record reached"));
    assert!(
        logs.contains("reply handled"),
        "the reply went through the server"
    );
    assert!(
        !logs.contains("mot-secret-de-test"),
        "a reply body leaked into the logs"
    );
    assert!(
        !logs.contains("Imagerie Paris Nord :"),
        "a message body leaked into the logs"
    );
    for i in 0..n {
        assert!(
            !logs.contains(&format!("336100{i:05}")),
            "a phone number leaked into the logs"
        );
    }
}

#[test]
fn a_malformed_import_names_the_line_and_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let day = wednesday();
    let csv = format!(
        "{CSV_HEADER}{}{}{}",
        csv_row(
            "I1",
            "paris-nord",
            "RX-THO",
            &format!("{day}T10:00"),
            "+33612345678",
            ""
        ),
        csv_row(
            "I2",
            "paris-nord",
            "RX-THO",
            &format!("{day}T25:00"),
            "+33612345679",
            ""
        ),
        csv_row(
            "I3",
            "nowhere",
            "RX-THO",
            &format!("{day}T10:00"),
            "+33612345670",
            ""
        )
    );
    let out = rappel_import(dir.path(), "agenda.csv", csv.as_bytes());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3: field `start`"), "{err}");
    assert!(err.contains("line 4: field `site`"), "{err}");
    assert!(
        !dir.path().join("r.db").exists(),
        "nothing written, not even a database"
    );
}

#[test]
fn a_bad_config_key_is_reported_with_its_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["default.toml", "exams.toml", "sites.toml"] {
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/").to_string() + f,
            dir.path().join(f),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("staging.toml"),
        "[worker]\nbatch_size = \"lots\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .args(["check-config", "--config", dir.path().to_str().unwrap()])
        .env("RAPPEL_ENV", "staging")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("staging.toml") && err.contains("worker.batch_size"),
        "{err}"
    );
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        ])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let table = String::from_utf8_lossy(&ok.stdout);
    assert!(table.contains("fr/request") && (table.contains("GSM-7") || table.contains("UCS-2")));
}
