//! The call script against the router itself (no Twilio peer): webhooks signed and posted the way
//! Twilio posts them, the TwiML read back. Every word said comes from the voice templates
//! (`templates/<locale>/call_*.txt`), and a templates directory given in the settings changes it
//! without a rebuild.

use crate::helpers::*;
use chrono::Duration;
use rappel::http::signature::{self, Algorithm};
use std::path::Path;

const AUTH_TOKEN: &str = "voice-test-auth-token-0123456789";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

/// Rappel on the Twilio provider (never reached: nothing is due at Monday 07:00), with the
/// templates of `templates_dir` when given.
async fn spawn_voice_app(templates_dir: Option<&Path>) -> TestApp {
    let templates = templates_dir
        .map(|d| format!("[templates]\ndir = \"{}\"\n", d.display()))
        .unwrap_or_default();
    spawn_configured(paris(wednesday() - Duration::days(2), 7, 0), move |_| {
        format!(
            "[provider]\nkind = \"twilio\"\n\
             [provider.twilio]\nbase_url = \"http://127.0.0.1:9\"\naccount_sid = \"{ACCOUNT}\"\n\
             auth_token = \"{AUTH_TOKEN}\"\n{templates}"
        )
    })
    .await
}

/// Books an appointment on the test Wednesday at 16:00 for `patient` in `locale`, opens its
/// campaign, and returns the attempt key a call of it carries.
async fn book_for_a_call(app: &TestApp, id: &str, patient: &str, locale: &str) -> String {
    book_for_a_call_from(app, id, patient, locale, "+33612340099").await
}

/// [`book_for_a_call`] for a patient of their own (`phone`): not a same-day follower of
/// another booking.
async fn book_for_a_call_from(
    app: &TestApp,
    id: &str,
    patient: &str,
    locale: &str,
    phone: &str,
) -> String {
    app.import(&format!(
        "{CSV_HEADER}{id},paris-nord,RX-THO,{}T16:00,,{patient},{phone},{locale},sms\n",
        wednesday()
    ))
    .await;
    app.engine.plan().await.expect("plan");
    let campaign = app.scalar("SELECT MAX(id) FROM campaigns").await;
    format!("c{campaign}-s3-a1")
}

/// Twilio posts a signed form to `path_and_query`; returns the TwiML.
async fn twilio_posts(app: &TestApp, path_and_query: &str, form: &[(&str, &str)]) -> String {
    let url = app.url(path_and_query);
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = signature::compute(AUTH_TOKEN, &url, &params, Algorithm::HmacSha1);
    let resp = app
        .http
        .post(&url)
        .header("x-twilio-signature", sig)
        .form(&params)
        .send()
        .await
        .expect("webhook");
    assert_eq!(resp.status(), 200, "{path_and_query}");
    resp.text().await.expect("TwiML")
}

