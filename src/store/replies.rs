//! `replies`: what patients wrote or pressed, with how it was understood. Keyed by the
//! provider's message id, so that a replayed webhook inserts nothing.

use super::{Db, Tx, sql};
use anyhow::Result;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct NewReply {
    pub provider_id: String,
    pub campaign_id: Option<i64>,
    pub phone: String,
    pub channel: &'static str,
    pub body: String,
    pub intent: &'static str,
    pub confidence: f64,
    pub reason: String,
    pub received_at: i64,
}

/// Inserts a reply; `None` when the provider id was already stored (a replay).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn insert(tx: &mut Tx, r: &NewReply) -> Result<Option<i64>> {
    let id: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO replies (provider_id, campaign_id, phone, channel, body, intent, confidence, \
           reason, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (provider_id) DO NOTHING RETURNING id",
    )
    .bind(r.provider_id.clone())
    .bind(r.campaign_id)
    .bind(r.phone.clone())
    .bind(r.channel)
    .bind(r.body.clone())
    .bind(r.intent)
    .bind(r.confidence)
    .bind(r.reason.clone())
    .bind(r.received_at)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id.map(|(id,)| id))
}

/// When each of these numbers last wrote to us (Unix seconds).
#[tracing::instrument(level = "debug", skip_all, fields(n = phones.len()))]
pub async fn last_inbound(db: &Db, phones: &[String]) -> Result<HashMap<String, i64>> {
    let sql =
        "SELECT phone, MAX(received_at) AS t FROM replies WHERE phone IN ({list}) GROUP BY phone";
    sql::fetch_for_list(db, sql, None, phones).await
}

/// How a stored reply was understood.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn intent_of(db: &Db, id: i64) -> Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT intent FROM replies WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|(i,)| i))
}
