//! `campaigns`: one row per appointment version, its state, its due step and its claim.

use super::{Backend, Db, Tx, sql};
use crate::domain::campaign::{Campaign, RouteCandidate};
use crate::domain::policy::from_unix;
use crate::domain::types::{CampaignState, Channel, PhoneNumber};
use anyhow::Result;
use std::collections::{HashMap, HashSet};

/// One campaign with what the dispatcher and the reply path need of its appointment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignRow {
    pub id: i64,
    pub appointment_id: i64,
    pub appointment_version: i64,
    pub site_id: String,
    pub policy: String,
    pub phone: Option<String>,
    pub lead_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub state: CampaignState,
    pub step: i64,
    pub attempt: i64,
    pub due_at: Option<i64>,
    pub updated_at: i64,
    /// Bumped by every state write; a write checks the version it was decided from.
    pub version: i64,
    pub starts_at: i64,
    pub exam_code: String,
    pub locale: String,
    #[sqlx(try_from = "String")]
    pub channel_pref: Channel,
}

impl CampaignRow {
    pub fn mobile(&self) -> bool {
        self.phone
            .as_deref()
            .and_then(|p| PhoneNumber::parse(p).ok())
            .is_some_and(|p| p.is_mobile())
    }

    /// What the pure state machine needs of this campaign.
    pub fn core(&self) -> Campaign {
        Campaign {
            state: self.state,
            step: self.step.max(0) as u32,
            attempt: self.attempt.max(0) as u32,
            appointment_start: from_unix(self.starts_at),
            preferred: self.channel_pref,
            mobile: self.mobile(),
        }
    }

    /// What reply routing needs of this campaign.
    pub fn route(&self) -> RouteCandidate {
        RouteCandidate {
            id: self.id,
            state: self.state,
            updated_at: from_unix(self.updated_at),
        }
    }
}

/// The columns of [`CampaignRow`], over `campaigns c JOIN appointments a`.
macro_rules! campaign_columns {
    () => {
        "c.id, c.appointment_id, c.appointment_version, c.site_id, c.policy, c.phone, \
         c.lead_id, c.state, c.step, c.attempt, c.due_at, c.updated_at, c.version, a.starts_at, \
         a.exam_code, a.locale, a.channel_pref"
    };
}
pub(crate) use campaign_columns;

/// `SELECT` of [`CampaignRow`] columns followed by the given clauses.
macro_rules! select_campaigns {
    ($rest:literal) => {
        concat!(
            "SELECT ",
            campaign_columns!(),
            " FROM campaigns c JOIN appointments a ON a.id = c.appointment_id ",
            $rest
        )
    };
}

