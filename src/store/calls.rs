//! What the voice webhooks read and write: the little a call script needs of a campaign, the
//! campaign behind a call's provider id, and the trace of an answering machine (one voicemail
//! note per campaign, de-duplicated by key, and a ledger event).

use super::Db;
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

/// The campaign of a call named by its attempt key (its callback came before its id).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn of_campaign(db: &Db, campaign_id: i64) -> Result<Option<CallOfCampaign>> {
    Ok(
        sqlx::query_as("SELECT id AS campaign_id, site_id FROM campaigns WHERE id = $1")
            .bind(campaign_id)
            .fetch_optional(&db.pool)
            .await?,
    )
}
