//! Twilio webhooks: inbound messages, message status, call status, answering-machine detection,
//! and the TwiML call script. Every request must carry a valid `X-Twilio-Signature` computed over
//! the configured public URL (forged, missing or stale signatures get 403 and change nothing),
//! and every handler is idempotent by the provider's id: providers retry and reorder callbacks.
//!
//! The call script: identity check first (no detail before the person says who they are), then
//! the appointment, then 1 confirm, 2 cancel (2 again to be sure), 3 to be called back by the
//! centre, `*` to repeat; speech goes through the reply classifier. An answering machine gets one
//! short voicemail per appointment with no health data and the centre's number. Every word said
//! is a template (`templates/<locale>/call_*.txt`, see [`crate::templates::VOICE_NAMES`]); this
//! file only chooses which prompt comes next and wraps it in TwiML.

use super::error::ApiError;
use super::signature::{self, Algorithm};
use crate::domain::policy::from_unix;
use crate::domain::reply::{self, Intent};
use crate::domain::text;
use crate::domain::types::{Channel, PhoneNumber};
use crate::engine::{Engine, Inbound, ProviderStatus};
use crate::store::events::{self, NewEvent};
use crate::store::notes::{self, NewNote};
use crate::store::{calls, campaigns};
use crate::templates::MessageContext;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::ExposeSecret;

pub fn routes() -> Router<Engine> {
    Router::new()
        .route("/webhooks/twilio/messages/inbound", post(inbound))
        .route("/webhooks/twilio/messages/status", post(message_status))
        .route("/webhooks/twilio/voice/status", post(call_status))
        .route("/webhooks/twilio/voice/amd", post(amd))
        .route("/webhooks/twilio/voice/answer", post(answer))
        .route("/webhooks/twilio/voice/gather", post(gather))
}

/// A verified webhook's form parameters.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn query_param<'a>(query: &'a Option<String>, key: &str) -> Option<&'a str> {
    query
        .as_deref()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Checks the signature against `public_url + path + query`; 403 when it does not match.
