//! HTTP: health, the admin API (bearer token) and the sandbox's inbound-reply endpoint.
//!
//! Errors are one enum; each variant documents its status. Internal errors become an opaque
//! 500 logged once here; validation errors name the field. Phone numbers are masked in every
//! response but the notes' own (secretaries call the patient back), and no body is logged.

pub mod signature;
pub mod webhooks;

use crate::agenda::AppointmentInput;
use crate::domain::campaign::Upstream;
use crate::domain::types::{Channel, PhoneNumber, mask_phone};
use crate::engine::{Engine, Inbound};
use crate::store::opt_text;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: missing or wrong bearer token (or the admin API is disabled).
    #[error("unauthorized")]
    Unauthorized,
    /// 404: no such resource.
    #[error("not found")]
    NotFound,
    /// 422: a field is invalid; the body names it.
    #[error("invalid field `{field}`: {message}")]
    Invalid { field: String, message: String },
    /// 500: logged once here, opaque to the caller.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"})),
            ApiError::NotFound => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
            ApiError::Invalid { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "invalid", "field": field, "message": message}),
            ),
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal error"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/admin/appointments", post(upsert_appointments))
        .route(
            "/admin/appointments/{site}/{external_id}/cancel",
            post(cancel_appointment),
        )
        .route("/admin/campaigns", get(list_campaigns))
        .route("/admin/campaigns/{id}", get(show_campaign))
        .route("/admin/notes", get(list_notes))
        .route("/admin/notes/{id}/resolve", post(resolve_note))
        .route("/admin/stats", get(stats))
        .route("/admin/sandbox/replies", post(sandbox_reply))
        .merge(crate::http::webhooks::routes())
        .with_state(engine)
}

async fn healthz(State(e): State<Engine>) -> Result<&'static str, ApiError> {
    sqlx::query("SELECT 1").execute(&e.db.pool).await?;
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

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| ApiError::Invalid {
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Body: one appointment object or an array (all or nothing).
async fn upsert_appointments(
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
    for (i, v) in items.into_iter().enumerate() {
        let input: AppointmentInput =
            json_body(v.to_string().as_bytes()).map_err(|err| match err {
                ApiError::Invalid { field, message } => ApiError::Invalid {
                    field: format!("[{i}].{field}"),
                    message,
                },
                other => other,
            })?;
        let a = input.check(&e.settings).map_err(|fe| ApiError::Invalid {
            field: format!("[{i}].{}", fe.field),
            message: fe.message,
        })?;
        appts.push(a);
    }
    let report = e.write_appointments(&appts).await?;
    let planned = e.plan().await?;
    Ok(Json(
        json!({"import": report, "campaigns_opened": planned.opened}),
    ))
}

async fn cancel_appointment(
    State(e): State<Engine>,
    headers: HeaderMap,
    Path((site, external_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let now = e.now();
    let mut tx = e.db.begin().await?;
    let row =
        sqlx::query("SELECT id, status FROM appointments WHERE site_id = $1 AND external_id = $2")
            .bind(site)
            .bind(external_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ApiError::NotFound)?;
    let id: i64 = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    if status != "cancelled" {
        sqlx::query("UPDATE appointments SET status = 'cancelled', updated_at = $1 WHERE id = $2")
            .bind(now.timestamp())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        e.apply_upstream(&mut tx, id, Upstream::Cancelled, now)
            .await?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(Json(json!({"appointment_id": id, "status": "cancelled"})))
}

#[derive(Deserialize)]
struct CampaignFilter {
    state: Option<String>,
    site: Option<String>,
    limit: Option<i64>,
}

async fn list_campaigns(
    State(e): State<Engine>,
    headers: HeaderMap,
    Query(f): Query<CampaignFilter>,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    if let Some(s) = &f.state
        && crate::domain::types::CampaignState::parse(s).is_none()
    {
        return Err(ApiError::Invalid {
            field: "state".into(),
            message: format!("unknown state '{s}'"),
        });
    }
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let rows = sqlx::query(
        "SELECT c.id, c.site_id, c.state, c.step, c.attempt, c.due_at, c.phone, c.last_intent, a.external_id, a.starts_at, a.exam_code \
         FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
         WHERE ($1 = '' OR c.state = $1) AND ($2 = '' OR c.site_id = $2) ORDER BY a.starts_at, c.id LIMIT $3",
    )
    .bind(f.state.unwrap_or_default())
    .bind(f.site.unwrap_or_default())
    .bind(limit)
    .fetch_all(&e.db.pool)
    .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<i64, _>("id"),
                "site": r.get::<String, _>("site_id"),
                "appointment": r.get::<String, _>("external_id"),
                "exam_code": r.get::<String, _>("exam_code"),
                "starts_at": ts(r.get::<i64, _>("starts_at")),
                "state": r.get::<String, _>("state"),
                "step": r.get::<i64, _>("step"),
                "attempt": r.get::<i64, _>("attempt"),
                "due_at": r.get::<Option<i64>, _>("due_at").map(ts),
                "phone": opt_text(r, "phone").map(|p| mask_phone(&p)),
                "last_intent": opt_text(r, "last_intent"),
            })
        })
        .collect();
    Ok(Json(json!({ "campaigns": list })))
}

fn ts(secs: i64) -> String {
    crate::domain::policy::from_unix(secs).to_rfc3339()
}

