//! Scenario tests of the campaign state machine (`campaign::decide`) with the default policy of
//! `config/default.toml` and the default send windows, in Paris, Réunion and Martinique.
//! Every instant is checked in UTC.
//!
//! This file holds the shared fixtures (policy, calendars, campaign builders, the no-reply
//! simulation); the scenarios are grouped by theme in `opening`, `steps` and `replies`.

use super::calendar::{SendCalendar, default_call_windows, default_message_windows};
use super::campaign::{
    Ack, CallOutcome, Campaign, Command, Event, NoteReason, Opening, RouteCandidate, SendFailure,
    Transition, Upstream, decide, lead_closes_followers, opening, route_reply,
};
use super::policy::{
    Calendars, ContactBudget, Escalation, Policy, StepChannel, StepSpec, StepTiming,
};
use super::reply::Intent;
use super::types::{CampaignState as S, Channel};
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;

mod opening;
mod replies;
mod steps;

const PARIS: Tz = Tz::Europe__Paris;
const REUNION: Tz = Tz::Indian__Reunion;
const MARTINIQUE: Tz = Tz::America__Martinique;

// ---- fixtures ----

/// `[policies.standard]` of config/default.toml.
fn policy() -> Policy {
    Policy {
        name: "standard".into(),
        steps: vec![
            StepSpec {
                channel: StepChannel::Message,
                template: "request".into(),
                timing: StepTiming::DaysBefore(2),
                attempts: 1,
                spacing: Duration::zero(),
            },
            StepSpec {
                channel: StepChannel::Message,
                template: "nudge".into(),
                timing: StepTiming::After(Duration::minutes(240)),
                attempts: 1,
                spacing: Duration::zero(),
            },
            StepSpec {
                channel: StepChannel::Call,
                template: "call".into(),
                timing: StepTiming::After(Duration::minutes(60)),
                attempts: 3,
                spacing: Duration::minutes(180),
            },
        ],
        give_up_before: Duration::hours(2),
        open_days_before: 2,
        budget: ContactBudget {
            messages_per_day: 2,
            calls_per_day: 3,
        },
        release_on_reschedule: false,
        escalate: Escalation::DayBeforeAt {
            days: 1,
            at: chrono::NaiveTime::from_hms_opt(16, 0, 0).unwrap(),
        },
    }
}

fn calendars(tz: Tz) -> Calendars {
    Calendars {
        tz,
        sms: SendCalendar::new(tz, default_message_windows()),
        whatsapp: SendCalendar::new(tz, default_message_windows()),
        call: SendCalendar::new(tz, default_call_windows()),
    }
}

fn paris() -> Calendars {
    calendars(PARIS)
}

/// A wall-clock time that exists exactly once in `tz`, as a UTC instant.
fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("unambiguous test time")
        .with_timezone(&Utc)
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid test time")
}

/// A mobile patient preferring SMS, campaign just created.
fn campaign(appointment_start: DateTime<Utc>) -> Campaign {
    Campaign {
        state: S::Scheduled,
        step: 0,
        attempt: 0,
        appointment_start,
        preferred: Channel::Sms,
        mobile: true,
    }
}

fn at_step(start: DateTime<Utc>, state: S, step: u32, attempt: u32) -> Campaign {
    Campaign {
        state,
        step,
        attempt,
        ..campaign(start)
    }
}

fn tr(state: S, step: u32, attempt: u32, commands: Vec<Command>) -> Transition {
    Transition {
        state,
        step,
        attempt,
        commands,
    }
}

fn sched(at: DateTime<Utc>, step: u32, attempt: u32) -> Command {
    Command::Schedule { at, step, attempt }
}

fn send(channel: Channel, template: &str, step: u32, attempt: u32) -> Command {
    Command::Send {
        channel,
        template: template.into(),
        step,
        attempt,
    }
}

fn apply(c: &Campaign, t: &Transition) -> Campaign {
    Campaign {
        state: t.state,
        step: t.step,
        attempt: t.attempt,
        ..c.clone()
    }
}

fn reply(intent: Intent) -> Event {
    Event::Reply {
        intent,
        late: false,
    }
}

const DUE: Event = Event::StepDue {
    budget_ok: true,
    opted_out: false,
};

fn has_ack(t: &Transition) -> bool {
    t.commands
        .iter()
        .any(|c| matches!(c, Command::Acknowledge(_)))
}

fn has_send(t: &Transition) -> bool {
    t.commands.iter().any(|c| matches!(c, Command::Send { .. }))
}

/// One touch made during a simulated campaign.
#[derive(Debug, Clone, PartialEq)]
struct Touch {
    at: DateTime<Utc>,
    channel: Channel,
    step: u32,
    attempt: u32,
}

struct Run {
    touches: Vec<Touch>,
    /// Every instant a step was queued for, in order.
    schedules: Vec<DateTime<Utc>>,
    /// The campaign after the last transition, the instant and the transition itself.
    end: Campaign,
    ended_at: DateTime<Utc>,
    last: Transition,
}

/// The worker's loop with no reply: open, then at each queued instant StepDue (with the daily
/// contact budget counted per local day as the engine does), and Sent for every touch.
fn simulate(c: Campaign, opened_at: DateTime<Utc>, p: &Policy, cals: &Calendars) -> Run {
    let mut c = c;
    let mut now = opened_at;
    let mut touches: Vec<Touch> = Vec::new();
    let mut schedules = Vec::new();
    let mut t = decide(&c, &Event::Opened, now, p, cals);
    for _ in 0..100 {
        c = apply(&c, &t);
        let Some((due, step, attempt)) = t.commands.iter().find_map(|cmd| match cmd {
            Command::Schedule { at, step, attempt } => Some((*at, *step, *attempt)),
            _ => None,
        }) else {
            return Run {
                touches,
                schedules,
                end: c,
                ended_at: now,
                last: t,
            };
        };
        assert_eq!(
            (step, attempt),
            (c.step, c.attempt),
            "queued step is the campaign's"
        );
        assert!(due >= now, "queued in the past: {due} < {now}");
        schedules.push(due);
        now = due;
        let channel = p
            .steps
            .get(c.step as usize)
            .and_then(|s| s.channel.resolve(c.preferred, c.mobile));
        let day = cals.local_day(now);
        let count = |message: bool| {
            touches
                .iter()
                .filter(|x| x.channel.is_message() == message && cals.local_day(x.at) == day)
                .count() as u32
        };
        let budget_ok = channel.is_none_or(|ch| p.budget.allows(ch, count(true), count(false)));
        t = decide(
            &c,
            &Event::StepDue {
                budget_ok,
                opted_out: false,
            },
            now,
            p,
            cals,
        );
        if let Some((channel, step, attempt)) = t.commands.iter().find_map(|cmd| match cmd {
            Command::Send {
                channel,
                step,
                attempt,
                ..
            } => Some((*channel, *step, *attempt)),
            _ => None,
        }) {
            touches.push(Touch {
                at: now,
                channel,
                step,
                attempt,
            });
            c = apply(&c, &t);
            t = decide(&c, &Event::Sent, now, p, cals);
        }
    }
    panic!("campaign did not end within 100 transitions");
}
