//! Rules about touching a patient that look beyond one campaign: the daily contact budget across
//! appointments and channels, opt-outs, and WhatsApp's 24-hour session. The shell gathers the
//! history (touches, last inbound message); these functions decide.

use super::campaign::{Campaign, Event};
use super::policy::{Calendars, Policy, WHATSAPP_SESSION, from_unix};
use super::types::Channel;
use chrono::{DateTime, Utc};

/// A touch already made to a number (a request the provider did not refuse), or one decided
/// earlier in the same batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub channel: Channel,
    /// Unix seconds.
    pub at: i64,
}

/// Messages and calls among `touches` made on the site's local day of `now`.
pub fn touches_today(touches: &[Touch], now: DateTime<Utc>, cals: &Calendars) -> (u32, u32) {
    let (start, end) = cals.local_day_bounds(now);
    let (start, end) = (start.timestamp(), end.timestamp());
    let today = touches.iter().filter(|t| t.at >= start && t.at < end);
    let (messages, calls) = today.fold((0, 0), |(m, c), t| {
        if t.channel.is_message() {
            (m + 1, c)
        } else {
            (m, c + 1)
        }
    });
    (messages, calls)
}

/// The event of a due step, with what the budget and the opt-outs say of it.
pub fn step_due(
    c: &Campaign,
    policy: &Policy,
    cals: &Calendars,
    now: DateTime<Utc>,
    touches: &[Touch],
    opted_out: bool,
) -> Event {
    let channel = policy
        .steps
        .get(c.step as usize)
        .and_then(|s| s.channel.resolve(c.preferred, c.mobile));
    let budget_ok = channel.is_none_or(|ch| {
        let (messages, calls) = touches_today(touches, now, cals);
        policy.budget.allows(ch, messages, calls)
    });
    Event::StepDue {
        budget_ok,
        opted_out,
    }
}

/// Whether a WhatsApp message must open the conversation with an approved template: the
/// patient has not written within [`WHATSAPP_SESSION`].
pub fn whatsapp_needs_template(last_inbound: Option<i64>, now: DateTime<Utc>) -> bool {
    last_inbound.is_none_or(|t| from_unix(t) < now - WHATSAPP_SESSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::{SendCalendar, default_message_windows};
    use chrono::{Duration, TimeZone};

    fn paris() -> Calendars {
        let cal = SendCalendar::new(chrono_tz::Europe::Paris, default_message_windows());
        Calendars {
            tz: chrono_tz::Europe::Paris,
            sms: cal.clone(),
            whatsapp: cal.clone(),
            call: cal,
        }
    }

    #[test]
    fn only_touches_of_the_local_day_count_against_the_budget() {
        let cals = paris();
        // 10:00 Paris on 2026-12-03 (UTC+1).
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap();
        let t = |d: u32, h: u32, m: u32, channel| Touch {
            channel,
            at: Utc
                .with_ymd_and_hms(2026, 12, d, h, m, 0)
                .unwrap()
                .timestamp(),
        };
        let touches = [
            t(3, 8, 0, Channel::Sms),
            t(3, 8, 0, Channel::Call),
            // 23:30 UTC on the 2nd is 00:30 Paris on the 3rd: today.
            t(2, 23, 30, Channel::Sms),
            // 22:30 UTC on the 2nd is 23:30 Paris on the 2nd: yesterday.
            t(2, 22, 30, Channel::Sms),
        ];
        assert_eq!(touches_today(&touches, now, &cals), (2, 1));
    }

    #[test]
    fn whatsapp_free_text_is_allowed_only_within_a_day_of_the_patients_last_message() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap();
        assert!(whatsapp_needs_template(None, now));
        let recent = (now - Duration::hours(23)).timestamp();
        assert!(!whatsapp_needs_template(Some(recent), now));
        let old = (now - Duration::hours(25)).timestamp();
        assert!(whatsapp_needs_template(Some(old), now));
    }
}
