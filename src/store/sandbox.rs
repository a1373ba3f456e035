//! `sandbox_messages`: what the sandbox provider accepted. It stands in for a provider's message
//! log, so reconciliation after a timeout or a crash asks it exactly as it would ask Twilio.

use super::{Db, sql};
use crate::domain::types::Channel;
use anyhow::Result;

/// A message or call the sandbox accepted.
#[derive(Debug, Clone)]
pub struct SandboxMessage {
    /// Rappel's attempt key; not unique here (a provider does not de-duplicate).
    pub client_ref: String,
    pub sid: String,
    pub channel: Channel,
    pub phone: String,
    pub body: String,
    pub created_at: i64,
}

/// Records accepted messages in one transaction; their ids keep the order of `rows`.
#[tracing::instrument(level = "debug", skip_all, fields(n = rows.len()))]
pub async fn record_many(db: &Db, rows: &[SandboxMessage]) -> Result<()> {
    let mut tx = db.begin().await?;
    for chunk in rows.chunks(sql::rows_per_statement(6)) {
        let mut q = sql::with_rows(
            "INSERT INTO sandbox_messages (client_ref, sid, channel, phone, body, created_at) \
             VALUES {rows}",
            "(?, ?, ?, ?, ?, ?)",
            1,
            chunk.len(),
        );
        for m in chunk {
            q = q
                .bind(m.client_ref.clone())
                .bind(m.sid.clone())
                .bind(m.channel.as_str())
                .bind(m.phone.clone())
                .bind(m.body.clone())
                .bind(m.created_at);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The sid of the first message recorded under `client_ref`, if the sandbox accepted one.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn first_sid(db: &Db, client_ref: &str) -> Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT sid FROM sandbox_messages WHERE client_ref = $1 ORDER BY id LIMIT 1",
    )
    .bind(client_ref.to_string())
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(sid,)| sid))
}
