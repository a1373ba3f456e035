//! The admin API (bearer token): import and cancel appointments, list campaigns with their
//! timelines, the secretaries' notes, counts, and the sandbox's inbound replies. Every query is
//! in `store::admin`; handlers check the token, parse, call the store or the engine, and shape
//! the JSON. Phone numbers are masked everywhere but in the notes.

use super::error::ApiError;
use crate::agenda::AppointmentInput;
use crate::domain::campaign::{SecretaryOutcome, Upstream};
use crate::domain::text::{self, clip, quote};
use crate::domain::types::{CampaignState, Channel, PhoneNumber, mask_phone, parse_identifier};
use crate::engine::{Engine, Inbound, ResolveError};
use crate::store::admin::{self as store, AttemptRow, CampaignListRow, NoteRow, TimelineRow};
use crate::store::appointments;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

pub(super) async fn healthz(State(e): State<Engine>) -> Result<&'static str, ApiError> {
    store::ping(&e.db).await?;
    Ok("ok")
}

fn authorize(e: &Engine, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &e.settings.server.admin_token else {
        return Err(ApiError::Unauthorized);
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let expected = expected.expose_secret().as_bytes();
    // Constant-time comparison.
    let same = given.len() == expected.len()
        && given
            .as_bytes()
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// A serde message is cut to this many characters: some quote the whole bad value.
const MESSAGE_MAX_CHARS: usize = 160;

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        ApiError::invalid(
            clip(&e.path().to_string(), 60),
            clip(&e.inner().to_string(), MESSAGE_MAX_CHARS),
        )
    })
}

/// `value` when it has no control character (PostgreSQL refuses a NUL in text), else a 422
/// naming `field`.
fn plain<'a>(field: &str, value: &'a str) -> Result<&'a str, ApiError> {
    match text::find_control(value) {
        None => Ok(value),
        Some(found) => Err(ApiError::invalid(
            field,
            format!("contains {}", text::describe_control(found)),
        )),
    }
}

/// One appointment of the body: its keys known (a typo in a program is refused, not ignored),
/// then parsed and checked; errors name `[i].field`.
fn appointment_item(
    e: &Engine,
    i: usize,
    v: Value,
) -> Result<crate::agenda::Appointment, ApiError> {
    if let Value::Object(fields) = &v
        && let Some(key) = fields
            .keys()
            .find(|k| !AppointmentInput::FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            format!("[{i}].{}", clip(key, 40)),
            format!(
                "unknown field (expected one of {})",
                AppointmentInput::FIELDS.join(", ")
            ),
        ));
    }
    let input: AppointmentInput = serde_path_to_error::deserialize(v).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." {
            format!("[{i}]")
        } else {
            format!("[{i}].{}", clip(&path, 40))
        };
        ApiError::invalid(field, clip(&err.inner().to_string(), MESSAGE_MAX_CHARS))
    })?;
    input
        .check(&e.settings)
        .map_err(|fe| ApiError::invalid(format!("[{i}].{}", fe.field), fe.message))
}

/// Body: one appointment object or an array (all or nothing).
pub(super) async fn upsert_appointments(
    State(e): State<Engine>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let value: Value = json_body(&body)?;
    let items: Vec<Value> = match value {
        Value::Array(a) => a,
        v => vec![v],
    };
    let mut appts = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashMap::new();
    for (i, v) in items.into_iter().enumerate() {
        let a = appointment_item(&e, i, v)?;
        // Twice in one body: which of the two is meant is unknowable, so neither is written.
        if let Some(first) = seen.insert((a.site_id.clone(), a.external_id.clone()), i) {
            return Err(ApiError::invalid(
                format!("[{i}].external_id"),
                format!(
                    "appointment {} of site {} appears twice: items [{first}] and [{i}]",
                    quote(&a.external_id),
                    quote(&a.site_id)
                ),
            ));
        }
        appts.push(a);
    }
    let report = e.write_appointments(&appts).await?;
    let planned = e.plan().await?;
    Ok(Json(
        json!({"import": report, "campaigns_opened": planned.opened}),
    ))
}

