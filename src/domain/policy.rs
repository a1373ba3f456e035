//! Retry policy as data, and the pure functions that turn it into instants.
//!
//! A policy is a list of steps (message at J-2 in the morning window, a nudge 4 h later, then up
//! to 3 calls about 3 h apart) plus a give-up margin before the appointment (2 h by default) and a
//! contact budget per patient per day (2 messages, 3 calls). Every function here takes `now` and
//! the site's calendars as arguments: the same code drives the worker, the demo and the bench.

use super::calendar::{SendCalendar, resolve_local};
use super::types::Channel;
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Which channel a step uses. `Message` is the patient's preferred messaging channel
/// (WhatsApp when the patient chose it, SMS otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepChannel {
    Message,
    Sms,
    Whatsapp,
    Call,
}

impl StepChannel {
    pub fn parse(s: &str) -> Option<StepChannel> {
        match s {
            "message" => Some(StepChannel::Message),
            "sms" => Some(StepChannel::Sms),
            "whatsapp" => Some(StepChannel::Whatsapp),
            "call" => Some(StepChannel::Call),
            _ => None,
        }
    }

    /// The concrete channel for a patient; `None` when the patient cannot receive it (a
    /// landline gets no SMS or WhatsApp).
    pub fn resolve(self, preferred: Channel, mobile: bool) -> Option<Channel> {
        let ch = match self {
            // A patient who asked to be called has no messaging channel: message steps skip.
            StepChannel::Message if preferred == Channel::Call => return None,
            StepChannel::Message if preferred == Channel::Whatsapp => Channel::Whatsapp,
            StepChannel::Message => Channel::Sms,
            StepChannel::Sms => Channel::Sms,
            StepChannel::Whatsapp => Channel::Whatsapp,
            StepChannel::Call => Channel::Call,
        };
        if ch.is_message() && !mobile {
            None
        } else {
            Some(ch)
        }
    }
}

/// When a step becomes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepTiming {
    /// At the first allowed instant of the local day `N` days before the appointment's day.
    DaysBefore(u32),
    /// This long after the previous touch went out without an answer.
    After(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec {
    pub channel: StepChannel,
    /// Template name for messages (`request`, `nudge`); calls use the call script.
    pub template: String,
    pub timing: StepTiming,
    /// How many times this step is tried (calls: 3); messages usually 1.
    pub attempts: u32,
    /// Time between two attempts of this step.
    pub spacing: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactBudget {
    pub messages_per_day: u32,
    pub calls_per_day: u32,
}

impl ContactBudget {
    /// Whether one more touch on `channel` fits, given what this patient already received today
    /// (local day of the site, all appointments and campaigns together).
    pub fn allows(&self, channel: Channel, messages_today: u32, calls_today: u32) -> bool {
        if channel.is_message() {
            messages_today < self.messages_per_day
        } else {
            calls_today < self.calls_per_day
        }
    }
}

/// By when a person must know of a patient the automatic steps did not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// `J-N HH:MM`: that local time on the Nth day before the appointment's day; when the
    /// secretaries cannot call then (a Sunday, a holiday, outside the call windows), the last
    /// call-window instant before it.
    DayBeforeAt { days: u32, at: NaiveTime },
    /// This long before the appointment.
    Before(Duration),
}

impl Escalation {
    /// `J-1 16:00` (local day and time) or `20h` (hours before the appointment).
    pub fn parse(s: &str) -> Result<Escalation, String> {
        let s = s.trim();
        let bad = || format!("'{s}' is not J-N HH:MM (e.g. J-1 16:00) nor N hours (e.g. 20h)");
        if let Some(hours) = s.strip_suffix('h').or_else(|| s.strip_suffix('H')) {
            let h: u32 = hours.trim().parse().map_err(|_| bad())?;
            if h == 0 || h > 24 * 14 {
                return Err(format!("'{s}': hours must be 1 to 336"));
            }
            return Ok(Escalation::Before(Duration::hours(i64::from(h))));
        }
        let rest = s
            .strip_prefix("J-")
            .or_else(|| s.strip_prefix("j-"))
            .ok_or_else(bad)?;
        let (days, time) = rest.split_once(' ').ok_or_else(bad)?;
        let days: u32 = days.parse().map_err(|_| bad())?;
        if days > 14 {
            return Err(format!("'{s}': at most J-14"));
        }
        let at = NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| bad())?;
        Ok(Escalation::DayBeforeAt { days, at })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub steps: Vec<StepSpec>,
    /// No touch later than this before the appointment; past it the campaign is `unreachable`.
    pub give_up_before: Duration,
    /// Campaigns open this many local days before the appointment's day.
    pub open_days_before: u32,
    pub budget: ContactBudget,
    /// Whether a reschedule request frees the slot at once (else a secretary decides).
    pub release_on_reschedule: bool,
    /// By when the secretaries learn of a patient nobody reached (see [`Policy::escalation_at`]).
    pub escalate: Escalation,
}

/// The site's calendars per channel, in its time zone.
#[derive(Debug, Clone)]
pub struct Calendars {
    pub tz: Tz,
    pub sms: SendCalendar,
    pub whatsapp: SendCalendar,
    pub call: SendCalendar,
}

impl Calendars {
    pub fn for_channel(&self, ch: Channel) -> &SendCalendar {
        match ch {
            Channel::Sms => &self.sms,
            Channel::Whatsapp => &self.whatsapp,
            Channel::Call => &self.call,
        }
    }

    /// The local calendar day of an instant at this site, as `YYYY-MM-DD`.
    pub fn local_day(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.tz).date_naive().to_string()
    }

    /// Start and end (UTC) of the local day containing `at`: the contact budget's day.
    pub fn local_day_bounds(&self, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let day = at.with_timezone(&self.tz).date_naive();
        let start = resolve_local(self.tz, day.and_time(NaiveTime::MIN));
        let end = resolve_local(
            self.tz,
            day.succ_opt().unwrap_or(day).and_time(NaiveTime::MIN),
        );
        (start, end)
    }
}

