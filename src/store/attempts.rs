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
/// `now` is the engine's clock, `wall` the real one (crash recovery asks the provider for what it
/// created since `wall`).
pub async fn record_many(
    tx: &mut Tx,
    rows: &[NewAttempt],
    now: i64,
    wall: i64,
) -> Result<HashSet<(i64, i64, i64)>> {
    let inserted: Vec<(i64, i64, i64)> = sql::fetch_rows(
        tx,
        "INSERT INTO attempts (campaign_id, step, attempt, channel, purpose, phone, state, \
           created_at, updated_at, recorded_wall) VALUES {rows} \
         ON CONFLICT (campaign_id, step, attempt) DO NOTHING RETURNING campaign_id, step, attempt",
        "(?, ?, ?, ?, ?, ?, 'sending', $1, $1, ?)",
        now,
        rows,
        |q, a| {
            q.bind(a.campaign_id)
                .bind(a.step)
                .bind(a.attempt)
                .bind(a.channel.as_str())
                .bind(a.purpose)
                .bind(a.phone.clone())
                .bind(wall)
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
    pub recorded_wall: Option<i64>,
}

#[tracing::instrument(level = "debug", skip(tx))]
pub async fn get(tx: &mut Tx, campaign_id: i64, step: i64, attempt: i64) -> Result<StoredAttempt> {
    Ok(sqlx::query_as(
        "SELECT state, provider_id, created_at, recorded_wall FROM attempts \
         WHERE campaign_id = $1 AND step = $2 AND attempt = $3",
    )
    .bind(campaign_id)
    .bind(step)
    .bind(attempt)
    .fetch_one(&mut **tx)
    .await?)
}

/// A refused (or withdrawn) attempt is tried again under the same key: it goes back to
/// `sending`, recorded anew at `wall`.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn reopen(
    tx: &mut Tx,
    campaign_id: i64,
    step: i64,
    attempt: i64,
    now: i64,
    wall: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE attempts SET state = 'sending', updated_at = $1, recorded_wall = $5, \
         error_code = NULL WHERE campaign_id = $2 AND step = $3 AND attempt = $4",
    )
    .bind(now)
    .bind(campaign_id)
    .bind(step)
    .bind(attempt)
    .bind(wall)
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

/// Records outcomes: one statement per chunk. An outcome is a fact about the provider (it
/// created the message, or refused it): it is recorded whatever the campaign did meanwhile.
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

/// Attempts recorded but not handed to the provider (their campaign changed, or their step
/// moved, at their turn): `refused` with code `withdrawn`, so they count as no touch and the
/// same key may be tried again. An attempt another worker meanwhile sent is left alone.
#[tracing::instrument(level = "debug", skip_all, fields(n = keys.len()))]
pub async fn withdraw(tx: &mut Tx, keys: &[(i64, i64, i64)], now: i64) -> Result<()> {
    sql::execute_rows(
        tx,
        "UPDATE attempts SET state = 'refused', error_code = 'withdrawn', updated_at = $1 \
         FROM (VALUES {rows}) AS v WHERE attempts.campaign_id = v.column1 \
           AND attempts.step = v.column2 AND attempts.attempt = v.column3 \
           AND attempts.state = 'sending' AND attempts.provider_id IS NULL",
        "(?, ?, ?)",
        now,
        keys,
        |q, k| q.bind(k.0).bind(k.1).bind(k.2),
    )
    .await
}

/// An attempt found by the provider's id, with its campaign.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderAttempt {
    pub attempt_state: String,
    pub attempt_step: i64,
    pub attempt_no: i64,
    #[sqlx(try_from = "String")]
    pub attempt_channel: Channel,
    pub purpose: String,
    pub provider_id: Option<String>,
    pub early_status: Option<String>,
    pub early_code: Option<String>,
    #[sqlx(flatten)]
    pub campaign: CampaignRow,
}

