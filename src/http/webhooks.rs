//! Twilio webhooks: inbound messages, message status, call status, answering-machine detection,
//! and the TwiML call script. Every request must carry a valid `X-Twilio-Signature` computed over
//! the configured public URL (forged, missing or stale signatures get 403 and change nothing),
//! and every handler is idempotent by the provider's id: providers retry and reorder callbacks.
//!
//! The call script: identity check first (no detail before the person says who they are), then
//! the appointment, then 1 confirm, 2 cancel (2 again to be sure), 3 to be called back by the
//! centre, `*` to repeat; speech goes through the reply classifier. An answering machine gets one
//! short voicemail per appointment with no health data and the centre's number.

use super::signature::{self, Algorithm};
use crate::domain::campaign::{CallOutcome, Event};
use crate::domain::policy::from_unix;
use crate::domain::reply::{self, Intent};
use crate::domain::types::{Channel, PhoneNumber};
use crate::engine::{Engine, Inbound};
use crate::http::ApiError;
use crate::templates;
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
    Ok(Form(params))
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
    match e.handle_inbound(msg).await {
        Ok(_) => empty_twiml(),
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
    let (stored, event) = match status {
        "sent" => ("sent", None),
        "delivered" => ("delivered", None),
        "read" => ("read", None),
        "undelivered" | "failed" => (status, Some(Event::Undelivered)),
        // queued, accepted, sending, scheduled: nothing new for the campaign.
        _ => return StatusCode::NO_CONTENT.into_response(),
    };
    if let Some(code) = form.get("ErrorCode").filter(|c| !c.is_empty()) {
        tracing::info!(message_sid = sid, status, code, "delivery failure reported");
    }
    match e
        .attempt_event(sid, event, stored, form.get("ErrorCode"))
        .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => internal(err),
    }
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
    let (stored, event) = match status {
        "completed" => ("delivered", None),
        "busy" => ("undelivered", Some(Event::CallEnded(CallOutcome::Busy))),
        "no-answer" => ("undelivered", Some(Event::CallEnded(CallOutcome::NoAnswer))),
        "failed" | "canceled" => ("failed", Some(Event::CallEnded(CallOutcome::Failed))),
        _ => return StatusCode::NO_CONTENT.into_response(),
    };
    match e.attempt_event(sid, event, stored, None).await {
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
    match e.answering_machine(sid).await {
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
    let Some(script) = (match e
        .call_script(campaign_of_attempt(&attempt).unwrap_or(-1))
        .await
    {
        Ok(s) => s,
        Err(err) => return internal(err),
    }) else {
        return response("<Hangup/>".into());
    };
    let prompt = if script.locale == "en" {
        format!(
            "Hello, this is {}. Are you {}? Press 1 for yes, 2 for no.",
            script.centre, script.first_name
        )
    } else {
        format!(
            "Bonjour, ici {}. Êtes-vous bien {} ? Tapez 1 pour oui, 2 pour non.",
            script.centre, script.first_name
        )
    };
    let retry = say(
        &script.locale,
        if script.locale == "en" {
            "We did not hear you. Goodbye."
        } else {
            "Nous ne vous avons pas entendu. Au revoir."
        },
    );
    response(format!(
        "{}{retry}<Hangup/>",
        gather_verb(&e, &script.locale, &attempt, "identity", &prompt)
    ))
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
    let l = script.locale.as_str();
    let en = l == "en";
    let digits = form.get("Digits").unwrap_or_default().trim().to_string();
    let speech = form.get("SpeechResult").unwrap_or_default().to_string();
    // Speech goes through the classifier; a digit is an explicit choice.
    let choice = if !digits.is_empty() {
        digits.clone()
    } else {
        match reply::classify(&speech, reply::Lang::parse(l), &Default::default()).intent {
            Intent::Confirm => "1".into(),
            Intent::Cancel => "2".into(),
            Intent::Reschedule | Intent::Question => "3".into(),
            _ => "?".into(),
        }
    };
    let call_sid = form.get("CallSid").unwrap_or_default().to_string();
    let bye = |t: &str| response(format!("{}<Hangup/>", say(l, t)));
    let menu = |e: &Engine| {
        let prompt = if en {
            format!(
                "Your appointment is on {} at {}. Press 1 to confirm, 2 to cancel, 3 to be called back by the centre, star to repeat.",
                script.date, script.time
            )
        } else {
            format!(
                "Votre rendez-vous est le {} à {}. Tapez 1 pour confirmer, 2 pour annuler, 3 pour être rappelé par le centre, étoile pour réécouter.",
                script.date, script.time
            )
        };
        response(gather_verb(e, l, &attempt, "menu", &prompt))
    };
    let act = |intent: Intent, what: &'static str| {
        let e = e.clone();
        let phone = script.phone.clone();
        let id = format!("{call_sid}:{what}");
        async move {
            let mut msg = Inbound::text(id, phone, Channel::Call, what.to_string());
            msg.intent = Some(intent);
            msg.campaign_id = Some(campaign_id);
            e.handle_inbound(msg).await
        }
    };
    match (stage.as_str(), choice.as_str()) {
        ("identity", "1") => menu(&e),
        ("identity", _) => {
            if let Err(err) = act(Intent::WrongPerson, "wrong person (call)").await {
                return internal(err);
            }
            bye(if en {
                "Thank you, sorry for the trouble. Goodbye."
            } else {
                "Merci, excusez-nous pour le dérangement. Au revoir."
            })
        }
        ("menu", "1") => match act(Intent::Confirm, "keypad 1").await {
            Ok(_) => bye(if en {
                "Thank you, your appointment is confirmed. Goodbye."
            } else {
                "Merci, votre rendez-vous est confirmé. Au revoir."
            }),
            Err(err) => internal(err),
        },
        ("menu", "2") => response(gather_verb(
            &e,
            l,
            &attempt,
            "cancel",
            if en {
                "To cancel your appointment, press 2 again. Press star to go back."
            } else {
                "Pour annuler votre rendez-vous, tapez de nouveau 2. Tapez étoile pour revenir."
            },
        )),
        ("menu", "3") => match act(Intent::Question, "callback requested (keypad 3)").await {
            Ok(_) => bye(if en {
                "The centre will call you back. Goodbye."
            } else {
                "Le secrétariat va vous rappeler. Au revoir."
            }),
            Err(err) => internal(err),
        },
        ("cancel", "2") => match act(Intent::Cancel, "keypad 2 2").await {
            Ok(_) => bye(if en {
                "Your appointment is cancelled. Goodbye."
            } else {
                "Votre rendez-vous est annulé. Au revoir."
            }),
            Err(err) => internal(err),
        },
        _ => menu(&e),
    }
}