#[allow(clippy::result_large_err)] // the error is the response itself, built once per request
fn verify(
    e: &Engine,
    path: &str,
    query: &Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Form, Response> {
    let forbidden = || (StatusCode::FORBIDDEN, "invalid signature").into_response();
    let Some(tw) = &e.settings.twilio else {
        return Err((StatusCode::NOT_FOUND, "twilio provider not configured").into_response());
    };
    let sig = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(forbidden)?;
    let alg = Algorithm::from_settings_header(
        headers
            .get("x-twilio-webhooks-signature-settings")
            .and_then(|v| v.to_str().ok()),
    );
    let mut url = format!(
        "{}{path}",
        e.settings.server.public_url.trim_end_matches('/')
    );
    if let Some(q) = query.as_deref().filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    let params: Vec<(String, String)> = form_urlencoded(body);
    if !signature::validate_form(tw.auth_token.expose_secret(), &url, &params, sig, alg) {
        tracing::warn!(path, "webhook with an invalid signature refused");
        return Err(forbidden());
    }
    // Signed over the raw values; stored without their control characters (PostgreSQL refuses a
    // NUL in text, and a refused reply would be retried by the provider and never stored).
    Ok(Form(
        params
            .into_iter()
            .map(|(k, v)| (k, text::strip_controls(&v)))
            .collect(),
    ))
}

fn form_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

fn twiml(xml: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response()
}

fn empty_twiml() -> Response {
    twiml("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".into())
}

fn internal(e: anyhow::Error) -> Response {
    ApiError::Internal(e).into_response()
}

/// WhatsApp quick-reply payloads Rappel's templates use (`confirm`, `cancel`, `reschedule`;
/// any suffix such as `confirm_appt_42` is allowed).
pub fn button_intent(payload: &str) -> Option<Intent> {
    let p = payload.to_ascii_lowercase();
    [
        ("confirm", Intent::Confirm),
        ("cancel", Intent::Cancel),
        ("reschedule", Intent::Reschedule),
        ("stop", Intent::OptOut),
    ]
    .into_iter()
    .find(|(k, _)| p.starts_with(k))
    .map(|(_, i)| i)
}

async fn inbound(
    State(e): State<Engine>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = match verify(&e, "/webhooks/twilio/messages/inbound", &q, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let raw_from = form.get("From").unwrap_or_default();
    let (channel, number) = match raw_from.strip_prefix("whatsapp:") {
        Some(n) => (Channel::Whatsapp, n),
        None => (Channel::Sms, raw_from),
    };
    let Ok(from) = PhoneNumber::parse(number) else {
        tracing::warn!("inbound message from an unparseable number ignored");
        return empty_twiml();
    };
    let Some(sid) = form.get("MessageSid") else {
        return (StatusCode::BAD_REQUEST, "MessageSid missing").into_response();
    };
    let button = form.get("ButtonPayload").and_then(button_intent);
    let text = form
        .get("Body")
        .or(form.get("ButtonText"))
        .unwrap_or_default();
    let mut msg = Inbound::text(sid, from, channel, text);
    msg.intent = button;
    msg.to = form.get("To").map(str::to_string);
    // Answered as soon as the reply is durably recorded; the acknowledgement and the agenda
    // write-backs follow (recovered by their timers if the process stops before).
    match e.receive_inbound(msg).await {
        Ok((_, follow_up)) => {
            let engine = e.clone();
            tokio::spawn(async move {
                if let Err(err) = follow_up.run(&engine).await {
                    tracing::warn!(error = %format!("{err:#}"), "reply follow-up failed; its timers will retry it");
                }
            });
            empty_twiml()
        }
        Err(err) => internal(err),
    }
}

async fn message_status(
    State(e): State<Engine>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = match verify(&e, "/webhooks/twilio/messages/status", &q, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (Some(sid), Some(status)) = (form.get("MessageSid"), form.get("MessageStatus")) else {
        return (
            StatusCode::BAD_REQUEST,
            "MessageSid and MessageStatus required",
        )
            .into_response();
    };
    if let Some(code) = form.get("ErrorCode").filter(|c| !c.is_empty()) {
        tracing::info!(message_sid = sid, status, code, "delivery failure reported");
    }
    apply_status(&e, &q, sid, status, form.get("ErrorCode")).await
}

async fn call_status(
    State(e): State<Engine>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = match verify(&e, "/webhooks/twilio/voice/status", &q, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (Some(sid), Some(status)) = (form.get("CallSid"), form.get("CallStatus")) else {
        return (StatusCode::BAD_REQUEST, "CallSid and CallStatus required").into_response();
    };
    apply_status(&e, &q, sid, status, form.get("ErrorCode")).await
}

/// Applies a message or call status to the attempt its callback URL names (or, for a callback
/// URL without one, to the attempt of that provider id).
async fn apply_status(
    e: &Engine,
    q: &Option<String>,
    sid: &str,
    status: &str,
    error_code: Option<&str>,
) -> Response {
    let s = ProviderStatus {
        provider_id: sid.to_string(),
        attempt: query_param(q, "attempt").map(str::to_string),
        status: status.to_string(),
        error_code: error_code.map(str::to_string),
    };
    match e.provider_status(&s).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => internal(err),
    }
}

async fn amd(
    State(e): State<Engine>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = match verify(&e, "/webhooks/twilio/voice/amd", &q, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (Some(sid), Some(by)) = (form.get("CallSid"), form.get("AnsweredBy")) else {
        return (StatusCode::BAD_REQUEST, "CallSid and AnsweredBy required").into_response();
    };
    if !by.starts_with("machine") {
        return StatusCode::NO_CONTENT.into_response();
    }
    match e.answering_machine(sid, query_param(&q, "attempt")).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => internal(err),
    }
}

/// Voice and language per locale for `<Say>`.
fn voice(locale: &str) -> (&'static str, &'static str) {
    if locale == "en" {
        ("Polly.Amy", "en-GB")
    } else {
        ("Polly.Lea", "fr-FR")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn say(locale: &str, text: &str) -> String {
    let (v, lang) = voice(locale);
    format!(
        "<Say voice=\"{v}\" language=\"{lang}\">{}</Say>",
        xml_escape(text)
    )
}

fn gather_verb(e: &Engine, locale: &str, attempt: &str, stage: &str, prompt: &str) -> String {
    let (_, lang) = voice(locale);
    let action = format!(
        "{}/webhooks/twilio/voice/gather?attempt={attempt}&amp;stage={stage}",
        e.settings.server.public_url.trim_end_matches('/')
    );
    format!(
        "<Gather input=\"dtmf speech\" numDigits=\"1\" timeout=\"6\" speechTimeout=\"auto\" language=\"{lang}\" action=\"{action}\" method=\"POST\">{}</Gather>",
        say(locale, prompt)
    )
}

fn response(inner: String) -> Response {
    twiml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{inner}</Response>"
    ))
}

fn campaign_of_attempt(attempt: &str) -> Option<i64> {
    attempt.strip_prefix('c')?.split('-').next()?.parse().ok()
}

/// The TwiML of a rendered script step, or the opaque 500 of its error.
fn script_response(step: anyhow::Result<String>) -> Response {
    match step {
        Ok(inner) => response(inner),
        Err(err) => internal(err),
    }
}

async fn answer(
    State(e): State<Engine>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = verify(&e, "/webhooks/twilio/voice/answer", &q, &headers, &body) {
        return r;
    }
    let Some(attempt) = query_param(&q, "attempt").map(str::to_string) else {
        return (StatusCode::BAD_REQUEST, "attempt missing").into_response();
    };
    let script = match e
        .call_script(campaign_of_attempt(&attempt).unwrap_or(-1))
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => return response("<Hangup/>".into()),
        Err(err) => return internal(err),
    };
    script_response(script.greeting(&e, &attempt))
}

async fn gather(
    State(e): State<Engine>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = match verify(&e, "/webhooks/twilio/voice/gather", &q, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (Some(attempt), Some(stage)) = (
        query_param(&q, "attempt").map(str::to_string),
        query_param(&q, "stage").map(str::to_string),
    ) else {
        return (StatusCode::BAD_REQUEST, "attempt and stage required").into_response();
    };
    let Some(campaign_id) = campaign_of_attempt(&attempt) else {
        return (StatusCode::BAD_REQUEST, "bad attempt").into_response();
    };
    let script = match e.call_script(campaign_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return response("<Hangup/>".into()),
        Err(err) => return internal(err),
    };
    let digits = form.get("Digits").unwrap_or_default().trim().to_string();
    let speech = form.get("SpeechResult").unwrap_or_default().to_string();
    // Speech goes through the classifier (the identity question has its own); a digit is an
    // explicit choice.
    let choice = if stage.starts_with("identity") {
        let said = if digits.is_empty() { &speech } else { &digits };
        match reply::identity(said) {
            id if id.goes_on() => "1".into(),
            reply::Identity::NotThePatient => "2".into(),
            _ => "?".into(),
        }
    } else if !digits.is_empty() {
        digits
    } else {
        let lang = reply::Lang::parse(&script.locale);
        match reply::classify(&speech, lang, &Default::default()).intent {
            Intent::Confirm => "1".into(),
            Intent::Cancel => "2".into(),
            Intent::Reschedule | Intent::Question => "3".into(),
            // Anything medical is for a person: never a confirmation by voice.
            Intent::Urgent => "urgent".into(),
            _ => "?".into(),
        }
    };
    let turn = Turn {
        attempt: &attempt,
        call_sid: form.get("CallSid").unwrap_or_default(),
    };
    if choice == "urgent" {
        let recorded = script
            .record_said(&e, &turn, Intent::Urgent, "speech-urgent", &speech)
            .await;
        return script_response(recorded.and_then(|()| script.bye(&e, "call_callback")));
    }
    script_response(script.next(&e, &turn, &stage, &choice).await)
}

/// One answer of the patient during a call.
struct Turn<'a> {
    /// The attempt key (`c<campaign>-s<step>-a<attempt>`) the gather actions carry.
    attempt: &'a str,
    call_sid: &'a str,
}

/// What the call script needs of a campaign: its locale, the patient's number, and the context
/// its prompts render with (no more than the first name and initial, the date and time, the
/// centre and its number).
pub struct CallScript {
    pub campaign_id: i64,
    pub locale: String,
    pub phone: PhoneNumber,
    pub context: MessageContext,
}

impl CallScript {
    /// The start of the call: the identity check, then a goodbye when nobody answered it.
    fn greeting(&self, e: &Engine, attempt: &str) -> anyhow::Result<String> {
        Ok(format!(
            "{}{}<Hangup/>",
            self.gather(e, attempt, "identity", "call_identity")?,
            self.say(e, "call_not_heard")?
        ))
    }

    /// `<Say>` of the prompt template `name`.
    fn say(&self, e: &Engine, name: &str) -> anyhow::Result<String> {
        let text = e.templates.render(&self.locale, name, &self.context)?;
        Ok(say(&self.locale, &text))
    }

    /// `<Gather>` asking the prompt template `name`, its answer posted back with `stage`.
    fn gather(&self, e: &Engine, attempt: &str, stage: &str, name: &str) -> anyhow::Result<String> {
        let text = e.templates.render(&self.locale, name, &self.context)?;
        Ok(gather_verb(e, &self.locale, attempt, stage, &text))
    }

    /// The prompt template `name`, then hang up.
    fn bye(&self, e: &Engine, name: &str) -> anyhow::Result<String> {
        Ok(format!("{}<Hangup/>", self.say(e, name)?))
    }

    /// The step after `choice` (a key, or speech classified into one) at `stage`: the patient's
    /// answer is recorded first (idempotent by call and answer), then the next prompt.
    async fn next(
        &self,
        e: &Engine,
        turn: &Turn<'_>,
        stage: &str,
        choice: &str,
    ) -> anyhow::Result<String> {
        match (stage, choice) {
            ("identity" | "identity_again", "1") => {
                self.gather(e, turn.attempt, "menu", "call_menu")
            }
            // Only an explicit "no / wrong number / not me" is a wrong person.
            ("identity" | "identity_again", "2") => {
                self.record(e, turn, Intent::WrongPerson, "wrong person (call)")
                    .await?;
                self.bye(e, "call_wrong_person")
            }
            // Not understood: the question once more, then a goodbye (the policy's next
            // attempt follows; nothing is recorded of an answer nobody understood).
            ("identity", _) => Ok(format!(
                "{}{}<Hangup/>",
                self.gather(e, turn.attempt, "identity_again", "call_identity_again")?,
                self.say(e, "call_not_heard")?
            )),
            ("identity_again", _) => self.bye(e, "call_not_heard"),
            ("menu", "1") => {
                self.record(e, turn, Intent::Confirm, "keypad 1").await?;
                self.bye(e, "call_confirmed")
            }
            ("menu", "2") => self.gather(e, turn.attempt, "cancel", "call_cancel_check"),
            ("menu", "3") => {
                self.record(e, turn, Intent::Question, "callback requested (keypad 3)")
                    .await?;
                self.bye(e, "call_callback")
            }
            ("cancel", "2") => {
                self.record(e, turn, Intent::Cancel, "keypad 2 2").await?;
                self.bye(e, "call_cancelled")
            }
            // `*`, silence, anything else: the menu again.
            _ => self.gather(e, turn.attempt, "menu", "call_menu"),
        }
    }

    /// What the patient said, as an inbound reply on the call channel: the secretaries read
    /// their words (`key` keeps a replayed webhook idempotent).
    async fn record_said(
        &self,
        e: &Engine,
        turn: &Turn<'_>,
        intent: Intent,
        key: &str,
        said: &str,
    ) -> anyhow::Result<()> {
        let id = format!("{}:{key}", turn.call_sid);
        let mut msg = Inbound::text(id, self.phone.clone(), Channel::Call, said);
        msg.intent = Some(intent);
        msg.campaign_id = Some(self.campaign_id);
        e.handle_inbound(msg).await?;
        Ok(())
    }

    /// The patient's answer as an inbound reply on the call channel.
    async fn record(
        &self,
        e: &Engine,
        turn: &Turn<'_>,
        intent: Intent,
        what: &'static str,
    ) -> anyhow::Result<()> {
        self.record_said(e, turn, intent, what, what).await
    }
}

/// "Jeanne D." of "Jeanne Dupont": what the identity check asks about.
fn first_name_and_initial(patient_name: &str) -> String {
    let mut parts = patient_name.split_whitespace();
    let first = parts.next().unwrap_or_default();
    let initial = parts
        .next()
        .and_then(|l| l.chars().next())
        .map(|c| format!(" {c}."))
        .unwrap_or_default();
    format!("{first}{initial}")
}

impl Engine {
    /// The script of a call for `campaign_id`; none when the campaign, its site or its number
    /// is gone (the call then hangs up).
    pub async fn call_script(&self, campaign_id: i64) -> anyhow::Result<Option<CallScript>> {
        let Some(row) = calls::campaign(&self.db, campaign_id).await? else {
            return Ok(None);
        };
        let Some(site) = self.settings.site(&row.site_id) else {
            return Ok(None);
        };
        let Some(phone) = row
            .phone
            .as_deref()
            .and_then(|p| PhoneNumber::parse(p).ok())
        else {
            return Ok(None);
        };
        let context = MessageContext {
            first_name: first_name_and_initial(&row.patient_name),
            ..MessageContext::new(site, &row.locale, from_unix(row.starts_at))
        };
        Ok(Some(CallScript {
            campaign_id,
            locale: row.locale,
            phone,
            context,
        }))
    }

    /// An answering machine picked up: one short voicemail per appointment (no health data, the
    /// centre's number), otherwise hang up. The next call attempt is already queued.
    pub async fn answering_machine(
        &self,
        call_sid: &str,
        attempt: Option<&str>,
    ) -> anyhow::Result<()> {
        // The callback names its attempt: it may arrive before the call's id is recorded.
        let call = match attempt.and_then(campaign_of_attempt) {
            Some(id) => calls::of_campaign(&self.db, id).await?,
            None => calls::by_call_sid(&self.db, call_sid).await?,
        };
        let Some(call) = call else {
            return Ok(());
        };
        // Rendered before anything is recorded: a broken template leaves no trace of a voicemail.
        let voicemail = match self.call_script(call.campaign_id).await? {
            Some(s) => Some(s.say(self, "call_voicemail")?),
            None => None,
        };
        let now = self.now().timestamp();
        let Some(campaign) = campaigns::by_id(&self.db, call.campaign_id).await? else {
            return Ok(());
        };
        let mut tx = self.db.begin().await?;
        // A resolved, low-priority note keyed per campaign: one voicemail per appointment.
        let left = NewNote {
            site_id: call.site_id.clone(),
            campaign_id: Some(call.campaign_id),
            reply_id: None,
            priority: 4,
            reason: "voicemail_left",
            detail: String::new(),
            dedup_key: format!("voicemail:c{}", call.campaign_id),
            open: false,
        };
        let first = notes::insert(&mut tx, &left, now).await?;
        let event = NewEvent {
            campaign_id: call.campaign_id,
            kind: "answering_machine",
            state: campaign.state,
            detail: format!("{{\"voicemail\":{first}}}"),
        };
        events::append(&mut tx, now, &[event]).await?;
        tx.commit().await?;
        let twiml = match (first, voicemail) {
            (true, Some(said)) => format!("<Response>{said}<Hangup/></Response>"),
            _ => "<Response><Hangup/></Response>".to_string(),
        };
        if let Err(err) = self
            .provider_for(&call.site_id)
            .update_call(call_sid, &twiml)
            .await
        {
            tracing::warn!(campaign_id = call.campaign_id, error = %err, "could not leave the voicemail");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_check_names_the_first_name_and_the_initial_only() {
        assert_eq!(first_name_and_initial("Jeanne Dupont"), "Jeanne D.");
        assert_eq!(first_name_and_initial("Jeanne"), "Jeanne");
        assert_eq!(first_name_and_initial(""), "");
    }
}
