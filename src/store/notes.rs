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
}

#[tracing::instrument(level = "debug", skip_all, fields(reason = note.reason))]
pub async fn insert(tx: &mut Tx, note: &NewNote, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO notes (site_id, campaign_id, reply_id, priority, reason, detail, state, \
           created_at, dedup_key) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8) \
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(note.site_id.clone())
    .bind(note.campaign_id)
    .bind(note.reply_id)
    .bind(note.priority)
    .bind(note.reason)
    .bind(note.detail.clone())
    .bind(now)
    .bind(note.dedup_key.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
