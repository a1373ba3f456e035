//! What the admin API reads and writes: campaign lists and timelines, the secretaries' notes.
//! Read-only views over `campaigns`, `appointments`, `events`, `attempts` and `notes`, plus the
//! one write the API owns (resolving a note). Filters left empty (`''`) match everything, so one
//! statement serves every combination of query parameters.

use super::{Db, Tx};
use anyhow::Result;

/// Answers when the database does (`/healthz`).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn ping(db: &Db) -> Result<()> {
    sqlx::query("SELECT 1").execute(&db.pool).await?;
    Ok(())
}

/// One line of `GET /admin/campaigns`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignListRow {
    pub id: i64,
    pub site_id: String,
    pub state: String,
    pub step: i64,
    pub attempt: i64,
    pub due_at: Option<i64>,
    pub phone: Option<String>,
    pub last_intent: Option<String>,
    pub external_id: String,
    pub starts_at: i64,
    pub exam_code: String,
}

/// Campaigns in `state` (all when empty) of `site` (all when empty), earliest appointment
/// first, at most `limit`.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn campaigns(
    db: &Db,
    state: &str,
    site: &str,
    limit: i64,
) -> Result<Vec<CampaignListRow>> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.site_id, c.state, c.step, c.attempt, c.due_at, c.phone, c.last_intent, \
                a.external_id, a.starts_at, a.exam_code \
         FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
         WHERE ($1 = '' OR c.state = $1) AND ($2 = '' OR c.site_id = $2) \
         ORDER BY a.starts_at, c.id LIMIT $3",
    )
    .bind(state.to_string())
    .bind(site.to_string())
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// The head of `GET /admin/campaigns/{id}`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignDetailRow {
    pub id: i64,
    pub site_id: String,
    pub state: String,
    pub policy: String,
    pub phone: Option<String>,
    pub external_id: String,
    pub starts_at: i64,
}

#[tracing::instrument(level = "debug", skip(db))]
pub async fn campaign(db: &Db, id: i64) -> Result<Option<CampaignDetailRow>> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.site_id, c.state, c.policy, c.phone, a.external_id, a.starts_at \
         FROM campaigns c JOIN appointments a ON a.id = c.appointment_id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// One ledger row of a campaign's timeline; `detail` is a small JSON object.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimelineRow {
    pub at: i64,
    pub kind: String,
    pub state: String,
    pub detail: String,
}

/// A campaign's ledger, oldest first.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn timeline(db: &Db, campaign_id: i64) -> Result<Vec<TimelineRow>> {
    Ok(sqlx::query_as(
        "SELECT at, kind, state, detail FROM events WHERE campaign_id = $1 ORDER BY id",
    )
    .bind(campaign_id)
    .fetch_all(&db.pool)
    .await?)
}

/// One message or call of a campaign as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub step: i64,
    pub attempt: i64,
    pub channel: String,
    pub purpose: String,
    pub state: String,
    pub provider_id: Option<String>,
    pub error_code: Option<String>,
    pub created_at: i64,
}

/// A campaign's attempts, oldest first.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn attempts(db: &Db, campaign_id: i64) -> Result<Vec<AttemptRow>> {
    Ok(sqlx::query_as(
        "SELECT step, attempt, channel, purpose, state, provider_id, error_code, created_at \
         FROM attempts WHERE campaign_id = $1 ORDER BY id",
    )
    .bind(campaign_id)
    .fetch_all(&db.pool)
    .await?)
}

/// One note for the secretaries with the appointment it is about (none for a note without a
/// campaign). The phone is in clear: the secretaries call the patient back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub id: i64,
    pub site_id: String,
    pub campaign_id: Option<i64>,
    pub priority: i64,
    pub reason: String,
    pub detail: String,
    pub state: String,
    pub created_at: i64,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
    pub external_id: Option<String>,
    pub patient_name: Option<String>,
    pub phone: Option<String>,
    pub starts_at: Option<i64>,
}

/// The 500 most urgent notes in `state` of `site` (all sites when empty), most urgent first.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn notes(db: &Db, state: &str, site: &str) -> Result<Vec<NoteRow>> {
    Ok(sqlx::query_as(
        "SELECT n.id, n.site_id, n.campaign_id, n.priority, n.reason, n.detail, n.state, \
                n.created_at, n.resolved_by, n.resolution, \
                a.external_id, a.patient_name, a.phone, a.starts_at \
         FROM notes n LEFT JOIN campaigns c ON c.id = n.campaign_id \
              LEFT JOIN appointments a ON a.id = c.appointment_id \
         WHERE n.state = $1 AND ($2 = '' OR n.site_id = $2) \
         ORDER BY n.priority, n.created_at, n.id LIMIT 500",
    )
    .bind(state.to_string())
    .bind(site.to_string())
    .fetch_all(&db.pool)
    .await?)
}

/// What resolving a note found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Resolved now; the campaign it is about, if any.
    Now {
        campaign_id: Option<i64>,
    },
    /// Someone resolved it first (their text is kept).
    Already,
    NotFound,
}

/// Resolves open note `id` inside a transaction: by `by`, with `resolution`; a note already
/// resolved is left as it is.
#[tracing::instrument(level = "debug", skip(tx, resolution))]
pub async fn resolve_open_note(
    tx: &mut Tx,
    id: i64,
    now: i64,
    by: &str,
    resolution: &str,
) -> Result<Resolved> {
    let row: Option<(Option<i64>,)> = sqlx::query_as(
        "UPDATE notes SET state = 'resolved', resolved_at = $1, resolved_by = $2, resolution = $3 \
         WHERE id = $4 AND state = 'open' RETURNING campaign_id",
    )
    .bind(now)
    .bind(by.to_string())
    .bind(resolution.to_string())
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((campaign_id,)) = row {
        return Ok(Resolved::Now { campaign_id });
    }
    let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM notes WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(if exists.is_some() {
        Resolved::Already
    } else {
        Resolved::NotFound
    })
}