macro_rules! select_provider_attempt {
    ($rest:literal) => {
        concat!(
            "SELECT t.state AS attempt_state, t.step AS attempt_step, t.attempt AS attempt_no, \
             t.channel AS attempt_channel, t.purpose, t.provider_id, t.early_status, t.early_code, ",
            campaign_columns!(),
            " FROM attempts t JOIN campaigns c ON c.id = t.campaign_id \
             JOIN appointments a ON a.id = c.appointment_id ",
            $rest
        )
    };
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn by_provider_id(tx: &mut Tx, provider_id: &str) -> Result<Option<ProviderAttempt>> {
    Ok(
        sqlx::query_as(select_provider_attempt!("WHERE t.provider_id = $1"))
            .bind(provider_id.to_string())
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// An attempt by its key (campaign, step, attempt), with its campaign.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn by_key(
    tx: &mut Tx,
    campaign_id: i64,
    step: i64,
    attempt: i64,
) -> Result<Option<ProviderAttempt>> {
    Ok(sqlx::query_as(select_provider_attempt!(
        "WHERE t.campaign_id = $1 AND t.step = $2 AND t.attempt = $3"
    ))
    .bind(campaign_id)
    .bind(step)
    .bind(attempt)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Keeps a status that arrived before the attempt's outcome was recorded (and the provider's
/// id it names), to apply when the outcome is committed.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn keep_early(
    tx: &mut Tx,
    key: (i64, i64, i64),
    provider_id: &str,
    status: &str,
    error_code: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE attempts SET early_status = $1, early_code = $2, \
         provider_id = COALESCE(provider_id, $3), updated_at = $4 \
         WHERE campaign_id = $5 AND step = $6 AND attempt = $7 AND state = 'sending'",
    )
    .bind(status.to_string())
    .bind(error_code.map(str::to_string))
    .bind(provider_id.to_string())
    .bind(now)
    .bind(key.0)
    .bind(key.1)
    .bind(key.2)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Attempts among `provider_ids` that hold an early status (just given their outcome).
#[tracing::instrument(level = "debug", skip_all, fields(n = provider_ids.len()))]
pub async fn with_early_status(
    tx: &mut Tx,
    provider_ids: &[String],
) -> Result<Vec<(String, String, Option<String>)>> {
    let mut out = Vec::new();
    for chunk in provider_ids.chunks(sql::MAX_ROWS) {
        let mut q = sql::as_with_list(
            "SELECT provider_id, early_status, early_code FROM attempts \
             WHERE early_status IS NOT NULL AND provider_id IN ({list})",
            1,
            chunk.len(),
        );
        for id in chunk {
            q = q.bind(id.clone());
        }
        out.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// Forgets an early status once applied.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn clear_early(tx: &mut Tx, provider_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE attempts SET early_status = NULL, early_code = NULL WHERE provider_id = $1",
    )
    .bind(provider_id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
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
    pub campaign_id: i64,
    pub step: i64,
    pub attempt: i64,
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
        "SELECT campaign_id, step, attempt, phone, channel, created_at FROM attempts \
         WHERE purpose = 'request' \
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
    /// Its step: the acknowledgement itself, or the holding message sent while the agenda is
    /// slow.
    pub ack_step: i64,
    #[sqlx(try_from = "String")]
    pub ack_channel: Channel,
    pub recorded_at: i64,
    pub recorded_wall: Option<i64>,
    /// The acknowledgement's kind (`campaign::Ack::as_str`), when it was recorded with one.
    pub ack: Option<String>,
    #[sqlx(flatten)]
    pub campaign: CampaignRow,
}

/// Records which acknowledgement an attempt sends (recovery sends the same one again).
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn set_ack(
    tx: &mut Tx,
    campaign_id: i64,
    step: i64,
    attempt: i64,
    ack: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE attempts SET ack = $1 WHERE campaign_id = $2 AND step = $3 AND attempt = $4",
    )
    .bind(ack.to_string())
    .bind(campaign_id)
    .bind(step)
    .bind(attempt)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
        "SELECT t.attempt AS reply_id, t.step AS ack_step, t.channel AS ack_channel, t.created_at AS recorded_at, \
         t.recorded_wall, t.ack, ",
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