#[tracing::instrument(level = "debug", skip(db))]
pub async fn by_id(db: &Db, id: i64) -> Result<Option<CampaignRow>> {
    Ok(sqlx::query_as(select_campaigns!("WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?)
}

/// Lead campaigns of a number touched since `since` (candidates for routing its reply).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn recent_leads_of_phone(db: &Db, phone: &str, since: i64) -> Result<Vec<CampaignRow>> {
    Ok(sqlx::query_as(select_campaigns!(
        "WHERE c.phone = $1 AND c.lead_id IS NULL AND c.updated_at >= $2"
    ))
    .bind(phone.to_string())
    .bind(since)
    .fetch_all(&db.pool)
    .await?)
}

/// The campaigns of `ids` still held under `token`.
#[tracing::instrument(level = "debug", skip_all, fields(n = ids.len()))]
pub async fn claimed(db: &Db, token: &str, ids: &[i64]) -> Result<Vec<CampaignRow>> {
    let mut q = sql::as_with_rows(
        select_campaigns!("WHERE c.claim_token = $1 AND c.id IN ({list})"),
        "",
        2,
        ids.len(),
    )
    .bind(token.to_string());
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(&db.pool).await?)
}

/// Active campaigns whose appointment started (to expire), at most `limit`.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn started(db: &Db, now: i64, limit: i64) -> Result<Vec<CampaignRow>> {
    Ok(sqlx::query_as(select_campaigns!(
        "WHERE c.state IN ('scheduled', 'awaiting_reply') AND a.starts_at <= $1 LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// Campaigns selected by one id inside a transaction.
async fn in_tx(tx: &mut Tx, statement: &'static str, id: i64) -> Result<Vec<CampaignRow>> {
    Ok(sqlx::query_as(statement)
        .bind(id)
        .fetch_all(&mut **tx)
        .await?)
}

/// One campaign, read inside a transaction (after a write lost to a newer change).
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn by_id_in(tx: &mut Tx, id: i64) -> Result<Option<CampaignRow>> {
    Ok(in_tx(tx, select_campaigns!("WHERE c.id = $1"), id)
        .await?
        .pop())
}

/// Campaigns of an appointment that an upstream change still concerns.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn open_of_appointment(tx: &mut Tx, appointment_id: i64) -> Result<Vec<CampaignRow>> {
    let statement = select_campaigns!(
        "WHERE c.appointment_id = $1 AND c.state NOT IN ('expired', 'cancelled_upstream')"
    );
    in_tx(tx, statement, appointment_id).await
}

/// Active followers of a lead, earliest appointment first.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn active_followers(tx: &mut Tx, lead_id: i64) -> Result<Vec<CampaignRow>> {
    let statement = select_campaigns!(
        "WHERE c.lead_id = $1 AND c.state IN ('scheduled', 'awaiting_reply') ORDER BY a.starts_at"
    );
    in_tx(tx, statement, lead_id).await
}

/// Every follower of a lead (a reply to the lead answers for them all).
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn followers(tx: &mut Tx, lead_id: i64) -> Result<Vec<CampaignRow>> {
    in_tx(tx, select_campaigns!("WHERE c.lead_id = $1"), lead_id).await
}

/// Claims up to `limit` campaigns due at `now` (the engine's clock) whose claim is free or
/// expired at `wall_now`, until `wall_until` under `token`; returns their ids. Claims count real
/// (wall-clock) seconds whatever the engine's clock says: a lease is about a live process.
#[tracing::instrument(level = "debug", skip(db, token))]
pub async fn claim_due(
    db: &Db,
    now: i64,
    wall_now: i64,
    wall_until: i64,
    token: &str,
    limit: i64,
) -> Result<Vec<i64>> {
    let statement = match db.backend {
        Backend::Postgres => {
            "UPDATE campaigns SET claimed_until = $1, claim_token = $2 WHERE id IN (\
               SELECT id FROM campaigns WHERE due_at IS NOT NULL AND due_at <= $3 \
               AND (claimed_until IS NULL OR claimed_until < $4) ORDER BY due_at LIMIT $5 \
               FOR UPDATE SKIP LOCKED) RETURNING id"
        }
        Backend::Sqlite => {
            "UPDATE campaigns SET claimed_until = $1, claim_token = $2 WHERE id IN (\
               SELECT id FROM campaigns WHERE due_at IS NOT NULL AND due_at <= $3 \
               AND (claimed_until IS NULL OR claimed_until < $4) ORDER BY due_at LIMIT $5) \
             RETURNING id"
        }
    };
    let mut tx = db.begin().await?;
    let ids: Vec<(i64,)> = sqlx::query_as(statement)
        .bind(wall_until)
        .bind(token.to_string())
        .bind(now)
        .bind(wall_now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Extends the claims still held under `token` until `wall_until` (the heartbeat of a batch
/// that is sending); returns the ids still held.
#[tracing::instrument(level = "debug", skip(db, token))]
pub async fn renew_claim(db: &Db, token: &str, wall_until: i64) -> Result<HashSet<i64>> {
    let mut tx = db.begin().await?;
    let ids: Vec<(i64,)> = sqlx::query_as(
        "UPDATE campaigns SET claimed_until = $1 WHERE claim_token = $2 RETURNING id",
    )
    .bind(wall_until)
    .bind(token.to_string())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Releases what is left of a claim once its batch is done.
#[tracing::instrument(level = "debug", skip(db, token))]
pub async fn release_claim(db: &Db, token: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE campaigns SET claimed_until = NULL, claim_token = NULL WHERE claim_token = $1",
    )
    .bind(token.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What the dispatcher checks at the instant of sending: the campaign's version and its claim.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimState {
    pub id: i64,
    pub version: i64,
    pub claim_token: Option<String>,
    pub claimed_until: Option<i64>,
}

#[tracing::instrument(level = "debug", skip_all, fields(n = ids.len()))]
pub async fn claim_states(db: &Db, ids: &[i64]) -> Result<Vec<ClaimState>> {
    sql::fetch_for_list(
        db,
        "SELECT id, version, claim_token, claimed_until FROM campaigns WHERE id IN ({list})",
        None,
        ids,
    )
    .await
}

#[tracing::instrument(level = "debug", skip(tx))]
pub async fn set_lead(tx: &mut Tx, id: i64, lead_id: Option<i64>) -> Result<()> {
    sqlx::query("UPDATE campaigns SET lead_id = $1 WHERE id = $2")
        .bind(lead_id)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(tx))]
pub async fn set_last_intent(tx: &mut Tx, id: i64, intent: &str) -> Result<()> {
    sqlx::query("UPDATE campaigns SET last_intent = $1 WHERE id = $2")
        .bind(intent.to_string())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A campaign's state after a transition, and the version it was decided from.
#[derive(Debug, Clone, Copy)]
pub struct StateWrite {
    pub id: i64,
    pub from_version: i64,
    pub state: CampaignState,
    pub step: i64,
    pub attempt: i64,
    pub due_at: Option<i64>,
}

/// Writes transitions (and releases their claims): one statement per chunk. A row is written
/// only if its version is still the one it was decided from (then bumped); returns the ids
/// written. A campaign that changed meanwhile (a reply, a status) keeps that newer change.
#[tracing::instrument(level = "debug", skip_all, fields(n = rows.len()))]
pub async fn write_states(tx: &mut Tx, rows: &[StateWrite], now: i64) -> Result<HashSet<i64>> {
    // VALUES columns are column1… on both engines.
    let written: Vec<(i64,)> = sql::fetch_rows(
        tx,
        "UPDATE campaigns SET state = v.column2, step = v.column3, attempt = v.column4, \
         due_at = v.column5, claimed_until = NULL, claim_token = NULL, updated_at = $1, \
         version = campaigns.version + 1 \
         FROM (VALUES {rows}) AS v WHERE campaigns.id = v.column1 AND campaigns.version = v.column6 \
         RETURNING campaigns.id",
        "(?, ?, ?, ?, ?, ?)",
        now,
        rows,
        |q, w| {
            q.bind(w.id)
                .bind(w.state.as_str())
                .bind(w.step)
                .bind(w.attempt)
                .bind(w.due_at)
                .bind(w.from_version)
        },
    )
    .await?;
    Ok(written.into_iter().map(|(id,)| id).collect())
}

/// A campaign the planner opens.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub appointment_id: i64,
    pub appointment_version: i64,
    pub site_id: String,
    pub policy: String,
    pub phone: Option<String>,
    pub group_key: Option<String>,
    pub lead_id: Option<i64>,
    pub state: CampaignState,
    /// The step its first touch is.
    pub step: i64,
    pub due_at: Option<i64>,
}

/// Inserts new campaigns (re-planning is harmless: a conflict inserts nothing); returns the new
/// id per appointment id.
#[tracing::instrument(level = "debug", skip_all, fields(n = rows.len()))]
pub async fn insert_many(tx: &mut Tx, rows: &[NewCampaign], now: i64) -> Result<HashMap<i64, i64>> {
    let ids: Vec<(i64, i64)> = sql::fetch_rows(
        tx,
        "INSERT INTO campaigns (appointment_id, appointment_version, site_id, policy, phone, \
           group_key, lead_id, state, due_at, step, attempt, created_at, updated_at) \
         VALUES {rows} ON CONFLICT (appointment_id, appointment_version) DO NOTHING \
         RETURNING appointment_id, id",
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, $1, $1)",
        now,
        rows,
        |q, n| {
            q.bind(n.appointment_id)
                .bind(n.appointment_version)
                .bind(n.site_id.clone())
                .bind(n.policy.clone())
                .bind(n.phone.clone())
                .bind(n.group_key.clone())
                .bind(n.lead_id)
                .bind(n.state.as_str())
                .bind(n.due_at)
                .bind(n.step)
        },
    )
    .await?;
    Ok(ids.into_iter().collect())
}

/// Scheduled leads (nothing sent yet) of these same-day group keys, by key.
#[tracing::instrument(level = "debug", skip_all, fields(n = keys.len()))]
pub async fn scheduled_leads(db: &Db, keys: &[String]) -> Result<HashMap<String, i64>> {
    let sql = "SELECT group_key, id FROM campaigns \
               WHERE lead_id IS NULL AND state = 'scheduled' AND group_key IN ({list})";
    sql::fetch_for_list(db, sql, None, keys).await
}

/// Start instants of the active followers of each lead.
#[tracing::instrument(level = "debug", skip_all, fields(n = leads.len()))]
pub async fn follower_starts(db: &Db, leads: &[i64]) -> Result<HashMap<i64, Vec<i64>>> {
    let starts: Vec<(i64, i64)> = sql::fetch_for_list(
        db,
        "SELECT c.lead_id, a.starts_at FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
         WHERE c.state IN ('scheduled', 'awaiting_reply') AND c.lead_id IN ({list})",
        None,
        leads,
    )
    .await?;
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    for (lead, starts_at) in starts {
        out.entry(lead).or_default().push(starts_at);
    }
    Ok(out)
}

/// The earliest instant at which something will be due (a step or an outbox retry).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn next_due(db: &Db) -> Result<Option<i64>> {
    let (t,): (Option<i64>,) = sqlx::query_as(
        "SELECT MIN(t) AS t FROM (SELECT MIN(due_at) AS t FROM campaigns WHERE due_at IS NOT NULL \
         UNION ALL SELECT MIN(next_try_at) AS t FROM outbox WHERE state = 'pending') x",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok(t)
}

/// Spreads the due steps over `span` seconds from `first` (by campaign id), for the bench's
/// due → sent lag: steps fall due a few at a time, as in a working day.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn spread_due(db: &Db, first: i64, span: i64) -> Result<()> {
    sqlx::query("UPDATE campaigns SET due_at = $1 + (id % $2) WHERE due_at IS NOT NULL")
        .bind(first)
        .bind(span)
        .execute(&db.pool)
        .await?;
    Ok(())
}
