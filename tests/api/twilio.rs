//! The Twilio-compatible provider against real peers: Prism in proxy mode (`--errors`) over
//! Twilio's official OpenAPI spec validates every request Rappel makes and every response of the
//! scripted fake provider behind it (`tests/peers/twilio/fake_provider.py`), which signs its
//! callbacks with Twilio's own Python SDK. `scripts/test.sh` starts both and fails the run if
//! Prism logged any violation. Each test uses its own account SID, so they run in parallel.

use crate::helpers::*;
use chrono::Duration;
use serde_json::{Value, json};

pub struct TwilioApp {
    pub app: TestApp,
    pub account: String,
    pub fake: String,
}

pub const WA_TEMPLATE: &str = "HX0123456789abcdef0123456789abcdef";

pub async fn spawn_twilio_app() -> TwilioApp {
    let prism = peer("RAPPEL_TEST_TWILIO_URL");
    let fake = peer("RAPPEL_TEST_TWILIO_FAKE_URL");
    let token = peer("RAPPEL_TEST_TWILIO_AUTH_TOKEN");
    let account = format!("AC{}", uuid::Uuid::new_v4().simple());
    let acc = account.clone();
    let app = spawn_configured(paris(wednesday() - Duration::days(2), 7, 0), move |_| {
        format!(
            "[provider]\nkind = \"twilio\"\n\
             [provider.twilio]\nbase_url = \"{prism}\"\naccount_sid = \"{acc}\"\nauth_token = \"{token}\"\n\
             messages_per_second = 20.0\ntimeout_ms = 2000\n\
             [sites.paris-nord.whatsapp_templates]\nfr = \"{WA_TEMPLATE}\"\n"
        )
    })
    .await;
    TwilioApp { app, account, fake }
}

impl TwilioApp {
    async fn control(&self, what: &str) -> Value {
        reqwest::get(format!("{}/_fake/{}/{what}", self.fake, self.account))
            .await
            .expect("fake provider")
            .json()
            .await
            .expect("json")
    }