/// What the call script needs of a campaign: no more than the patient's first name and initial,
/// the date and time, the centre.
pub struct CallScript {
    pub locale: String,
    pub centre: String,
    pub first_name: String,
    pub date: String,
    pub time: String,
    pub phone: PhoneNumber,
}

impl Engine {
    pub async fn call_script(&self, campaign_id: i64) -> anyhow::Result<Option<CallScript>> {
        use sqlx::Row;
        let Some(row) = sqlx::query(
            "SELECT c.site_id, c.phone, a.starts_at, a.locale, a.patient_name FROM campaigns c \
             JOIN appointments a ON a.id = c.appointment_id WHERE c.id = $1",
        )
        .bind(campaign_id)
        .fetch_optional(&self.db.pool)
        .await?
        else {
            return Ok(None);
        };
        let site_id: String = row.try_get("site_id")?;
        let Some(site) = self.settings.site(&site_id) else {
            return Ok(None);
        };
        let Some(phone) =
            crate::store::opt_text(&row, "phone").and_then(|p| PhoneNumber::parse(&p).ok())
        else {
            return Ok(None);
        };
        let locale: String = row.try_get("locale")?;
        let name: String = row.try_get("patient_name")?;
        let mut parts = name.split_whitespace();
        let first = parts.next().unwrap_or_default();
        let initial = parts
            .next()
            .and_then(|l| l.chars().next())
            .map(|c| format!(" {c}."))
            .unwrap_or_default();
        let (date, time) =
            templates::date_time(site, &locale, from_unix(row.try_get("starts_at")?));
        Ok(Some(CallScript {
            centre: site.name.clone(),
            first_name: format!("{first}{initial}"),
            date,
            time,
            phone,
            locale,
        }))
    }

    /// An answering machine picked up: one short voicemail per appointment (no health data, the
    /// centre's number), otherwise hang up. The next call attempt is already queued.
    pub async fn answering_machine(&self, call_sid: &str) -> anyhow::Result<()> {
        use sqlx::Row;
        let Some(row) = sqlx::query(
            "SELECT t.campaign_id, c.site_id FROM attempts t JOIN campaigns c ON c.id = t.campaign_id WHERE t.provider_id = $1",
        )
        .bind(call_sid.to_string())
        .fetch_optional(&self.db.pool)
        .await?
        else {
            return Ok(());
        };
        let campaign_id: i64 = row.try_get("campaign_id")?;
        let site_id: String = row.try_get("site_id")?;
        let mut tx = self.db.begin().await?;
        let first = sqlx::query(
            "INSERT INTO notes (site_id, campaign_id, priority, reason, detail, state, created_at, dedup_key) \
             VALUES ($1, $2, 4, 'voicemail_left', '', 'resolved', $3, $4) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        )
        .bind(site_id.clone())
        .bind(campaign_id)
        .bind(self.now().timestamp())
        .bind(format!("voicemail:c{campaign_id}"))
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        sqlx::query("INSERT INTO events (campaign_id, at, kind, state, detail) SELECT id, $1, 'answering_machine', state, $2 FROM campaigns WHERE id = $3")
            .bind(self.now().timestamp())
            .bind(if first { "{\"voicemail\":true}" } else { "{\"voicemail\":false}" })
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let script = self.call_script(campaign_id).await?;
        let twiml = match (first, script) {
            (true, Some(s)) => {
                let phone = self
                    .settings
                    .site(&site_id)
                    .and_then(|x| x.phone.as_ref())
                    .map(|p| p.as_e164().to_string())
                    .unwrap_or_default();
                let text = if s.locale == "en" {
                    format!(
                        "Hello, this is {}, about your upcoming appointment. Please call us back on {}. Thank you.",
                        s.centre,
                        spell(&phone)
                    )
                } else {
                    format!(
                        "Bonjour, ici {}, au sujet de votre prochain rendez-vous. Merci de nous rappeler au {}.",
                        s.centre,
                        spell(&phone)
                    )
                };
                format!("<Response>{}<Hangup/></Response>", say(&s.locale, &text))
            }
            _ => "<Response><Hangup/></Response>".to_string(),
        };
        if let Err(err) = self
            .provider_for(&site_id)
            .update_call(call_sid, &twiml)
            .await
        {
            tracing::warn!(campaign_id, error = %err, "could not leave the voicemail");
        }
        Ok(())
    }
}

/// A phone number read digit by digit.
fn spell(e164: &str) -> String {
    e164.chars()
        .filter(|c| c.is_ascii_digit())
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}
