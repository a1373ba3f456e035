//! `outbox`: agenda write-backs (confirm, release) written in the same transaction as the
//! state change, claimed before they are applied, retried with backoff until done.

use super::{Backend, Db, Tx};
use anyhow::Result;

/// A claimed write-back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub campaign_id: i64,
    pub appointment_id: i64,
    pub appointment_version: i64,
    /// `confirm` or `release`.
    pub action: String,
    pub tries: i64,
    pub site_id: String,
    /// The reply whose acknowledgement waits for this write-back, the channel to answer on
    /// and the acknowledgement's kind (`campaign::Ack::as_str`).
    pub ack_reply_id: Option<i64>,
    pub ack_channel: Option<String>,
    pub ack: Option<String>,
}

/// The acknowledgement of reply `reply_id` waits for this campaign's pending `action`.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn owe_ack(
    tx: &mut Tx,
    campaign_id: i64,
    action: &'static str,
    reply_id: i64,
    channel: &'static str,
    ack: &'static str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET ack_reply_id = $1, ack_channel = $2, ack = $3 \
         WHERE campaign_id = $4 AND action = $5 AND state = 'pending'",
    )
    .bind(reply_id)
    .bind(channel)
    .bind(ack)
    .bind(campaign_id)
    .bind(action)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Queues a write-back (one per campaign and action).
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn enqueue(
    tx: &mut Tx,
    campaign_id: i64,
    appointment_id: i64,
    appointment_version: i64,
    action: &'static str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (campaign_id, appointment_id, appointment_version, action, state, tries, \
           next_try_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
         ON CONFLICT (campaign_id, action) DO NOTHING",
    )
    .bind(campaign_id)
    .bind(appointment_id)
    .bind(appointment_version)
    .bind(action)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Claims due write-backs until `until` (a claimed row is applied by its holder only): every
/// due one when `campaign` is `None`, else those of that campaign and its followers.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn claim(
    db: &Db,
    campaign: Option<i64>,
    now: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>> {
    let statement = match (db.backend, campaign.is_some()) {
        (Backend::Postgres, false) => {
            "UPDATE outbox SET claimed_until = $1 WHERE id IN (SELECT id FROM outbox \
               WHERE state = 'pending' AND next_try_at <= $2 \
               AND (claimed_until IS NULL OR claimed_until < $2) \
               ORDER BY next_try_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, campaign_id, appointment_id, appointment_version, action, tries, \
               ack_reply_id, ack_channel, ack, \
               (SELECT c.site_id FROM campaigns c WHERE c.id = outbox.campaign_id) AS site_id"
        }
        (Backend::Sqlite, false) => {
            "UPDATE outbox SET claimed_until = $1 WHERE id IN (SELECT id FROM outbox \
               WHERE state = 'pending' AND next_try_at <= $2 \
               AND (claimed_until IS NULL OR claimed_until < $2) \
               ORDER BY next_try_at LIMIT $3) \
             RETURNING id, campaign_id, appointment_id, appointment_version, action, tries, \
               ack_reply_id, ack_channel, ack, \
               (SELECT c.site_id FROM campaigns c WHERE c.id = outbox.campaign_id) AS site_id"
        }
        (Backend::Postgres, true) => {
            "UPDATE outbox SET claimed_until = $1 WHERE id IN (SELECT o.id FROM outbox o \
               JOIN campaigns c ON c.id = o.campaign_id WHERE o.state = 'pending' \
               AND (o.claimed_until IS NULL OR o.claimed_until < $2) \
               AND (o.campaign_id = $4 OR c.lead_id = $4) LIMIT $3 FOR UPDATE OF o SKIP LOCKED) \
             RETURNING id, campaign_id, appointment_id, appointment_version, action, tries, \
               ack_reply_id, ack_channel, ack, \
               (SELECT c.site_id FROM campaigns c WHERE c.id = outbox.campaign_id) AS site_id"
        }
        (Backend::Sqlite, true) => {
            "UPDATE outbox SET claimed_until = $1 WHERE id IN (SELECT o.id FROM outbox o \
               JOIN campaigns c ON c.id = o.campaign_id WHERE o.state = 'pending' \
               AND (o.claimed_until IS NULL OR o.claimed_until < $2) \
               AND (o.campaign_id = $4 OR c.lead_id = $4) LIMIT $3) \
             RETURNING id, campaign_id, appointment_id, appointment_version, action, tries, \
               ack_reply_id, ack_channel, ack, \
               (SELECT c.site_id FROM campaigns c WHERE c.id = outbox.campaign_id) AS site_id"
        }
    };
    let mut tx = db.begin().await?;
    let mut q = sqlx::query_as(statement).bind(until).bind(now).bind(limit);
    if let Some(id) = campaign {
        q = q.bind(id);
    }
    let rows = q.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// What became of one try of a write-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryOutcome<'a> {
    /// Applied.
    Done,
    /// Will not be applied (a person is told).
    Failed { error: &'a str },
    /// Tried again at `next_try_at`.
    Retry { next_try_at: i64, error: &'a str },
}

/// Records a try (and releases the claim).
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn record_try(
    tx: &mut Tx,
    id: i64,
    tries: i64,
    outcome: TryOutcome<'_>,
    now: i64,
) -> Result<()> {
    let (state, next_try_at, done_at, error) = match outcome {
        TryOutcome::Done => ("done", None, Some(now), None),
        TryOutcome::Failed { error } => ("failed", None, None, Some(error)),
        TryOutcome::Retry { next_try_at, error } => {
            ("pending", Some(next_try_at), None, Some(error))
        }
    };
    sqlx::query(
        "UPDATE outbox SET state = $1, tries = $2, next_try_at = COALESCE($3, next_try_at), \
           done_at = $4, last_error = $5, claimed_until = NULL WHERE id = $6 AND state = 'pending'",
    )
    .bind(state)
    .bind(tries)
    .bind(next_try_at)
    .bind(done_at)
    .bind(error.map(str::to_string))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
