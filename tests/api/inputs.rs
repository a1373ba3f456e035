//! Hostile and half-broken inputs, as users and providers really send them: a French Excel
//! export, empty or half-written files, duplicates in one API call, NUL characters in a name or a
//! reply body. Each gets a clear refusal naming where it is (exit code 2, a 4xx), or is accepted
//! as a user would expect; never a 500, never a half-written import.

use crate::helpers::*;
use crate::on_both;
use rappel::http::signature::{self, Algorithm};
use serde_json::json;

on_both!(
    two_items_for_one_appointment_in_one_api_call_are_refused_naming_both,
    a_nul_in_a_patient_name_through_the_api_is_a_422_and_writes_nothing,
    a_signed_inbound_reply_with_a_nul_is_stored_without_it_and_answered_200,
    control_characters_in_other_admin_requests_get_4xx_never_500,
);

/// Excel (French Windows), "CSV (séparateur : point-virgule)": `;`, CRLF, Windows-1252 bytes,
/// dates as the cells show them. `rows`: (id, exam, start, patient).
fn excel_french_csv(rows: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    let mut out =
        b"external_id;site;exam_code;start;duration_min;patient_name;phone;locale;channel;salle\r\n"
            .to_vec();
    for (id, exam, start, name) in rows {
        out.extend(format!("{id};paris-nord;{exam};{start};;").as_bytes());
        out.extend(
            name.chars()
                .map(|c| u8::try_from(u32::from(c)).expect("Latin-1")),
        );
        out.extend(b";06 12 34 56 78;fr;sms;Salle 2\r\n");
    }
    out
}

#[test]
fn a_french_excel_export_imports_with_warnings_for_past_rows_and_unknown_exams() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = excel_french_csv(&[
        ("XL1", "IRM-CER", "24/11/2031 14:30", "Hélène Dupré"),
        ("XL2", "ARTHRO-EP", "25/11/2031 09:05", "François Lefèvre"),
        ("XL3", "RX-THO", "06/01/2020 10:00", "Zoé Müller"),
    ]);
    let out = rappel_import(dir.path(), "agenda.csv", &bytes);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("imported 3 appointments"), "{stdout}");
    for expected in [
        "warning: ",
        "Windows-1252",
        "`salle` ignored",
        "exam code `ARTHRO-EP` is not in the configuration (line 3)",
        "1 appointment(s) already started (line 4)",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    let names = tokio::runtime::Runtime::new().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query_scalar::<_, String>(
            "SELECT patient_name FROM appointments ORDER BY external_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    });
    assert_eq!(names, ["Hélène Dupré", "François Lefèvre", "Zoé Müller"]);
}

#[test]
fn every_bad_import_file_exits_2_naming_where_and_writes_nothing() {
    let header =
        "external_id,site,exam_code,start,duration_min,patient_name,phone,locale,channel\n";
    let row =
        |start: &str| format!("B1,paris-nord,RX-THO,{start},,Jeanne Martin,+33612345678,fr,sms\n");
    let mut mixed = format!("{header}{}", row("2031-11-25T10:00"))
        .replace("Jeanne", "Hélène")
        .into_bytes();
    mixed.extend(b"B2,paris-nord,RX-THO,2031-11-25T11:00,,Dupr\xE9,,fr,sms\n");
    let huge = "x".repeat(1 << 20);
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        ("empty.csv", Vec::new(), "empty".into()),
        ("header.csv", header.into(), "no appointments".into()),
        (
            "object.json",
            br#"{"external_id": "B1"}"#.to_vec(),
            "a JSON object".into(),
        ),
        ("null.json", b"null".to_vec(), "`null`".into()),
        ("mixed.csv", mixed, "line 3: byte 0xE9 is not UTF-8".into()),
        (
            "minus.csv",
            format!("{header}{}", row("-2031-11-25T10:00")).into(),
            "line 2: field `start`".into(),
        ),
        (
            "plus.csv",
            format!("{header}{}", row("+12031-11-25T10:00")).into(),
            "outside 2000–2200".into(),
        ),
        (
            "huge.csv",
            format!("{header}{}", row(&huge)).into(),
            "line 2: field `start`".into(),
        ),
        (
            "nul.csv",
            format!("{header}{}", row("2031-11-25T10:00"))
                .replace("Jeanne", "Jea\0nne")
                .into(),
            "line 2: field `patient_name`: contains a control character (U+0000)".into(),
        ),
        (
            "agenda.xlsx",
            b"PK\x03\x04\x14\x00\x06\x00".to_vec(),
            "Excel workbook".into(),
        ),
    ];
    for (name, bytes, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = rappel_import(dir.path(), name, &bytes);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(&says), "{name}: {stderr}");
        assert!(
            stderr.len() < 1_000,
            "{name}: {} bytes of errors",
            stderr.len()
        );
        assert!(
            !dir.path().join("r.db").exists(),
            "{name}: nothing written, not even a database"
        );
    }
}