    /// Waits until the fake provider has no call or callback still playing out.
    async fn settle(&self) {
        for _ in 0..200 {
            let p = self.control("pending").await;
            if p["pending"].as_i64() == Some(0) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the fake provider did not settle");
    }

    /// API requests the fake received (through Prism) for this account, by resource.
    async fn requests(&self, resource: &str) -> Vec<Value> {
        self.control("requests")
            .await
            .as_array()
            .expect("list")
            .iter()
            .filter(|r| {
                r["method"] == "POST" && r["path"].as_str().unwrap_or("").ends_with(resource)
            })
            .cloned()
            .collect()
    }

    async fn patient_sends(
        &self,
        from: &str,
        body: &str,
        channel: &str,
        button: Option<&str>,
    ) -> Value {
        let mut req = json!({
            "url": self.app.url("/webhooks/twilio/messages/inbound"),
            "from": from, "to": "+33757000001", "body": body, "channel": channel,
        });
        if let Some(b) = button {
            req["button_payload"] = json!(b);
            req["button_text"] = json!(body);
        }
        reqwest::Client::new()
            .post(format!("{}/_fake/{}/inbound", self.fake, self.account))
            .json(&req)
            .send()
            .await
            .expect("fake inbound")
            .json()
            .await
            .expect("json")
    }

    async fn step(&self, at: chrono::DateTime<chrono::Utc>) {
        self.app.at(at).await;
        self.settle().await;
        self.app.run().await;
    }
}

fn form<'a>(r: &'a Value, key: &str) -> Vec<&'a str> {
    r["form"][key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_then_nudge_then_a_call_answered_by_a_human_who_presses_1_confirms_in_the_agenda() {
    let t = spawn_twilio_app().await;
    t.app.book("T1", 16, 0, "+33612340011").await;
    let monday = wednesday() - Duration::days(2);
    t.step(paris(monday, 9, 0)).await;
    t.step(paris(monday, 13, 0)).await;
    t.step(paris(monday, 14, 0)).await;
    let messages = t.requests("/Messages.json").await;
    assert_eq!(messages.len(), 2, "request and nudge: {messages:#?}");
    for m in &messages {
        assert_eq!(m["status"], 201);
        assert_eq!(form(m, "To"), ["+33612340011"]);
        assert!(
            form(m, "StatusCallback")[0].contains("/webhooks/twilio/messages/status?attempt=c")
        );
    }
    let calls = t.requests("/Calls.json").await;
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        form(call, "StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(form(call, "MachineDetection"), ["DetectMessageEnd"]);
    assert_eq!(form(call, "AsyncAmd"), ["true"]);
    // The call script: identity first, then the menu, both `<Gather input="dtmf speech">`.
    let twiml = t.control("twiml").await;
    let bodies: Vec<&str> = twiml
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["body"].as_str().unwrap_or(""))
        .collect();
    assert!(bodies.len() >= 3, "{bodies:#?}");
    for x in twiml.as_array().unwrap() {
        assert!(x["content_type"].as_str().unwrap().starts_with("text/xml"));
    }
    let first = roxmltree::Document::parse(bodies[0]).expect("TwiML is XML");
    let gather = first
        .descendants()
        .find(|n| n.has_tag_name("Gather"))
        .expect("a Gather");
    assert_eq!(gather.attribute("input"), Some("dtmf speech"));
    assert!(
        gather
            .attribute("action")
            .unwrap()
            .contains("stage=identity")
    );
    let say = gather
        .children()
        .find(|n| n.has_tag_name("Say"))
        .expect("a Say");
    assert_eq!(say.attribute("language"), Some("fr-FR"));
    assert!(
        !say.text().unwrap().contains("16:00"),
        "no detail before the identity check"
    );
    let menu = roxmltree::Document::parse(bodies[1]).unwrap();
    assert!(
        menu.descendants()
            .any(|n| n.has_tag_name("Gather")
                && n.attribute("action").unwrap().contains("stage=menu"))
    );
    assert_eq!(t.app.campaign_state("T1").await, "confirmed");
    assert_eq!(t.app.appointment_status("T1").await, "confirmed");
    // Delivery callbacks arrived signed and were accepted.
    let callbacks = t.control("callbacks").await;
    assert!(
        callbacks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"].as_i64().unwrap() < 300),
        "{callbacks:#?}"
    );
    assert_eq!(
        t.app
            .scalar("SELECT COUNT(*) FROM attempts WHERE channel = 'sms' AND state = 'delivered'")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_where_the_patient_presses_2_then_2_releases_the_slot() {
    let t = spawn_twilio_app().await;
    t.app.book("T2", 16, 0, "+33612340122").await;
    let monday = wednesday() - Duration::days(2);
    for (h, m) in [(9, 0), (13, 0), (14, 0)] {
        t.step(paris(monday, h, m)).await;
    }
    assert_eq!(t.app.campaign_state("T2").await, "cancelled");
    assert_eq!(t.app.appointment_status("T2").await, "cancelled");
    let twiml = t.control("twiml").await;
    let cancel_prompt = twiml
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["body"].as_str().unwrap_or("").contains("stage=cancel"));
    assert!(cancel_prompt, "a second 2 is asked before cancelling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_template_opens_the_conversation_and_a_quick_reply_confirms() {
    let t = spawn_twilio_app().await;
    let start = format!("{}T10:00", wednesday());
    t.app
        .import(&format!(
            "{CSV_HEADER}W1,paris-nord,RX-THO,{start},,Patient W1,+33612340077,fr,whatsapp\n"
        ))
        .await;
    t.step(paris(wednesday() - Duration::days(2), 9, 0)).await;
    let messages = t.requests("/Messages.json").await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(form(m, "To"), ["whatsapp:+33612340077"]);
    assert_eq!(form(m, "From"), ["whatsapp:+33757000002"]);
    assert_eq!(form(m, "ContentSid"), [WA_TEMPLATE]);
    assert!(
        form(m, "Body").is_empty(),
        "no free text outside the 24 h window"
    );
    let vars: Value = serde_json::from_str(form(m, "ContentVariables")[0]).unwrap();
    assert_eq!(vars["3"], "10:00");
    let r = t
        .patient_sends(
            "+33612340077",
            "Je confirme",
            "whatsapp",
            Some("confirm_appt"),
        )
        .await;
    assert_eq!(r["status"], 200);
    t.settle().await;
    assert_eq!(t.app.campaign_state("W1").await, "confirmed");
    // The acknowledgement is free text: the patient just wrote, the window is open. It goes
    // out once the agenda took the confirmation, after the webhook answered: wait for it.
    let mut messages = t.requests("/Messages.json").await;
    for _ in 0..100 {
        if messages.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        messages = t.requests("/Messages.json").await;
    }
    assert_eq!(messages.len(), 2);
    assert!(form(&messages[1], "ContentSid").is_empty());
    assert!(!form(&messages[1], "Body").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_undelivered_to_a_landline_30006_moves_to_a_call_at_once() {
    let t = spawn_twilio_app().await;
    t.app.book("T4", 16, 0, "+33612340006").await;
    let monday = wednesday() - Duration::days(2);
    t.step(paris(monday, 9, 0)).await;
    assert_eq!(
        t.app
            .scalar("SELECT COUNT(*) FROM attempts WHERE error_code = '30006'")
            .await,
        1
    );
    // Next call window: Monday 10:00, not the nudge 4 h later.
    let due: i64 = sqlx::query_scalar("SELECT due_at FROM campaigns")
        .fetch_one(&t.app.engine.db.pool)
        .await
        .unwrap();
    assert_eq!(due, paris(monday, 10, 0).timestamp());
    t.step(paris(monday, 10, 0)).await;
    assert_eq!(t.requests("/Calls.json").await.len(), 1);
    assert_eq!(
        t.requests("/Messages.json").await.len(),
        1,
        "no nudge SMS to a landline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_after_creation_or_a_timeout_never_leads_to_a_second_message() {
    let t = spawn_twilio_app().await;
    t.app.book("R5", 16, 0, "+33612340500").await;
    t.app.book("R8", 16, 30, "+33612340408").await;
    let monday = wednesday() - Duration::days(2);
    t.step(paris(monday, 9, 0)).await;
    // A later pass (lease expiry, worker restart) must not send again either.
    t.step(paris(monday, 9, 10)).await;
    let messages = t.requests("/Messages.json").await;
    let to = |n: &str| messages.iter().filter(|m| form(m, "To") == [n]).count();
    assert_eq!(to("+33612340500"), 1, "one POST despite the 500");
    assert_eq!(to("+33612340408"), 1, "one POST despite the timeout");
    let stored = t.control("messages").await;
    assert_eq!(
        stored.as_array().unwrap().len(),
        2,
        "the provider holds exactly one message each"
    );
    assert_eq!(
        t.app
            .scalar("SELECT COUNT(*) FROM attempts WHERE state IN ('sent', 'delivered')")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_is_retried_later_and_loses_nothing() {
    let t = spawn_twilio_app().await;
    let day = wednesday();
    let mut csv = CSV_HEADER.to_string();
    for i in 0..10 {
        csv.push_str(&csv_row(
            &format!("Q{i}"),
            "paris-nord",
            "RX-THO",
            &format!("{day}T16:{i:02}"),
            &format!("+336120{i}0429"),
            "",
        ));
    }
    t.app.import(&csv).await;
    let monday = day - Duration::days(2);
    t.step(paris(monday, 9, 0)).await;
    for minute in 1..=5 {
        t.step(paris(monday, 9, minute)).await;
    }
    let posts = t.requests("/Messages.json").await;
    let limited = posts.iter().filter(|p| p["status"] == 429).count();
    assert!(limited >= 3, "the storm happened: {limited} refusals");
    for i in 0..10 {
        let n = format!("+336120{i}0429");
        let ok = posts
            .iter()
            .filter(|p| p["status"] == 201 && form(p, "To") == [n.as_str()])
            .count();
        assert_eq!(ok, 1, "{n}: exactly one accepted message");
    }
    assert_eq!(
        t.app
            .scalar("SELECT COUNT(*) FROM campaigns WHERE state = 'awaiting_reply'")
            .await,
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_missing_or_replayed_webhooks_change_nothing() {
    let t = spawn_twilio_app().await;
    t.app.book("F1", 16, 0, "+33612340033").await;
    t.step(paris(wednesday() - Duration::days(2), 9, 0)).await;
    let url = t.app.url("/webhooks/twilio/messages/inbound");
    let form = [
        ("MessageSid", "SMforged"),
        ("From", "+33612340033"),
        ("To", "+33757000001"),
        ("Body", "annuler"),
    ];
    let missing = t.app.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(missing.status(), 403);
    let forged = t
        .app
        .http
        .post(&url)
        .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(t.app.scalar("SELECT COUNT(*) FROM replies").await, 0);
    assert_eq!(t.app.campaign_state("F1").await, "awaiting_reply");
    // A genuine reply, then the provider replays its last callback: harmless.
    let r = t.patient_sends("+33612340033", "oui", "sms", None).await;
    assert_eq!(r["status"], 200);
    t.settle().await;
    let replay: Value = reqwest::Client::new()
        .post(format!(
            "{}/_fake/{}/replay-last-callback",
            t.fake, t.account
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(replay["status"].as_i64().unwrap() < 300, "{replay}");
    assert_eq!(t.app.scalar("SELECT COUNT(*) FROM replies").await, 1);
    assert_eq!(t.app.campaign_state("F1").await, "confirmed");
}

#[test]
fn the_auth_token_never_appears_in_output_or_errors() {
    let token = "sk-live-super-secret-token-123456";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .args(["check-config"])
        .env(
            "RAPPEL_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("RAPPEL__PROVIDER__KIND", "twilio")
        .env("RAPPEL__PROVIDER__TWILIO__ACCOUNT_SID", "ACnot-a-valid-sid")
        .env("RAPPEL__PROVIDER__TWILIO__AUTH_TOKEN", token)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("provider.twilio.account_sid"), "{all}");
    assert!(!all.contains(token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answering_machine_gets_one_short_voicemail_per_appointment() {
    let t = spawn_twilio_app().await;
    t.app.book("V1", 18, 0, "+33612340062").await;
    let monday = wednesday() - Duration::days(2);
    for (h, m) in [(9, 0), (13, 0), (14, 0), (17, 0)] {
        t.step(paris(monday, h, m)).await;
    }
    assert_eq!(
        t.requests("/Calls.json").await.len(),
        2,
        "two call attempts"
    );
    let updates: Vec<Value> = t
        .control("requests")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap_or("").contains("/Calls/CA"))
        .cloned()
        .collect();
    assert_eq!(updates.len(), 2, "{updates:#?}");
    let first = form(&updates[0], "Twiml")[0];
    let doc = roxmltree::Document::parse(first).expect("voicemail TwiML");
    let said = doc
        .descendants()
        .find(|n| n.has_tag_name("Say"))
        .and_then(|n| n.text())
        .unwrap();
    assert!(
        said.contains("3 3 1 4 2"),
        "the centre's number, read out: {said}"
    );
    assert!(
        !said.contains("18:00") && !said.contains("RX"),
        "no appointment detail on a voicemail"
    );
    assert!(doc.descendants().any(|n| n.has_tag_name("Hangup")));
    let second = form(&updates[1], "Twiml")[0];
    assert!(
        !second.contains("<Say"),
        "only one voicemail per appointment: {second}"
    );
}
