//! Counts for the demo's summary and `/admin/stats`.

use super::Db;
use anyhow::Result;
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// What a campaign run achieved; printed by the demo and served by `/admin/stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub appointments: i64,
    pub messages_sent: i64,
    pub calls_placed: i64,
    pub acknowledgements: i64,
    pub confirmed: i64,
    pub cancelled: i64,
    pub slots_released: i64,
    pub reschedule_requested: i64,
    pub escalated_to_secretaries: i64,
    pub unreachable: i64,
    pub opted_out: i64,
    pub invalid_contact: i64,
    pub still_active: i64,
    pub confirmation_rate: f64,
    pub states: BTreeMap<String, i64>,
    pub reply_intents: BTreeMap<String, i64>,
}

impl Summary {
    pub async fn read(db: &Db) -> Result<Summary> {
        let one = |sql: &'static str| {
            let pool = db.pool.clone();
            async move {
                let r = sqlx::query(sql).fetch_one(&pool).await?;
                Ok::<i64, anyhow::Error>(r.try_get::<i64, _>("n")?)
            }
        };
        let states = state_counts(db).await?;
        let s = |k: &str| states.get(k).copied().unwrap_or(0);
        let mut intents = BTreeMap::new();
        for r in sqlx::query("SELECT intent, COUNT(*) AS n FROM replies GROUP BY intent")
            .fetch_all(&db.pool)
            .await?
        {
            intents.insert(r.try_get::<String, _>("intent")?, r.try_get::<i64, _>("n")?);
        }
        let appointments = one("SELECT COUNT(*) AS n FROM appointments").await?;
        let confirmed = s("confirmed");
        Ok(Summary {
            appointments,
            messages_sent: one("SELECT COUNT(*) AS n FROM attempts WHERE purpose = 'request' AND channel <> 'call' AND state NOT IN ('sending', 'refused')").await?,
            calls_placed: one("SELECT COUNT(*) AS n FROM attempts WHERE purpose = 'request' AND channel = 'call' AND state NOT IN ('sending', 'refused')").await?,
            acknowledgements: one("SELECT COUNT(*) AS n FROM attempts WHERE purpose = 'ack' AND state NOT IN ('sending', 'refused')").await?,
            confirmed,
            cancelled: s("cancelled"),
            slots_released: one("SELECT COUNT(*) AS n FROM outbox WHERE action = 'release' AND state = 'done'").await?,
            reschedule_requested: s("reschedule_requested"),
            escalated_to_secretaries: one("SELECT COUNT(*) AS n FROM notes").await?,
            unreachable: s("unreachable"),
            opted_out: s("opted_out"),
            invalid_contact: s("invalid_contact"),
            still_active: s("scheduled") + s("awaiting_reply"),
            confirmation_rate: if appointments > 0 {
                confirmed as f64 / appointments as f64
            } else {
                0.0
            },
            states,
            reply_intents: intents,
        })
    }
}

/// Campaigns per state.
pub async fn state_counts(db: &Db) -> Result<BTreeMap<String, i64>> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM campaigns GROUP BY state")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
        .collect()
}
