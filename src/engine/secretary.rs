//! What a secretary settled by phone: resolving a note records it, and its outcome (confirmed
//! or cancelled by phone, rescheduled) goes through the state machine like any event, with who
//! did it in the ledger; a cancellation releases the slot through the outbox.

use super::shell::Engine;
use crate::domain::campaign::{Event, SecretaryOutcome};
use crate::store::admin::{self, Resolved};
use crate::store::campaigns;
use anyhow::Result;

/// Why a resolve was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no such note")]
    NotFound,
    #[error("the note was already resolved")]
    AlreadyResolved,
    #[error("the note is about no appointment: an outcome cannot be recorded on it")]
    NoCampaign,
    #[error("the campaign is {0}: {1} cannot be recorded")]
    NotApplicable(&'static str, &'static str),
}

impl Engine {
    /// Resolves note `id` by `by`; with an outcome, applies it to the note's campaign in the
    /// same transaction and then writes it to the agenda. A note resolved twice is refused.
    pub async fn resolve_note(
        &self,
        id: i64,
        by: &str,
        resolution: &str,
        outcome: Option<SecretaryOutcome>,
    ) -> Result<std::result::Result<(), ResolveError>> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let campaign_id =
            match admin::resolve_open_note(&mut tx, id, now.timestamp(), by, resolution).await? {
                Resolved::Now { campaign_id } => campaign_id,
                Resolved::Already => return Ok(Err(ResolveError::AlreadyResolved)),
                Resolved::NotFound => return Ok(Err(ResolveError::NotFound)),
            };
        let Some(outcome) = outcome else {
            tx.commit().await?;
            return Ok(Ok(()));
        };
        let Some(campaign_id) = campaign_id else {
            return Ok(Err(ResolveError::NoCampaign));
        };
        let Some(c) = campaigns::by_id_in(&mut tx, campaign_id).await? else {
            return Ok(Err(ResolveError::NoCampaign));
        };
        if !outcome.applies_to(c.state) {
            return Ok(Err(ResolveError::NotApplicable(
                c.state.as_str(),
                outcome.as_str(),
            )));
        }
        let detail =
            serde_json::json!({"note": id, "outcome": outcome.as_str(), "by": by}).to_string();
        self.apply_current(
            &mut tx,
            campaign_id,
            &Event::Secretary(outcome),
            now,
            &detail,
            None,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            note_id = id,
            campaign_id,
            outcome = outcome.as_str(),
            "secretary outcome recorded"
        );
        self.drain_outbox_for(campaign_id).await?;
        Ok(Ok(()))
    }
}
