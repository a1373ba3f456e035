//! Counts for the demo's summary, the bench and `/admin/stats`.

use super::Db;
use anyhow::Result;
use serde::Serialize;
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
    /// Median hours between the note about a patient nobody reached and the appointment: how
    /// much time the secretaries had to call or give the slot away.
    pub unreachable_notice_hours_median: Option<f64>,
    /// The shortest of those notices, in hours.
    pub unreachable_notice_hours_min: Option<f64>,
    pub states: BTreeMap<String, i64>,
    pub reply_intents: BTreeMap<String, i64>,
}

/// Attempts that reached the provider: neither still `sending` nor `refused` before sending.
macro_rules! made {
    ($where:literal) => {
        concat!(
            "SELECT COUNT(*) FROM attempts WHERE ",
            $where,
            " AND state NOT IN ('sending', 'refused')"
        )
    };
}

impl Summary {
    pub async fn read(db: &Db) -> Result<Summary> {
        let states = state_counts(db).await?;
        let s = |k: &str| states.get(k).copied().unwrap_or(0);
        let appointments = count(db, "SELECT COUNT(*) FROM appointments").await?;
        let confirmed = s("confirmed");
        let notice = unreachable_notice_hours(db).await?;
        Ok(Summary {
            appointments,
            messages_sent: count(db, made!("purpose = 'request' AND channel <> 'call'")).await?,
            calls_placed: count(db, made!("purpose = 'request' AND channel = 'call'")).await?,
            acknowledgements: count(db, made!("purpose = 'ack'")).await?,
            confirmed,
            cancelled: s("cancelled"),
            slots_released: count(
                db,
                "SELECT COUNT(*) FROM outbox WHERE action = 'release' AND state = 'done'",
            )
            .await?,
            reschedule_requested: s("reschedule_requested"),
            escalated_to_secretaries: count(db, "SELECT COUNT(*) FROM notes").await?,
            unreachable: s("unreachable"),
            opted_out: s("opted_out"),
            invalid_contact: s("invalid_contact"),
            still_active: s("scheduled") + s("awaiting_reply"),
            confirmation_rate: if appointments > 0 {
                confirmed as f64 / appointments as f64
            } else {
                0.0
            },
            unreachable_notice_hours_median: median(&notice),
            unreachable_notice_hours_min: notice.first().copied(),
            states,
            reply_intents: intent_counts(db).await?,
        })
    }
}

/// The median of sorted values.
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Hours between each note about a patient nobody reached and the appointment, ascending.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn unreachable_notice_hours(db: &Db) -> Result<Vec<f64>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT a.starts_at - n.created_at FROM notes n \
         JOIN campaigns c ON c.id = n.campaign_id JOIN appointments a ON a.id = c.appointment_id \
         WHERE n.reason = 'unreachable' ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(s,)| s as f64 / 3600.0).collect())
}

/// One `SELECT COUNT(*) …` statement's count.
#[tracing::instrument(level = "debug", skip(db))]
async fn count(db: &Db, sql: &'static str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&db.pool).await?;
    Ok(n)
}

/// Counts per value of one column (`SELECT <column>, COUNT(*) … GROUP BY <column>`).
#[tracing::instrument(level = "debug", skip(db))]
async fn count_by(db: &Db, sql: &'static str) -> Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().collect())
}

/// Campaigns per state.
pub async fn state_counts(db: &Db) -> Result<BTreeMap<String, i64>> {
    count_by(db, "SELECT state, COUNT(*) FROM campaigns GROUP BY state").await
}

/// Replies per understood intent.
pub async fn intent_counts(db: &Db) -> Result<BTreeMap<String, i64>> {
    count_by(db, "SELECT intent, COUNT(*) FROM replies GROUP BY intent").await
}

/// Attempts in state `sent` (accepted by the provider, no delivery status yet; the bench's
/// sandbox reports none).
pub async fn sent_attempts(db: &Db) -> Result<i64> {
    count(db, "SELECT COUNT(*) FROM attempts WHERE state = 'sent'").await
}

/// Agenda write-backs (confirmations and releases) the agenda has taken.
pub async fn agenda_writebacks_done(db: &Db) -> Result<i64> {
    count(db, "SELECT COUNT(*) FROM outbox WHERE state = 'done'").await
}