impl Policy {
    /// The last instant at which anything may be sent for an appointment.
    pub fn deadline(&self, appointment_start: DateTime<Utc>) -> DateTime<Utc> {
        appointment_start - self.give_up_before
    }

    /// The instant a patient who was touched and has not answered becomes a note for the
    /// secretaries at the latest: the policy's `escalate_before`, never after the give-up
    /// deadline. Automatic steps that would fall after it are replaced by the note (a person
    /// calls instead); after the last automatic attempt the note comes
    /// [`ESCALATION_GRACE`] later, whichever is first.
    pub fn escalation_at(
        &self,
        appointment_start: DateTime<Utc>,
        cals: &Calendars,
    ) -> DateTime<Utc> {
        let at = match self.escalate {
            Escalation::Before(d) => appointment_start - d,
            Escalation::DayBeforeAt { days, at } => {
                let day = appointment_start.with_timezone(&cals.tz).date_naive()
                    - Duration::days(i64::from(days));
                let wanted = resolve_local(cals.tz, day.and_time(at));
                if cals.call.is_allowed(wanted) {
                    wanted
                } else {
                    cals.call.last_allowed_before(wanted).unwrap_or(wanted)
                }
            }
        };
        at.min(self.deadline(appointment_start))
    }

    /// Instant from which the planner opens a campaign: midnight local of the day
    /// `open_days_before` days before the appointment's local day.
    pub fn opens_at(&self, tz: Tz, appointment_start: DateTime<Utc>) -> DateTime<Utc> {
        let day = appointment_start.with_timezone(&tz).date_naive()
            - Duration::days(i64::from(self.open_days_before));
        resolve_local(tz, day.and_time(NaiveTime::MIN))
    }

    /// When step `step` (attempt `attempt`) may run, given the previous touch at `previous`
    /// (None for the very first step), for a patient reachable on `channel`. `None` when no
    /// allowed instant remains before the give-up deadline.
    #[allow(clippy::too_many_arguments)]
    pub fn due_at(
        &self,
        step: usize,
        attempt: u32,
        channel: Channel,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        appointment_start: DateTime<Utc>,
        cals: &Calendars,
    ) -> Option<DateTime<Utc>> {
        self.due_at_timed(
            step,
            step,
            attempt,
            channel,
            previous,
            now,
            appointment_start,
            cals,
        )
    }

    /// [`Policy::due_at`] with the timing of step `timing_of` (a step that takes the place of
    /// skipped ones takes their time).
    #[allow(clippy::too_many_arguments)]
    fn due_at_timed(
        &self,
        step: usize,
        timing_of: usize,
        attempt: u32,
        channel: Channel,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        appointment_start: DateTime<Utc>,
        cals: &Calendars,
    ) -> Option<DateTime<Utc>> {
        let spec = self.steps.get(step)?;
        let timing = self.steps.get(timing_of)?.timing;
        let earliest = if attempt > 0 {
            previous.unwrap_or(now) + spec.spacing
        } else {
            match timing {
                StepTiming::DaysBefore(days) => {
                    let day = appointment_start.with_timezone(&cals.tz).date_naive()
                        - Duration::days(i64::from(days));
                    resolve_local(cals.tz, day.and_time(NaiveTime::MIN))
                }
                StepTiming::After(d) => previous.unwrap_or(now) + d,
            }
        };
        let at = cals.for_channel(channel).next_allowed(earliest.max(now))?;
        (at <= self.deadline(appointment_start)).then_some(at)
    }

    /// The first step at or after `from` that can still run for this patient, with its
    /// channel and instant. Steps whose channel the patient cannot receive, or whose window
    /// falls after the deadline, are skipped. Before any touch (`previous` is `None`), a step
    /// that replaces skipped ones keeps the time of the first of them: a patient who asked for
    /// calls gets the first call when the first message would have gone.
    #[allow(clippy::too_many_arguments)]
    pub fn next_runnable(
        &self,
        from: usize,
        preferred: Channel,
        mobile: bool,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        appointment_start: DateTime<Utc>,
        cals: &Calendars,
    ) -> Option<(usize, Channel, DateTime<Utc>)> {
        (from..self.steps.len()).find_map(|i| {
            let ch = self.steps[i].channel.resolve(preferred, mobile)?;
            let timing_of = if previous.is_none() && preferred == Channel::Call {
                from
            } else {
                i
            };
            let at =
                self.due_at_timed(i, timing_of, 0, ch, previous, now, appointment_start, cals)?;
            Some((i, ch, at))
        })
    }
}