/// What the call says, in order, and the stage each `<Gather>` posts back to.
fn said(twiml: &str) -> (Vec<String>, Vec<String>) {
    let doc = roxmltree::Document::parse(twiml).expect("TwiML is XML");
    let says = doc
        .descendants()
        .filter(|n| n.has_tag_name("Say"))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect();
    let stages = doc
        .descendants()
        .filter(|n| n.has_tag_name("Gather"))
        .map(|n| {
            let action = n.attribute("action").unwrap_or_default();
            action
                .rsplit("stage=")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    (says, stages)
}

async fn answer(app: &TestApp, attempt: &str) -> String {
    twilio_posts(
        app,
        &format!("/webhooks/twilio/voice/answer?attempt={attempt}"),
        &[("CallSid", "CA0001"), ("CallStatus", "in-progress")],
    )
    .await
}

async fn press(app: &TestApp, attempt: &str, stage: &str, digits: &str) -> String {
    twilio_posts(
        app,
        &format!("/webhooks/twilio/voice/gather?attempt={attempt}&stage={stage}"),
        &[("CallSid", "CA0001"), ("Digits", digits)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_script_says_the_built_in_prompts_in_the_patients_language() {
    let app = spawn_voice_app(None).await;
    let fr = book_for_a_call(&app, "VF1", "Jeanne Dupont", "fr").await;
    let (says, stages) = said(&answer(&app, &fr).await);
    assert_eq!(
        says,
        [
            "Bonjour, ici Imagerie Paris Nord. Êtes-vous bien Jeanne D. ? Tapez 1 pour oui, 2 pour non.",
            "Nous ne vous avons pas entendu. Au revoir.",
        ]
    );
    assert_eq!(stages, ["identity"]);
    let (says, stages) = said(&press(&app, &fr, "identity", "1").await);
    assert_eq!(stages, ["menu"]);
    assert!(
        says[0].starts_with("Votre rendez-vous est le mercredi ")
            && says[0].ends_with(
                " à 16:00. Tapez 1 pour confirmer, 2 pour annuler, 3 pour être rappelé par le centre, étoile pour réécouter."
            ),
        "{says:?}"
    );
    let (says, stages) = said(&press(&app, &fr, "menu", "2").await);
    assert_eq!(stages, ["cancel"]);
    assert_eq!(
        says,
        ["Pour annuler votre rendez-vous, tapez de nouveau 2. Tapez étoile pour revenir."]
    );

    let en = book_for_a_call(&app, "VE1", "Jane Doe", "en").await;
    let (says, _) = said(&answer(&app, &en).await);
    assert_eq!(
        says,
        [
            "Hello, this is Imagerie Paris Nord. Are you Jane D.? Press 1 for yes, 2 for no.",
            "We did not hear you. Goodbye.",
        ]
    );
    let (says, _) = said(&press(&app, &en, "menu", "*").await);
    assert!(
        says[0].starts_with("Your appointment is on Wednesday "),
        "{says:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_edited_in_the_templates_directory_changes_what_the_call_says() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("fr")).unwrap();
    std::fs::write(
        dir.path().join("fr/call_identity.txt"),
        "Allô, {{ centre }} à l'appareil. Parlons-nous à {{ first_name }} ? Tapez 1 pour oui.\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("fr/call_menu.txt"),
        "Rendez-vous à {{ time }}. Tapez 1 pour confirmer.\n",
    )
    .unwrap();
    let app = spawn_voice_app(Some(dir.path())).await;
    let attempt = book_for_a_call(&app, "VT1", "Jeanne Dupont", "fr").await;
    let (says, _) = said(&answer(&app, &attempt).await);
    assert_eq!(
        says,
        [
            "Allô, Imagerie Paris Nord à l'appareil. Parlons-nous à Jeanne D. ? Tapez 1 pour oui.",
            // Not replaced: still the built-in wording.
            "Nous ne vous avons pas entendu. Au revoir.",
        ]
    );
    let (says, _) = said(&press(&app, &attempt, "identity", "1").await);
    assert_eq!(says, ["Rendez-vous à 16:00. Tapez 1 pour confirmer."]);
}

#[test]
fn check_config_renders_every_voice_prompt_of_every_locale_as_voice() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .args(["check-config", "--config", config])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let table = String::from_utf8_lossy(&ok.stdout);
    for locale in rappel::templates::LOCALES {
        for name in rappel::templates::VOICE_NAMES {
            let line = table
                .lines()
                .find(|l| l.starts_with(&format!("{locale}/{name} ")))
                .unwrap_or_else(|| panic!("no line for {locale}/{name}:\n{table}"));
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols[1], "voice", "{line}");
            assert_eq!(cols[3], "-", "no segment count for a voice prompt: {line}");
        }
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("en")).unwrap();
    std::fs::write(dir.path().join("en/call_menu.txt"), "On {{ dat }}.\n").unwrap();
    let broken = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .args(["check-config", "--config", config])
        .env("RAPPEL__TEMPLATES__DIR", dir.path())
        .output()
        .unwrap();
    assert!(!broken.status.success());
    let err = String::from_utf8_lossy(&broken.stderr);
    assert!(err.contains("en/call_menu"), "{err}");
}

/// The patient says `speech` at `stage` (Twilio's speech recognition result, no key).
async fn speak(app: &TestApp, attempt: &str, stage: &str, speech: &str) -> String {
    twilio_posts(
        app,
        &format!("/webhooks/twilio/voice/gather?attempt={attempt}&stage={stage}"),
        &[
            // One call per attempt: a replayed answer (same call, same words) counts once.
            ("CallSid", &format!("CA{attempt}")),
            ("SpeechResult", speech),
            ("Confidence", "0.9"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_question_understands_the_patient_a_relative_and_only_an_explicit_no() {
    let app = spawn_voice_app(None).await;
    let wrong_person_notes = "SELECT COUNT(*) FROM notes WHERE reason = 'wrong_person'";
    let mut n = 0;
    // The patient, or someone answering for them: on to the menu (nothing recorded yet).
    for (locale, answer) in [
        ("fr", "c'est moi"),
        ("fr", "oui"),
        ("fr", "Lui-même."),
        ("fr", "elle-même"),
        ("fr", "euh oui c'est bien moi"),
        ("fr", "non c'est sa femme, il est au travail"),
        ("en", "Speaking."),
        ("en", "that's me"),
        ("en", "yes"),
    ] {
        n += 1;
        let attempt = book_patient_n(&app, n, locale).await;
        answer_call(&app, &attempt).await;
        let (says, stages) = said(&speak(&app, &attempt, "identity", answer).await);
        assert_eq!(stages, ["menu"], "{answer:?}: {says:?}");
        assert!(
            says[0].starts_with("Votre rendez-vous") || says[0].starts_with("Your appointment"),
            "{answer:?}: {says:?}"
        );
    }
    assert_eq!(app.scalar(wrong_person_notes).await, 0);

    // An explicit no, by voice or key: a wrong person, said goodbye to, noted for the secretaries.
    for (k, (locale, answer)) in [
        ("fr", "non"),
        ("fr", "c'est pas moi, vous vous êtes trompé de numéro"),
        ("en", "wrong number"),
        ("en", "no, not me"),
    ]
    .into_iter()
    .enumerate()
    {
        n += 1;
        let attempt = book_patient_n(&app, n, locale).await;
        answer_call(&app, &attempt).await;
        let twiml = speak(&app, &attempt, "identity", answer).await;
        let (says, stages) = said(&twiml);
        assert!(
            stages.is_empty() && twiml.contains("<Hangup/>"),
            "{answer:?}: {twiml}"
        );
        assert!(
            says == ["Merci, excusez-nous pour le dérangement. Au revoir."]
                || says == ["Thank you, sorry for the trouble. Goodbye."],
            "{answer:?}: {says:?}"
        );
        assert_eq!(
            app.scalar(wrong_person_notes).await,
            k as i64 + 1,
            "{answer:?}"
        );
    }
    n += 1;
    let attempt = book_patient_n(&app, n, "fr").await;
    let (says, _) = said(&press(&app, &attempt, "identity", "2").await);
    assert_eq!(
        says,
        ["Merci, excusez-nous pour le dérangement. Au revoir."]
    );
    assert_eq!(app.scalar(wrong_person_notes).await, 5);

    // Not understood: asked once more; understood the second time, on to the menu.
    n += 1;
    let attempt = book_patient_n(&app, n, "fr").await;
    let (says, stages) = said(&speak(&app, &attempt, "identity", "hein ? allô").await);
    assert_eq!(stages, ["identity_again"]);
    assert_eq!(
        says,
        [
            "Excusez-moi, je n'ai pas bien compris. Êtes-vous bien Jeanne D. ? Dites oui, ou tapez 1 pour oui, 2 pour non.",
            "Nous ne vous avons pas entendu. Au revoir.",
        ]
    );
    let (_, stages) = said(&speak(&app, &attempt, "identity_again", "ah oui c'est moi").await);
    assert_eq!(stages, ["menu"]);
    // Not understood twice: a goodbye, and nothing recorded (not a wrong person).
    let (_, stages) = said(&speak(&app, &attempt, "identity", "qui ça").await);
    assert_eq!(stages, ["identity_again"]);
    let twiml = speak(&app, &attempt, "identity_again", "mmh").await;
    let (says, stages) = said(&twiml);
    assert!(stages.is_empty() && twiml.contains("<Hangup/>"), "{twiml}");
    assert_eq!(says, ["Nous ne vous avons pas entendu. Au revoir."]);
    assert_eq!(app.scalar(wrong_person_notes).await, 5);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM replies WHERE channel = 'call'")
            .await,
        5,
        "only the five wrong persons were recorded as answers"
    );
}

/// Patient number `n` of a test, with a phone of their own; returns the call's attempt key.
async fn book_patient_n(app: &TestApp, n: usize, locale: &str) -> String {
    let (id, phone) = (format!("ID{n}"), format!("+336123402{n:02}"));
    book_for_a_call_from(app, &id, "Jeanne Dupont", locale, &phone).await
}

async fn answer_call(app: &TestApp, attempt: &str) {
    let (_, stages) = said(&answer(app, attempt).await);
    assert_eq!(stages, ["identity"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_medical_statement_said_at_the_menu_reaches_a_person_and_confirms_nothing() {
    let app = spawn_voice_app(None).await;
    let attempt = book_for_a_call(&app, "VU1", "Jeanne Dupont", "fr").await;
    answer_call(&app, &attempt).await;
    said(&speak(&app, &attempt, "identity", "oui c'est moi").await);
    let said_at_menu = "oui je viendrai mais j'ai une pile au coeur";
    let twiml = speak(&app, &attempt, "menu", said_at_menu).await;
    let (says, stages) = said(&twiml);
    assert!(stages.is_empty(), "{twiml}");
    assert_eq!(says, ["Le secrétariat va vous rappeler. Au revoir."]);
    assert_eq!(app.campaign_state("VU1").await, "needs_human");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notes WHERE reason = 'urgent' AND priority = 1")
            .await,
        1
    );
    // The secretaries read the patient's words (the reply's body), not a placeholder.
    let body: String = sqlx::query_scalar("SELECT body FROM replies WHERE channel = 'call'")
        .fetch_one(&app.engine.db.pool)
        .await
        .unwrap();
    assert_eq!(body, said_at_menu);
}
