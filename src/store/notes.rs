//! `notes`: what the machine hands to the secretaries, prioritised, de-duplicated by key.

use super::Tx;
use anyhow::Result;

/// A note for the secretaries.
#[derive(Debug, Clone)]
pub struct NewNote {
    pub site_id: String,
    pub campaign_id: Option<i64>,
    /// The reply the note is about, linked by id when the note is written.
    pub reply_id: Option<i64>,
    /// 1 = urgent … 4 = low.
    pub priority: i64,
    pub reason: &'static str,
    pub detail: String,
    /// Writing the same note twice (a replay, a retry) keeps the first.
    pub dedup_key: String,
    /// `false` for a note that only records what happened (a voicemail left): written resolved.
    pub open: bool,
}

/// Writes a note; `false` when one with the same key was already written.
#[tracing::instrument(level = "debug", skip_all, fields(reason = note.reason))]
pub async fn insert(tx: &mut Tx, note: &NewNote, now: i64) -> Result<bool> {
    let id: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO notes (site_id, campaign_id, reply_id, priority, reason, detail, created_at, \
           dedup_key, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
    )
    .bind(note.site_id.clone())
    .bind(note.campaign_id)
    .bind(note.reply_id)
    .bind(note.priority)
    .bind(note.reason)
    .bind(note.detail.clone())
    .bind(now)
    .bind(note.dedup_key.clone())
    .bind(if note.open { "open" } else { "resolved" })
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id.is_some())
}