/// Midnight local of the day after `at` at a site: where a step blocked by the daily contact
/// budget starts looking again.
pub fn next_local_day(tz: Tz, at: DateTime<Utc>) -> DateTime<Utc> {
    let day = at.with_timezone(&tz).date_naive();
    let next = day.succ_opt().unwrap_or(day);
    resolve_local(tz, next.and_time(NaiveTime::MIN))
}

/// A UTC instant from Unix seconds, clamped into chrono's range.
pub fn from_unix(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

// -------------------------------------------------------------------------------------------
// Delays. Every retry and backoff number of Rappel lives here (or in the configuration), each
// with the reason for its value.

/// A provider's transient error (5xx, timeout) without `Retry-After`: Twilio's incidents last
/// minutes, and a step retried sooner would only add load to a struggling API.
pub const TRANSIENT_RETRY: Duration = Duration::minutes(5);
/// A 429 without `Retry-After`: Twilio's queue drains in seconds to a minute.
pub const RATE_LIMITED_RETRY: Duration = Duration::minutes(1);
/// A configuration error (a sender not allowed, an unverified number): a person must fix it, so
/// the campaign pauses and a secretary is told; 15 min lets the fix land before the next try.
pub const CONFIGURATION_PAUSE: Duration = Duration::minutes(15);
/// A refused acknowledgement is sent again after this long (the patient already answered: a
/// few minutes late is fine, a hammering loop is not).
pub const ACK_RETRY_AFTER: Duration = Duration::minutes(5);
/// The agenda outbox doubles its delay per failed try up to this cap: a FHIR server down for
/// the night is tried hourly, not every few seconds.
pub const OUTBOX_BACKOFF_CAP: Duration = Duration::hours(1);
/// How far back reply routing looks for the campaign a reply answers: a second reply after a
/// confirm or a cancel comes within days.
pub const REPLY_ROUTING_WINDOW: Duration = Duration::days(7);
/// WhatsApp allows free text only within 24 h of the patient's last message; outside it a
/// conversation is opened with an approved template.
pub const WHATSAPP_SESSION: Duration = Duration::hours(24);
/// A provider's own pause after a 5xx it answered (the Twilio client, the sandbox's faults).
pub const PROVIDER_SERVER_ERROR_RETRY: Duration = Duration::seconds(30);
/// A 429 whose `Retry-After` is missing, inside the Twilio client (before the step-level
/// [`RATE_LIMITED_RETRY`]).
pub const PROVIDER_RATE_LIMIT_RETRY: Duration = Duration::seconds(1);
/// Reconciliation looks for a provider's message or call from this long before the attempt was
/// recorded (wall clock): the provider's clock and ours (both NTP-synced) differ by well under
/// this, and its timestamps count whole seconds. Wider would let an earlier attempt's message
/// to the same number with the same text (a WhatsApp template's request and nudge, seconds
/// apart under a fast simulated clock) pass for this one.
pub const RECONCILE_CLOCK_SLACK: Duration = Duration::seconds(5);

/// After the last automatic attempt, a patient has this long to answer before a secretary is
/// told: most answers to a call's voicemail or a last SMS come within minutes, and a person
/// needs the hours before the appointment more than the patient needs a longer wait.
pub const ESCALATION_GRACE: Duration = Duration::minutes(30);
/// A freed slot can still be offered to someone else when the appointment is at least this far
/// away (the waitlist needs time to answer and come).
pub const REFILL_LEAD: Duration = Duration::hours(4);
/// A person must act today on a patient nobody reached when the appointment is this close.
pub const ACT_TODAY_WITHIN: Duration = Duration::hours(36);

/// The delay before outbox try `tries + 1` (tries ≥ 1): `base` doubled per failed try, capped
/// at [`OUTBOX_BACKOFF_CAP`].
pub fn outbox_backoff(base: Duration, tries: i64) -> Duration {
    let doublings = (tries.clamp(1, 13) - 1) as i32;
    (base * (1i32 << doublings)).min(OUTBOX_BACKOFF_CAP)
}

#[cfg(test)]
mod delay_tests {
    use super::*;

    #[test]
    fn outbox_backoff_doubles_per_try_and_stops_at_one_hour() {
        let base = Duration::seconds(30);
        assert_eq!(outbox_backoff(base, 1), Duration::seconds(30));
        assert_eq!(outbox_backoff(base, 2), Duration::seconds(60));
        assert_eq!(outbox_backoff(base, 4), Duration::seconds(240));
        assert_eq!(outbox_backoff(base, 9), Duration::hours(1));
        assert_eq!(outbox_backoff(base, 40), Duration::hours(1));
    }
}
