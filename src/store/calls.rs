//! What the voice webhooks read and write: the little a call script needs of a campaign, the
//! campaign behind a call's provider id, and the trace of an answering machine (one voicemail
//! note per campaign, de-duplicated by key, and a ledger event).

use super::{Db, Tx};
use anyhow::Result;

/// What a call script needs of a campaign and its appointment; no exam, no health data.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallCampaignRow {
    pub site_id: String,
    pub phone: Option<String>,
    pub starts_at: i64,
    pub locale: String,
    pub patient_name: String,
}

#[tracing::instrument(level = "debug", skip(db))]
pub async fn campaign(db: &Db, campaign_id: i64) -> Result<Option<CallCampaignRow>> {
    Ok(sqlx::query_as(
        "SELECT c.site_id, c.phone, a.starts_at, a.locale, a.patient_name FROM campaigns c \
         JOIN appointments a ON a.id = c.appointment_id WHERE c.id = $1",
    )
    .bind(campaign_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// The campaign a call belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallOfCampaign {
    pub campaign_id: i64,
    pub site_id: String,
}

/// The campaign of the attempt the provider knows as `call_sid`.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn by_call_sid(db: &Db, call_sid: &str) -> Result<Option<CallOfCampaign>> {
    Ok(sqlx::query_as(
        "SELECT t.campaign_id, c.site_id FROM attempts t JOIN campaigns c ON c.id = t.campaign_id \
         WHERE t.provider_id = $1",
    )
    .bind(call_sid.to_string())
    .fetch_optional(&db.pool)
    .await?)
}

/// Records that a voicemail is left for the campaign (a resolved, low-priority note keyed
/// `voicemail:c<id>`); false when one was already left: one voicemail per appointment.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn first_voicemail(
    tx: &mut Tx,
    site_id: &str,
    campaign_id: i64,
    now: i64,
) -> Result<bool> {
    let inserted: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO notes (site_id, campaign_id, priority, reason, detail, state, created_at, dedup_key) \
         VALUES ($1, $2, 4, 'voicemail_left', '', 'resolved', $3, $4) \
         ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
    )
    .bind(site_id.to_string())
    .bind(campaign_id)
    .bind(now)
    .bind(format!("voicemail:c{campaign_id}"))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(inserted.is_some())
}

/// Appends an `answering_machine` event at the campaign's current state.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn answering_machine_event(
    tx: &mut Tx,
    campaign_id: i64,
    now: i64,
    voicemail: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (campaign_id, at, kind, state, detail) \
         SELECT id, $1, 'answering_machine', state, $2 FROM campaigns WHERE id = $3",
    )
    .bind(now)
    .bind(if voicemail {
        "{\"voicemail\":true}"
    } else {
        "{\"voicemail\":false}"
    })
    .bind(campaign_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
