//! Provider statuses: delivery reports and call outcomes, applied to their attempt and, for the
//! latest request of a campaign, to the campaign. Statuses only move forward.
//!
//! A callback names its attempt (`?attempt=` in the callback URL Rappel gave), so it finds it
//! even before the attempt's outcome (and provider id) is committed; such an early status is
//! kept on the attempt and applied right after the outcome, never dropped. An error code says
//! what the campaign must do, as for a refusal at send time: an invalid number closes it with
//! a note, a configuration error pauses it, a provider opt-out records one, anything else moves
//! to the next channel at once.

use super::dispatch::failure_of;
use super::shell::Engine;
use crate::domain::campaign::{CallOutcome, Event};
use crate::domain::types::Channel;
use crate::provider::ProviderError;
use crate::provider::twilio::map_error_code;
use crate::store::Tx;
use crate::store::attempts::{self, ProviderAttempt};
use crate::store::campaigns::CampaignRow;
use anyhow::Result;

/// How many times a status is applied again when its campaign changed under it.
const MAX_STATUS_RETRIES: usize = 8;

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

/// A status callback as the provider sent it.
#[derive(Debug, Clone)]
pub struct ProviderStatus {
    /// The provider's id of the message or call.
    pub provider_id: String,
    /// The attempt key the callback URL names, when it names one.
    pub attempt: Option<String>,
    /// The provider's status word (`delivered`, `undelivered`, `busy`, `no-answer`, …).
    pub status: String,
    pub error_code: Option<String>,
}

/// What a provider status means for an attempt on `channel`: the attempt's stored status and
/// the campaign's event; `None` for a status that changes nothing (queued, ringing…).
pub fn status_meaning(
    channel: Channel,
    status: &str,
    error_code: Option<&str>,
) -> Option<(&'static str, Option<Event>)> {
    if channel == Channel::Call {
        return match status {
            "completed" => Some(("delivered", None)),
            "busy" => Some(("undelivered", Some(Event::CallEnded(CallOutcome::Busy)))),
            "no-answer" => Some(("undelivered", Some(Event::CallEnded(CallOutcome::NoAnswer)))),
            "failed" | "canceled" => Some(("failed", Some(Event::CallEnded(CallOutcome::Failed)))),
            _ => None,
        };
    }
    match status {
        "sent" => Some(("sent", None)),
        "delivered" => Some(("delivered", None)),
        "read" => Some(("read", None)),
        "undelivered" => Some(("undelivered", Some(undelivered_event(error_code)))),
        "failed" => Some(("failed", Some(undelivered_event(error_code)))),
        _ => None,
    }
}

/// The campaign's event for a message the provider could not deliver, by its error code.
fn undelivered_event(error_code: Option<&str>) -> Event {
    let error = error_code
        .and_then(|c| c.trim().parse::<i64>().ok())
        .map(map_error_code);
    match error {
        Some(
            e @ (ProviderError::InvalidNumber { .. }
            | ProviderError::Configuration { .. }
            | ProviderError::OptedOut { .. }),
        ) => Event::SendFailed(failure_of(&e, chrono::Utc::now()).0),
        _ => Event::Undelivered,
    }
}

/// The (campaign, step, attempt) of an attempt key `c<campaign>-s<step>-a<attempt>`.
pub fn parse_attempt_key(key: &str) -> Option<(i64, i64, i64)> {
    let rest = key.strip_prefix('c')?;
    let (c, rest) = rest.split_once("-s")?;
    let (s, a) = rest.split_once("-a")?;
    Some((c.parse().ok()?, s.parse().ok()?, a.parse().ok()?))
}

