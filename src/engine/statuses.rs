//! Provider statuses: delivery reports and call outcomes, applied to their attempt (by provider
//! id) and, for the latest request of a campaign, to the campaign. Statuses only move forward.

use super::shell::Engine;
use crate::domain::campaign::Event;
use crate::store::attempts;
use crate::store::campaigns::CampaignRow;
use anyhow::Result;

/// Delivery statuses only move forward: a late `sent` never undoes `delivered`.
pub fn delivery_advances(current: &str, next: &str) -> bool {
    fn rank(s: &str) -> u8 {
        match s {
            "sending" | "refused" => 0,
            "sent" => 1,
            "delivered" | "undelivered" | "failed" => 2,
            "read" => 3,
            _ => 0,
        }
    }
    rank(next) > rank(current)
}

impl Engine {
    /// Records a provider status for an attempt (by provider id) and feeds `event`, if any, to
    /// its campaign. Statuses only move forward: a late or replayed callback changes nothing.
    /// Returns whether the attempt is known.
    pub async fn attempt_event(
        &self,
        provider_id: &str,
        event: Option<Event>,
        status: &str,
        error_code: Option<&str>,
    ) -> Result<bool> {
        let now = self.now();
        let Some(found) = attempts::by_provider_id(&self.db, provider_id).await? else {
            return Ok(false);
        };
        if !delivery_advances(&found.attempt_state, status) {
            return Ok(true);
        }
        let code = error_code.filter(|c| !c.is_empty());
        let mut tx = self.db.begin().await?;
        let moved = attempts::advance(
            &mut tx,
            provider_id,
            &found.attempt_state,
            status,
            code,
            now.timestamp(),
        )
        .await?;
        let c = found.campaign;
        let step = found.attempt_step;
        // Only the latest request moves the campaign; a late status of an older touch is recorded.
        if let Some(event) = event
            && moved == 1
            && found.purpose == "request"
            && (step == c.step || step + 1 == c.step)
        {
            let code_detail = code
                .map(|c| format!(",\"code\":\"{c}\""))
                .unwrap_or_default();
            let detail = format!("{{\"status\":\"{status}\"{code_detail}}}");
            let at_step = CampaignRow { step, ..c };
            self.apply(&mut tx, &at_step, &event, now, &detail, None)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::delivery_advances;

    #[test]
    fn a_late_sent_never_undoes_delivered() {
        assert!(delivery_advances("sending", "sent"));
        assert!(delivery_advances("sent", "delivered"));
        assert!(!delivery_advances("delivered", "sent"));
        assert!(!delivery_advances("delivered", "delivered"));
        assert!(delivery_advances("delivered", "read"));
    }
}