async fn show_campaign(
    State(e): State<Engine>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let c = sqlx::query(
        "SELECT c.id, c.site_id, c.state, c.policy, c.phone, a.external_id, a.starts_at FROM campaigns c \
         JOIN appointments a ON a.id = c.appointment_id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(&e.db.pool)
    .await?
    .ok_or(ApiError::NotFound)?;
    let events = sqlx::query(
        "SELECT at, kind, state, detail FROM events WHERE campaign_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&e.db.pool)
    .await?;
    let attempts = sqlx::query(
        "SELECT step, attempt, channel, purpose, state, provider_id, error_code, created_at FROM attempts \
         WHERE campaign_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&e.db.pool)
    .await?;
    Ok(Json(json!({
        "id": id,
        "site": c.get::<String, _>("site_id"),
        "appointment": c.get::<String, _>("external_id"),
        "starts_at": ts(c.get::<i64, _>("starts_at")),
        "state": c.get::<String, _>("state"),
        "policy": c.get::<String, _>("policy"),
        "phone": opt_text(&c, "phone").map(|p| mask_phone(&p)),
        "timeline": events.iter().map(|r| json!({
            "at": ts(r.get::<i64, _>("at")),
            "event": r.get::<String, _>("kind"),
            "state": r.get::<String, _>("state"),
            "detail": serde_json::from_str::<Value>(&r.get::<String, _>("detail")).unwrap_or(Value::Null),
        })).collect::<Vec<_>>(),
        "attempts": attempts.iter().map(|r| json!({
            "step": r.get::<i64, _>("step"),
            "attempt": r.get::<i64, _>("attempt"),
            "channel": r.get::<String, _>("channel"),
            "purpose": r.get::<String, _>("purpose"),
            "state": r.get::<String, _>("state"),
            "provider_id": opt_text(r, "provider_id"),
            "error_code": opt_text(r, "error_code"),
            "at": ts(r.get::<i64, _>("created_at")),
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct NoteFilter {
    state: Option<String>,
    site: Option<String>,
}

async fn list_notes(
    State(e): State<Engine>,
    headers: HeaderMap,
    Query(f): Query<NoteFilter>,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let state = f.state.unwrap_or_else(|| "open".into());
    if !matches!(state.as_str(), "open" | "resolved") {
        return Err(ApiError::Invalid {
            field: "state".into(),
            message: "must be open or resolved".into(),
        });
    }
    let rows = sqlx::query(
        "SELECT n.id, n.site_id, n.campaign_id, n.priority, n.reason, n.detail, n.state, n.created_at, n.resolved_by, \
                n.resolution, a.external_id, a.patient_name, a.phone, a.starts_at \
         FROM notes n LEFT JOIN campaigns c ON c.id = n.campaign_id LEFT JOIN appointments a ON a.id = c.appointment_id \
         WHERE n.state = $1 AND ($2 = '' OR n.site_id = $2) ORDER BY n.priority, n.created_at, n.id LIMIT 500",
    )
    .bind(state)
    .bind(f.site.unwrap_or_default())
    .fetch_all(&e.db.pool)
    .await?;
    let notes: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<i64, _>("id"),
                "site": r.get::<String, _>("site_id"),
                "campaign_id": r.get::<Option<i64>, _>("campaign_id"),
                "priority": r.get::<i64, _>("priority"),
                "reason": r.get::<String, _>("reason"),
                "reply": r.get::<String, _>("detail"),
                "state": r.get::<String, _>("state"),
                "created_at": ts(r.get::<i64, _>("created_at")),
                "appointment": opt_text(r, "external_id"),
                "patient_name": opt_text(r, "patient_name"),
                "phone": opt_text(r, "phone"),
                "starts_at": r.get::<Option<i64>, _>("starts_at").map(ts),
                "resolved_by": opt_text(r, "resolved_by"),
                "resolution": opt_text(r, "resolution"),
            })
        })
        .collect();
    Ok(Json(json!({ "notes": notes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resolve {
    by: String,
    #[serde(default)]
    resolution: String,
}

async fn resolve_note(
    State(e): State<Engine>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let r: Resolve = json_body(&body)?;
    if r.by.trim().is_empty() {
        return Err(ApiError::Invalid {
            field: "by".into(),
            message: "who resolved the note is required".into(),
        });
    }
    let done = sqlx::query(
        "UPDATE notes SET state = 'resolved', resolved_at = $1, resolved_by = $2, resolution = $3 WHERE id = $4",
    )
    .bind(e.now().timestamp())
    .bind(r.by)
    .bind(r.resolution)
    .bind(id)
    .execute(&e.db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(Json(json!({"id": id, "state": "resolved"})))
}

async fn stats(State(e): State<Engine>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
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
async fn sandbox_reply(
    State(e): State<Engine>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&e, &headers)?;
    let r: SandboxReply = json_body(&body)?;
    let from = PhoneNumber::parse(&r.from).map_err(|m| ApiError::Invalid {
        field: "from".into(),
        message: format!("phone number {m}"),
    })?;
    let channel = match r.channel.as_deref() {
        None => Channel::Sms,
        Some(c) => Channel::parse(c)
            .filter(|c| c.is_message())
            .ok_or(ApiError::Invalid {
                field: "channel".into(),
                message: "must be sms or whatsapp".into(),
            })?,
    };
    let out = e
        .handle_inbound(Inbound {
            to: None,
            provider_id: r
                .id
                .unwrap_or_else(|| format!("SBIN{}", uuid::Uuid::new_v4().simple())),
            from,
            channel,
            body: r.body,
            intent: None,
            campaign_id: None,
        })
        .await?;
    Ok(Json(
        serde_json::to_value(out).map_err(anyhow::Error::from)?,
    ))
}