impl Engine {
    /// Records a provider status for its attempt and feeds its event, if any, to the campaign.
    /// Statuses only move forward: a late or replayed callback changes nothing. Returns whether
    /// the attempt is known.
    pub async fn provider_status(&self, s: &ProviderStatus) -> Result<bool> {
        for _ in 0..MAX_STATUS_RETRIES {
            let mut tx = self.db.begin().await?;
            let key = s.attempt.as_deref().and_then(parse_attempt_key);
            let found = match key {
                Some((c, st, a)) => attempts::by_key(&mut tx, c, st, a).await?,
                None => attempts::by_provider_id(&mut tx, &s.provider_id).await?,
            };
            let Some(found) = found else {
                tx.rollback().await?;
                tracing::info!(status = %s.status, "status for an unknown attempt ignored");
                return Ok(false);
            };
            let code = s.error_code.as_deref().filter(|c| !c.is_empty());
            if found.attempt_state == "sending"
                && found
                    .provider_id
                    .as_deref()
                    .is_none_or(|p| p == s.provider_id)
            {
                // The send's outcome is not committed yet: keep the status for it.
                if status_meaning(found.attempt_channel, &s.status, code).is_some() {
                    attempts::keep_early(
                        &mut tx,
                        (found.campaign.id, found.attempt_step, found.attempt_no),
                        &s.provider_id,
                        &s.status,
                        code,
                        self.now().timestamp(),
                    )
                    .await?;
                }
                tx.commit().await?;
                return Ok(true);
            }
            if self.apply_status(&mut tx, found, &s.status, code).await? {
                tx.commit().await?;
                return Ok(true);
            }
            tx.rollback().await?;
        }
        anyhow::bail!("a status's campaign kept changing while the status was applied")
    }

    /// Applies statuses that reached these attempts before their outcome, now recorded.
    pub(super) async fn apply_early_statuses(
        &self,
        tx: &mut Tx,
        provider_ids: &[String],
    ) -> Result<()> {
        for (provider_id, status, code) in attempts::with_early_status(tx, provider_ids).await? {
            attempts::clear_early(tx, &provider_id).await?;
            for _ in 0..MAX_STATUS_RETRIES {
                let Some(found) = attempts::by_provider_id(tx, &provider_id).await? else {
                    break;
                };
                if self
                    .apply_status(tx, found, &status, code.as_deref())
                    .await?
                {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Moves the attempt's status and, for the latest request of its campaign, applies the
    /// event. `false` when the campaign changed since it was read (nothing written).
    async fn apply_status(
        &self,
        tx: &mut Tx,
        found: ProviderAttempt,
        status: &str,
        code: Option<&str>,
    ) -> Result<bool> {
        let Some((stored, event)) = status_meaning(found.attempt_channel, status, code) else {
            return Ok(true);
        };
        if !delivery_advances(&found.attempt_state, stored) {
            return Ok(true);
        }
        let provider_id = found.provider_id.clone().unwrap_or_default();
        let now = self.now();
        let moved = attempts::advance(
            tx,
            &provider_id,
            &found.attempt_state,
            stored,
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
            let detail = format!("{{\"status\":\"{stored}\"{code_detail}}}");
            // A refusal after acceptance is retried (after a configuration pause) as a new
            // attempt of the same step, never under the key the provider already has.
            let attempt = match event {
                Event::SendFailed(_) => found.attempt_no + 1,
                _ => c.attempt,
            };
            let at_step = CampaignRow { step, attempt, ..c };
            return Ok(self
                .apply(tx, &at_step, &event, now, &detail, None)
                .await?
                .is_some());
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_sent_never_undoes_delivered() {
        assert!(delivery_advances("sending", "sent"));
        assert!(delivery_advances("sent", "delivered"));
        assert!(!delivery_advances("delivered", "sent"));
        assert!(!delivery_advances("delivered", "delivered"));
        assert!(delivery_advances("delivered", "read"));
    }

    #[test]
    fn an_error_code_in_a_callback_says_what_the_campaign_must_do() {
        use crate::domain::campaign::SendFailure;
        let event = |code| status_meaning(Channel::Sms, "undelivered", code).unwrap().1;
        assert_eq!(event(Some("30006")), Some(Event::Undelivered));
        assert_eq!(event(Some("30003")), Some(Event::Undelivered));
        assert_eq!(event(None), Some(Event::Undelivered));
        assert_eq!(
            event(Some("30005")),
            Some(Event::SendFailed(SendFailure::InvalidNumber))
        );
        assert_eq!(
            event(Some("30007")),
            Some(Event::SendFailed(SendFailure::Configuration))
        );
        assert_eq!(
            event(Some("21610")),
            Some(Event::SendFailed(SendFailure::OptedOut))
        );
        assert_eq!(
            status_meaning(Channel::Call, "busy", None),
            Some(("undelivered", Some(Event::CallEnded(CallOutcome::Busy))))
        );
        assert_eq!(status_meaning(Channel::Sms, "queued", None), None);
    }

    #[test]
    fn an_attempt_key_reads_back() {
        assert_eq!(parse_attempt_key("c12-s1000-a7"), Some((12, 1000, 7)));
        assert_eq!(parse_attempt_key("c12-s1"), None);
        assert_eq!(parse_attempt_key("x"), None);
    }
}