pub(super) async fn cancel_appointment(
    State(e): State<Engine>,
    headers: HeaderMap,
    Path((site, external_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    // An identifier that cannot have been imported names nothing (and never reaches SQL).
    let (Ok(site), Ok(external_id)) = (parse_identifier(&site), parse_identifier(&external_id))
    else {
        return Err(ApiError::NotFound);
    };
    let now = e.now();
    let mut tx = e.db.begin().await?;
    let appt = appointments::by_external_id(&mut tx, &site, &external_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if appt.status != "cancelled" {
        appointments::mark_cancelled(&mut tx, appt.id, now.timestamp()).await?;
        e.apply_upstream(&mut tx, appt.id, Upstream::Cancelled, now)
            .await?;
    }
    tx.commit().await?;
    Ok(Json(
        json!({"appointment_id": appt.id, "status": "cancelled"}),
    ))
}

#[derive(Deserialize)]
pub(super) struct CampaignFilter {
    state: Option<String>,
    site: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn list_campaigns(
    State(e): State<Engine>,
    headers: HeaderMap,
    Query(f): Query<CampaignFilter>,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    if let Some(s) = &f.state
        && CampaignState::parse(s).is_none()
    {
        return Err(ApiError::invalid(
            "state",
            format!("unknown state {}", quote(s)),
        ));
    }
    plain("site", f.site.as_deref().unwrap_or_default())?;
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let rows = store::campaigns(
        &e.db,
        f.state.as_deref().unwrap_or_default(),
        f.site.as_deref().unwrap_or_default(),
        limit,
    )
    .await?;
    let list: Vec<Value> = rows.iter().map(campaign_json).collect();
    Ok(Json(json!({ "campaigns": list })))
}

fn campaign_json(r: &CampaignListRow) -> Value {
    json!({
        "id": r.id,
        "site": r.site_id,
        "appointment": r.external_id,
        "exam_code": r.exam_code,
        "starts_at": ts(r.starts_at),
        "state": r.state,
        "step": r.step,
        "attempt": r.attempt,
        "due_at": r.due_at.map(ts),
        "phone": r.phone.as_deref().map(mask_phone),
        "last_intent": r.last_intent,
    })
}

fn ts(secs: i64) -> String {
    crate::domain::policy::from_unix(secs).to_rfc3339()
}

pub(super) async fn show_campaign(
    State(e): State<Engine>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let c = store::campaign(&e.db, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let events = store::timeline(&e.db, id).await?;
    let attempts = store::attempts(&e.db, id).await?;
    Ok(Json(json!({
        "id": c.id,
        "site": c.site_id,
        "appointment": c.external_id,
        "starts_at": ts(c.starts_at),
        "state": c.state,
        "policy": c.policy,
        "phone": c.phone.as_deref().map(mask_phone),
        "timeline": events.iter().map(event_json).collect::<Vec<_>>(),
        "attempts": attempts.iter().map(attempt_json).collect::<Vec<_>>(),
    })))
}

fn event_json(r: &TimelineRow) -> Value {
    json!({
        "at": ts(r.at),
        "event": r.kind,
        "state": r.state,
        "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
    })
}

fn attempt_json(r: &AttemptRow) -> Value {
    json!({
        "step": r.step,
        "attempt": r.attempt,
        "channel": r.channel,
        "purpose": r.purpose,
        "state": r.state,
        "provider_id": r.provider_id,
        "error_code": r.error_code,
        "at": ts(r.created_at),
    })
}

#[derive(Deserialize)]
pub(super) struct NoteFilter {
    state: Option<String>,
    site: Option<String>,
}

pub(super) async fn list_notes(
    State(e): State<Engine>,
    headers: HeaderMap,
    Query(f): Query<NoteFilter>,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let state = f.state.unwrap_or_else(|| "open".into());
    if !matches!(state.as_str(), "open" | "resolved") {
        return Err(ApiError::invalid("state", "must be open or resolved"));
    }
    plain("site", f.site.as_deref().unwrap_or_default())?;
    let rows = store::notes(&e.db, &state, f.site.as_deref().unwrap_or_default()).await?;
    let notes: Vec<Value> = rows.iter().map(note_json).collect();
    Ok(Json(json!({ "notes": notes })))
}

fn note_json(r: &NoteRow) -> Value {
    json!({
        "id": r.id,
        "site": r.site_id,
        "campaign_id": r.campaign_id,
        "priority": r.priority,
        "reason": r.reason,
        "reply": r.detail,
        "state": r.state,
        "created_at": ts(r.created_at),
        "appointment": r.external_id,
        "patient_name": r.patient_name,
        "phone": r.phone,
        "starts_at": r.starts_at.map(ts),
        "resolved_by": r.resolved_by,
        "resolution": r.resolution,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resolve {
    by: String,
    #[serde(default)]
    resolution: String,
    /// What was settled with the patient by phone: `confirmed_by_phone`,
    /// `cancelled_by_phone` or `rescheduled` (none: the note is only closed).
    #[serde(default)]
    outcome: Option<String>,
}

pub(super) async fn resolve_note(
    State(e): State<Engine>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let r: Resolve = json_body(&body)?;
    if plain("by", &r.by)?.trim().is_empty() {
        return Err(ApiError::invalid("by", "who resolved the note is required"));
    }
    // The resolution is free text: its line breaks and tabs are kept.
    let resolution = text::strip_controls(&r.resolution);
    let outcome = match r.outcome.as_deref() {
        None | Some("") | Some("none") => None,
        Some(o) => Some(SecretaryOutcome::parse(o).ok_or_else(|| {
            ApiError::invalid(
                "outcome",
                "must be confirmed_by_phone, cancelled_by_phone, rescheduled or none",
            )
        })?),
    };
    match e
        .resolve_note(id, r.by.trim(), &resolution, outcome)
        .await?
    {
        Ok(()) => Ok(Json(json!({
            "id": id,
            "state": "resolved",
            "outcome": outcome.map(SecretaryOutcome::as_str),
        }))),
        Err(ResolveError::NotFound) => Err(ApiError::NotFound),
        Err(refused) => Err(ApiError::Conflict(refused.to_string())),
    }
}

pub(super) async fn stats(
    State(e): State<Engine>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let summary = crate::store::stats::Summary::read(&e.db).await?;
    Ok(Json(
        serde_json::to_value(summary).map_err(anyhow::Error::from)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxReply {
    from: String,
    body: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// Lets a tester play the patient on the sandbox provider.
pub(super) async fn sandbox_reply(
    State(e): State<Engine>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let r: SandboxReply = json_body(&body)?;
    let from = PhoneNumber::parse(&r.from)
        .map_err(|m| ApiError::invalid("from", format!("phone number {m}")))?;
    let channel = match r.channel.as_deref() {
        None => Channel::Sms,
        Some(c) => Channel::parse(c)
            .filter(|c| c.is_message())
            .ok_or(ApiError::invalid("channel", "must be sms or whatsapp"))?,
    };
    let out = e
        .handle_inbound(Inbound {
            to: None,
            provider_id: r
                .id
                .map(|id| text::strip_controls(&id))
                .unwrap_or_else(|| format!("SBIN{}", uuid::Uuid::new_v4().simple())),
            from,
            channel,
            // Like a provider's webhook: a reply is stored without its control characters.
            body: text::strip_controls(&r.body),
            intent: None,
            campaign_id: None,
        })
        .await?;
    Ok(Json(
        serde_json::to_value(out).map_err(anyhow::Error::from)?,
    ))
}