fn appointment(id: &str, name: &str) -> serde_json::Value {
    json!({"external_id": id, "site": "paris-nord", "exam_code": "RX-THO",
        "start": format!("{}T10:00", wednesday()), "patient_name": name, "phone": "+33612121212"})
}

async fn two_items_for_one_appointment_in_one_api_call_are_refused_naming_both(kind: Kind) {
    let app = spawn_app(kind).await;
    let body = json!([
        appointment("D1", "Jeanne Martin"),
        appointment("D2", "Paul Martin"),
        appointment("D1", "Jeanne Martin-Durand")
    ]);
    let r = app.admin_post("/admin/appointments", body).await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["field"], "[2].external_id");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("[0]") && message.contains("[2]"),
        "{message}"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM appointments").await, 0);
}

async fn a_nul_in_a_patient_name_through_the_api_is_a_422_and_writes_nothing(kind: Kind) {
    let app = spawn_app(kind).await;
    let body = json!([
        appointment("N1", "Jeanne"),
        appointment("N2", "Hélène\u{0}Dupré")
    ]);
    let r = app.admin_post("/admin/appointments", body).await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["field"], "[1].patient_name");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM appointments").await, 0);
    // An unknown key is a program's typo: refused by the API, naming it.
    let mut typo = appointment("N3", "Jeanne");
    typo["phnoe"] = json!("+33612121212");
    let r = app.admin_post("/admin/appointments", json!(typo)).await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["field"], "[0].phnoe");
}

const TWILIO_TOKEN: &str = "test-twilio-auth-token";

async fn a_signed_inbound_reply_with_a_nul_is_stored_without_it_and_answered_200(kind: Kind) {
    let app = spawn_app_with(
        kind,
        &format!(
            "[provider]\nkind = \"twilio\"\n[provider.twilio]\n\
             account_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"{TWILIO_TOKEN}\"\n"
        ),
    )
    .await;
    app.book("W1", 10, 0, "+33612340099").await;
    app.at(paris(wednesday() - chrono::Duration::days(2), 9, 0))
        .await;
    let path = "/webhooks/twilio/messages/inbound";
    let params: Vec<(String, String)> = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("From", "+33612340099"),
        ("To", "+33757000001"),
        ("Body", "oui\0 je serai là\r\n"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // Signed as the provider signs: over the configured public URL and the raw values.
    let public = format!("{}{path}", app.engine.settings.server.public_url);
    let sig = signature::compute(TWILIO_TOKEN, &public, &params, Algorithm::HmacSha1);
    let r = app
        .http
        .post(app.url(path))
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: String = sqlx::query_scalar("SELECT body FROM replies")
        .fetch_one(&app.engine.db.pool)
        .await
        .unwrap();
    assert_eq!(body, "oui je serai là\n");
}

async fn control_characters_in_other_admin_requests_get_4xx_never_500(kind: Kind) {
    let app = spawn_app(kind).await;
    let cancel = app
        .http
        .post(app.url("/admin/appointments/paris-nord/A%001/cancel"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 404);
    for path in ["/admin/campaigns?site=a%00b", "/admin/notes?site=a%00b"] {
        assert_eq!(app.admin_get(path).await.status(), 422, "{path}");
    }
    let r = app
        .admin_post(
            "/admin/sandbox/replies",
            json!({"from": "+33612345678", "body": "oui\u{0}", "id": "SB\u{0}1"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: String = sqlx::query_scalar("SELECT body FROM replies")
        .fetch_one(&app.engine.db.pool)
        .await
        .unwrap();
    assert_eq!(body, "oui");
    // A note from that reply (nobody expected it), resolved by someone whose name has a NUL.
    let notes: serde_json::Value = app.admin_get("/admin/notes").await.json().await.unwrap();
    let id = notes["notes"][0]["id"].as_i64().unwrap();
    let r = app
        .admin_post(
            &format!("/admin/notes/{id}/resolve"),
            json!({"by": "sec\u{0}retary", "resolution": "called"}),
        )
        .await;
    assert_eq!(r.status(), 422);
}
