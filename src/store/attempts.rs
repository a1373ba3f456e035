//! `attempts`: every message or call Rappel asked a provider for, recorded under (campaign,
//! step, attempt) before the provider is called, then its outcome and delivery status.

use super::campaigns::{CampaignRow, campaign_columns};
use super::{Db, Tx, sql};
use crate::domain::types::Channel;
use anyhow::Result;
use std::collections::HashSet;

/// An attempt about to be made.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub campaign_id: i64,
    pub step: i64,
    pub attempt: i64,
    pub channel: Channel,
    /// `request` (a campaign step) or `ack` (an acknowledgement of a reply).
    pub purpose: &'static str,
    pub phone: String,
}

/// Inserts attempts (a conflict inserts nothing); returns the keys that were new.
#[tracing::instrument(level = "debug", skip_all, fields(n = rows.len()))]
pub async fn record_many(
    tx: &mut Tx,
    rows: &[NewAttempt],
    now: i64,
) -> Result<HashSet<(i64, i64, i64)>> {
    let inserted: Vec<(i64, i64, i64)> = sql::fetch_rows(
        tx,
        "INSERT INTO attempts (campaign_id, step, attempt, channel, purpose, phone, state, \
           created_at, updated_at) VALUES {rows} \
         ON CONFLICT (campaign_id, step, attempt) DO NOTHING RETURNING campaign_id, step, attempt",
        "(?, ?, ?, ?, ?, ?, 'sending', $1, $1)",
        now,
        rows,
        |q, a| {
            q.bind(a.campaign_id)
                .bind(a.step)
                .bind(a.attempt)
                .bind(a.channel.as_str())
                .bind(a.purpose)
                .bind(a.phone.clone())
        },
    )
    .await?;
    Ok(inserted.into_iter().collect())
}

/// What is stored of an attempt that already existed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAttempt {
    pub state: String,
    pub provider_id: Option<String>,
    pub created_at: i64,
}

#[tracing::instrument(level = "debug", skip(tx))]
pub async fn get(tx: &mut Tx, campaign_id: i64, step: i64, attempt: i64) -> Result<StoredAttempt> {
    Ok(sqlx::query_as(
        "SELECT state, provider_id, created_at FROM attempts \
         WHERE campaign_id = $1 AND step = $2 AND attempt = $3",
    )
    .bind(campaign_id)
    .bind(step)
    .bind(attempt)
    .fetch_one(&mut **tx)
    .await?)
}

/// A refused attempt is tried again under the same key: it goes back to `sending`.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn reopen(
    tx: &mut Tx,
    campaign_id: i64,
    step: i64,
    attempt: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE attempts SET state = 'sending', updated_at = $1 \
         WHERE campaign_id = $2 AND step = $3 AND attempt = $4",
    )
    .bind(now)
    .bind(campaign_id)
    .bind(step)
    .bind(attempt)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What the provider answered to an attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub campaign_id: i64,
    pub step: i64,
    pub attempt: i64,
    pub state: &'static str,
    pub provider_id: Option<String>,
    pub error_code: Option<String>,
}

/// Records outcomes: one statement per chunk.
#[tracing::instrument(level = "debug", skip_all, fields(n = rows.len()))]
pub async fn set_outcomes(tx: &mut Tx, rows: &[Outcome], now: i64) -> Result<()> {
    sql::execute_rows(
        tx,
        "UPDATE attempts SET state = v.column4, \
           provider_id = COALESCE(v.column5, attempts.provider_id), error_code = v.column6, \
           updated_at = $1 FROM (VALUES {rows}) AS v \
         WHERE attempts.campaign_id = v.column1 AND attempts.step = v.column2 \
           AND attempts.attempt = v.column3",
        "(?, ?, ?, ?, ?, ?)",
        now,
        rows,
        |q, o| {
            q.bind(o.campaign_id)
                .bind(o.step)
                .bind(o.attempt)
                .bind(o.state)
                .bind(o.provider_id.clone())
                .bind(o.error_code.clone())
        },
    )
    .await
}

/// An attempt found by the provider's id, with its campaign.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderAttempt {
    pub attempt_state: String,
    pub attempt_step: i64,
    pub purpose: String,
    #[sqlx(flatten)]
    pub campaign: CampaignRow,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn by_provider_id(db: &Db, provider_id: &str) -> Result<Option<ProviderAttempt>> {
    Ok(sqlx::query_as(concat!(
        "SELECT t.state AS attempt_state, t.step AS attempt_step, t.purpose, ",
        campaign_columns!(),
        " FROM attempts t JOIN campaigns c ON c.id = t.campaign_id \
         JOIN appointments a ON a.id = c.appointment_id WHERE t.provider_id = $1"
    ))
    .bind(provider_id.to_string())
    .fetch_optional(&db.pool)
    .await?)
}

/// Moves an attempt's status from `from` to `to` (nothing if it moved meanwhile); returns the
/// number of rows moved (0 or 1).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn advance(
    tx: &mut Tx,
    provider_id: &str,
    from: &str,
    to: &str,
    error_code: Option<&str>,
    now: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE attempts SET state = $1, error_code = COALESCE($2, error_code), updated_at = $3 \
         WHERE provider_id = $4 AND state = $5",
    )
    .bind(to.to_string())
    .bind(error_code.map(str::to_string))
    .bind(now)
    .bind(provider_id.to_string())
    .bind(from.to_string())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// One touch of a number (a request attempt the provider did not refuse).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Touch {
    pub phone: String,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub created_at: i64,
}

/// Request attempts made to these numbers since `since`.
#[tracing::instrument(level = "debug", skip_all, fields(n = phones.len()))]
pub async fn requests_since(db: &Db, phones: &[String], since: i64) -> Result<Vec<Touch>> {
    sql::fetch_for_list(
        db,
        "SELECT phone, channel, created_at FROM attempts WHERE purpose = 'request' \
         AND created_at >= $1 AND state <> 'refused' AND phone IN ({list})",
        Some(since),
        phones,
    )
    .await
}

/// An acknowledgement recorded but not known to be sent, with its campaign.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingAck {
    /// The reply it acknowledges (an acknowledgement's attempt number is the reply id).
    pub reply_id: i64,
    #[sqlx(try_from = "String")]
    pub ack_channel: Channel,
    pub recorded_at: i64,
    #[sqlx(flatten)]
    pub campaign: CampaignRow,
}

/// Acknowledgements left `sending` before `sending_before` (a crash) or `refused` before
/// `refused_before`, at most `limit`.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn pending_acks(
    db: &Db,
    sending_before: i64,
    refused_before: i64,
    limit: i64,
) -> Result<Vec<PendingAck>> {
    Ok(sqlx::query_as(concat!(
        "SELECT t.attempt AS reply_id, t.channel AS ack_channel, t.created_at AS recorded_at, ",
        campaign_columns!(),
        " FROM attempts t JOIN campaigns c ON c.id = t.campaign_id \
         JOIN appointments a ON a.id = c.appointment_id WHERE t.purpose = 'ack' AND \
         ((t.state = 'sending' AND t.updated_at < $1) OR (t.state = 'refused' AND t.updated_at < $2)) \
         LIMIT $3"
    ))
    .bind(sending_before)
    .bind(refused_before)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}
