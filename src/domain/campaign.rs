//! The campaign state machine: `(campaign, event, now, policy, calendars) -> transition`.
//!
//! Pure: no I/O, the clock is an argument. Events are what happened (a step fell due, the
//! provider accepted or refused, a reply with its intent, a call outcome, the appointment changed
//! upstream); commands are what the shell must do (send, schedule the next step, write to the
//! agenda, release the slot, write a note, acknowledge, record an opt-out). The worker, the demo
//! and the bench all run this one function, so a policy can be tested over days of simulated
//! time in microseconds.
//!
//! Rules that cost money or slots when wrong:
//! - once a patient answers, no further touch on any channel (stop on any answer);
//! - a confirm after the slot was released goes to a person, never silently back to booked;
//! - after an opt-out the patient gets one confirmation of the opt-out and nothing else.

use super::policy::{
    ACT_TODAY_WITHIN, Calendars, ESCALATION_GRACE, Policy, REFILL_LEAD, next_local_day,
};
use super::reply::Intent;
use super::types::{CampaignState, Channel};
use chrono::{DateTime, Utc};

/// What the state machine knows of one campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub state: CampaignState,
    /// Index of the step that is due next (or ran last while awaiting a reply).
    pub step: u32,
    pub attempt: u32,
    pub appointment_start: DateTime<Utc>,
    pub preferred: Channel,
    /// Whether the number can receive SMS/WhatsApp (landlines get calls only).
    pub mobile: bool,
}

/// Why the provider refused or could not deliver, reduced to what changes the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// Try the same attempt again later (429, 5xx without creation, network).
    Transient { retry_at: DateTime<Utc> },
    /// The number cannot receive this channel (landline 30006, unreachable 21614, WhatsApp
    /// 63016/63024): move to the next step on another channel at once.
    ChannelUnavailable,
    /// The number does not exist (21211).
    InvalidNumber,
    /// The provider's own opt-out list (21610).
    OptedOut,
    /// Rappel's configuration is wrong (21606, authentication): pause rather than burn attempts.
    Configuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    NoAnswer,
    Busy,
    Failed,
    /// Answering machine: leave one short voicemail with no health data.
    Machine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The centre moved the appointment or changed its exam: a new campaign replaces this one.
    Superseded,
    /// The centre cancelled the appointment.
    Cancelled,
    /// The appointment's start time passed.
    Started,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The planner opened the campaign.
    Opened,
    /// The queued step fell due. The shell says whether the daily contact budget allows one
    /// more touch and whether the number opted out meanwhile.
    StepDue {
        budget_ok: bool,
        opted_out: bool,
    },
    /// The provider accepted the message or call of the current step.
    Sent,
    SendFailed(SendFailure),
    /// A delivery status said undelivered/failed after acceptance.
    Undelivered,
    CallEnded(CallOutcome),
    Reply {
        intent: Intent,
        late: bool,
    },
    Upstream(Upstream),
    /// The lead campaign of a same-day group closed without a reply (followers mirror it).
    LeadClosed(CampaignState),
    /// A secretary settled it with the patient by phone.
    Secretary(SecretaryOutcome),
}

/// What a secretary settled by phone, recorded when she resolves a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretaryOutcome {
    /// The patient will come: written to the agenda.
    ConfirmedByPhone,
    /// The patient will not come: the slot is released through the outbox.
    CancelledByPhone,
    /// The secretary moved the appointment in the agenda herself: this campaign ends (the new
    /// time comes back from the agenda as a moved appointment).
    Rescheduled,
}

impl SecretaryOutcome {
    pub fn parse(s: &str) -> Option<SecretaryOutcome> {
        match s {
            "confirmed_by_phone" => Some(SecretaryOutcome::ConfirmedByPhone),
            "cancelled_by_phone" => Some(SecretaryOutcome::CancelledByPhone),
            "rescheduled" => Some(SecretaryOutcome::Rescheduled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SecretaryOutcome::ConfirmedByPhone => "confirmed_by_phone",
            SecretaryOutcome::CancelledByPhone => "cancelled_by_phone",
            SecretaryOutcome::Rescheduled => "rescheduled",
        }
    }

    /// Whether it can be recorded on a campaign in `state`: no outcome is, on an appointment
    /// the patient or the centre already cancelled, nor on one that started or was replaced.
    pub fn applies_to(self, state: CampaignState) -> bool {
        !matches!(
            state,
            CampaignState::Cancelled | CampaignState::CancelledUpstream | CampaignState::Expired
        )
    }
}

impl Event {
    /// Short name for the ledger.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Opened => "opened",
            Event::StepDue { .. } => "step_due",
            Event::Sent => "sent",
            Event::SendFailed(_) => "send_failed",
            Event::Undelivered => "undelivered",
            Event::CallEnded(_) => "call_ended",
            Event::Reply { .. } => "reply",
            Event::Upstream(_) => "upstream",
            Event::LeadClosed(_) => "lead_closed",
            Event::Secretary(_) => "secretary",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteReason {
    Urgent,
    Question,
    Unclear,
    WrongPerson,
    Reschedule,
    ConfirmAfterRelease,
    LateReply,
    InvalidContact,
    Unreachable,
    ProviderConfiguration,
    /// The patient confirmed and said they will be late: the secretaries see it (low).
    RunningLate,
}

impl NoteReason {
    /// 1 = urgent … 4 = low; secretaries read by priority then age.
    pub fn priority(self) -> u8 {
        match self {
            NoteReason::Urgent => 1,
            NoteReason::Question
            | NoteReason::WrongPerson
            | NoteReason::Reschedule
            | NoteReason::ConfirmAfterRelease
            | NoteReason::ProviderConfiguration => 2,
            NoteReason::Unclear | NoteReason::LateReply | NoteReason::InvalidContact => 3,
            NoteReason::Unreachable | NoteReason::RunningLate => 4,
        }
    }

    /// The priority of this note written at `now` for an appointment at `appointment_start`:
    /// a patient nobody reached (or with no usable number) is urgent to call while the
    /// appointment is near and its slot could still go to someone else, less so days ahead or
    /// when it is too late to refill the slot.
    pub fn priority_at(self, now: DateTime<Utc>, appointment_start: DateTime<Utc>) -> u8 {
        match self {
            NoteReason::Unreachable | NoteReason::InvalidContact => {
                let left = appointment_start - now;
                if left >= REFILL_LEAD && left <= ACT_TODAY_WITHIN {
                    2
                } else {
                    3
                }
            }
            other => other.priority(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NoteReason::Urgent => "urgent",
            NoteReason::Question => "question",
            NoteReason::Unclear => "unclear",
            NoteReason::WrongPerson => "wrong_person",
            NoteReason::Reschedule => "reschedule",
            NoteReason::ConfirmAfterRelease => "confirm_after_release",
            NoteReason::LateReply => "late_reply",
            NoteReason::InvalidContact => "invalid_contact",
            NoteReason::Unreachable => "unreachable",
            NoteReason::ProviderConfiguration => "provider_configuration",
            NoteReason::RunningLate => "running_late",
        }
    }
}

/// The acknowledgement templates (`templates/<locale>/ack_<name>.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Confirmed {
        late: bool,
    },
    Cancelled,
    Reschedule,
    Holding,
    OptOut,
    /// The answer is taken, its agenda write-back is not done yet (the agenda is slow or down):
    /// the real outcome follows.
    Pending {
        cancel: bool,
    },
    /// The agenda refused the write-back for good: the centre will call.
    AgendaFailed,
}

/// What became of an answer's agenda write-back, as the patient must be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgendaOutcome {
    Accepted,
    /// Tried and failed; tried again later.
    Retrying,
    Failed,
}

impl Ack {
    pub fn template(self) -> &'static str {
        match self {
            Ack::Confirmed { .. } => "ack_confirmed",
            Ack::Cancelled => "ack_cancelled",
            Ack::Reschedule => "ack_reschedule",
            Ack::Holding => "ack_holding",
            Ack::OptOut => "ack_opt_out",
            Ack::Pending { cancel: false } => "ack_pending_confirm",
            Ack::Pending { cancel: true } => "ack_pending_cancel",
            Ack::AgendaFailed => "ack_agenda_failed",
        }
    }

    /// Whether this acknowledgement states what the agenda must first accept (a confirmation,
    /// a cancellation): it waits for the write-back.
    pub fn awaits_agenda(self) -> bool {
        matches!(self, Ack::Confirmed { .. } | Ack::Cancelled)
    }

    /// What the patient is told once the write-back this acknowledgement waited for has an
    /// outcome: the acknowledgement itself when the agenda accepted, a holding message while it
    /// is retried (sent once, on the first failed try), a "the centre will call" when it failed.
    pub fn after_agenda(self, outcome: AgendaOutcome, first_failure: bool) -> Option<Ack> {
        match outcome {
            AgendaOutcome::Accepted => Some(self),
            AgendaOutcome::Retrying if first_failure => Some(Ack::Pending {
                cancel: self == Ack::Cancelled,
            }),
            AgendaOutcome::Retrying => None,
            AgendaOutcome::Failed => Some(Ack::AgendaFailed),
        }
    }

    /// Its name in the database (`outbox.ack`, `attempts.ack`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ack::Confirmed { late: false } => "confirmed",
            Ack::Confirmed { late: true } => "confirmed_late",
            Ack::Cancelled => "cancelled",
            Ack::Reschedule => "reschedule",
            Ack::Holding => "holding",
            Ack::OptOut => "opt_out",
            Ack::Pending { cancel: false } => "pending_confirm",
            Ack::Pending { cancel: true } => "pending_cancel",
            Ack::AgendaFailed => "agenda_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Ack> {
        Some(match s {
            "confirmed" => Ack::Confirmed { late: false },
            "confirmed_late" => Ack::Confirmed { late: true },
            "cancelled" => Ack::Cancelled,
            "reschedule" => Ack::Reschedule,
            "holding" => Ack::Holding,
            "opt_out" => Ack::OptOut,
            "pending_confirm" => Ack::Pending { cancel: false },
            "pending_cancel" => Ack::Pending { cancel: true },
            "agenda_failed" => Ack::AgendaFailed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Record the attempt under (campaign, step, attempt), then hand it to the provider.
    Send {
        channel: Channel,
        template: String,
        step: u32,
        attempt: u32,
    },
    /// Queue the next step for `at`.
    Schedule {
        at: DateTime<Utc>,
        step: u32,
        attempt: u32,
    },
    /// Nothing more is due.
    Unschedule,
    ConfirmInAgenda,
    ReleaseSlot,
    Note(NoteReason),
    Acknowledge(Ack),
    RecordOptOut,
    Voicemail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: CampaignState,
    pub step: u32,
    pub attempt: u32,
    pub commands: Vec<Command>,
}

impl Transition {
    fn stay(c: &Campaign) -> Transition {
        Transition {
            state: c.state,
            step: c.step,
            attempt: c.attempt,
            commands: Vec::new(),
        }
    }

    /// In `state`, with step `step` (attempt `attempt`) queued at `at`.
    fn scheduled(state: CampaignState, step: u32, attempt: u32, at: DateTime<Utc>) -> Transition {
        Transition {
            state,
            step,
            attempt,
            commands: vec![Command::Schedule { at, step, attempt }],
        }
    }

    fn to(c: &Campaign, state: CampaignState, commands: Vec<Command>) -> Transition {
        Transition {
            state,
            step: c.step,
            attempt: c.attempt,
            commands,
        }
    }
}

/// The state machine. See the module doc.
pub fn decide(
    c: &Campaign,
    event: &Event,
    now: DateTime<Utc>,
    policy: &Policy,
    cals: &Calendars,
) -> Transition {
    escalate_in_time(
        c,
        decide_event(c, event, now, policy, cals),
        now,
        policy,
        cals,
    )
}

/// A patient who was touched and has not answered reaches a person in time: a step queued
/// after the policy's escalation instant is replaced by the end of the automatic steps at that
/// instant (the note), and the wait after the last attempt lasts [`ESCALATION_GRACE`], not until
/// the give-up deadline.
fn escalate_in_time(
    c: &Campaign,
    mut t: Transition,
    now: DateTime<Utc>,
    policy: &Policy,
    cals: &Calendars,
) -> Transition {
    if t.state != CampaignState::AwaitingReply {
        return t;
    }
    let last = policy.steps.len() as u32;
    let escalation = policy.escalation_at(c.appointment_start, cals);
    let deadline = policy.deadline(c.appointment_start);
    for cmd in &mut t.commands {
        if let Command::Schedule { at, step, attempt } = cmd {
            let end = if *step >= last {
                Some((now + ESCALATION_GRACE).min(*at))
            } else if *at > escalation && escalation > now {
                Some(escalation.max(now + ESCALATION_GRACE).min(deadline))
            } else {
                None
            };
            if let Some(end) = end {
                (*at, *step, *attempt) = (end.max(now), last, 0);
                t.step = last;
                t.attempt = 0;
            }
        }
    }
    t
}

fn decide_event(
    c: &Campaign,
    event: &Event,
    now: DateTime<Utc>,
    policy: &Policy,
    cals: &Calendars,
) -> Transition {
    use CampaignState as S;
    match event {
        Event::Upstream(change) => upstream(c, *change),
        Event::Reply { intent, late } => reply(c, *intent, *late, policy),
        Event::Secretary(outcome) => secretary(c, *outcome),
        Event::LeadClosed(state) if c.state.is_active() => Transition::to(c, *state, vec![]),
        _ if !c.state.is_active() => Transition::stay(c),
        Event::Opened => open(c, now, policy, cals),
        Event::StepDue {
            budget_ok,
            opted_out,
        } => step_due(c, *budget_ok, *opted_out, now, policy, cals),
        Event::Sent => follow_up(c, now, policy, cals),
        Event::SendFailed(f) => send_failed(c, *f, now, policy, cals),
        Event::Undelivered if c.state == S::AwaitingReply => {
            next_channel_at_once(c, now, policy, cals)
        }
        Event::Undelivered => Transition::stay(c),
        Event::CallEnded(CallOutcome::Machine) => Transition {
            commands: vec![Command::Voicemail],
            ..Transition::stay(c)
        },
        // The next attempt was already queued when the call went out.
        Event::CallEnded(_) => Transition::stay(c),
        Event::LeadClosed(_) => Transition::stay(c),
    }
}

/// How the planner opens the campaign of a booked appointment.
#[derive(Debug, Clone, PartialEq)]
pub enum Opening {
    /// No usable number: a secretary is told, nothing is sent.
    InvalidContact,
    /// A second appointment of the same patient on the same local day, while the first one's
    /// campaign has not sent yet: it joins that lead (one message names both) and mirrors it.
    Follower,
    /// A campaign of its own, scheduled (or unreachable) as the policy says.
    Lead(Transition),
}

impl Opening {
    /// The state the campaign is created in.
    pub fn state(&self) -> CampaignState {
        match self {
            Opening::InvalidContact => CampaignState::InvalidContact,
            Opening::Follower => CampaignState::Scheduled,
            Opening::Lead(t) => t.state,
        }
    }

    /// When its first step falls due.
    pub fn due(&self) -> Option<DateTime<Utc>> {
        match self {
            Opening::Lead(t) => t.commands.iter().find_map(|cmd| match cmd {
                Command::Schedule { at, .. } => Some(*at),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The step its first touch is (a step the patient cannot receive is skipped: a patient
    /// who asked for calls starts at the first call).
    pub fn first_step(&self) -> u32 {
        match self {
            Opening::Lead(t) => t.step,
            _ => 0,
        }
    }

    /// The note a secretary gets at once, if any.
    pub fn note(&self) -> Option<NoteReason> {
        match self {
            Opening::InvalidContact => Some(NoteReason::InvalidContact),
            Opening::Follower => None,
            Opening::Lead(t) => t.commands.iter().find_map(|cmd| match cmd {
                Command::Note(reason) => Some(*reason),
                _ => None,
            }),
        }
    }
}

/// Opens a campaign: `has_phone` says whether the appointment has a usable number,
/// `joins_lead` whether a lead of the same patient and day is waiting to send.
pub fn opening(
    c: &Campaign,
    has_phone: bool,
    joins_lead: bool,
    now: DateTime<Utc>,
    policy: &Policy,
    cals: &Calendars,
) -> Opening {
    if !has_phone {
        Opening::InvalidContact
    } else if joins_lead {
        Opening::Follower
    } else {
        Opening::Lead(decide(c, &Event::Opened, now, policy, cals))
    }
}

/// Whether a lead's change from `before` to `after` closes its active followers with it (they
/// receive [`Event::LeadClosed`]): a lead that ends without an answer (nobody reached, no usable
/// number, the number opted out) ends the same-day group; a reply answers for every follower
/// through its own event instead.
pub fn lead_closes_followers(before: CampaignState, after: CampaignState) -> bool {
    before.is_active()
        && matches!(
            after,
            CampaignState::Unreachable | CampaignState::InvalidContact | CampaignState::OptedOut
        )
}

/// What reply routing knows of a campaign of the replying number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteCandidate {
    pub id: i64,
    pub state: CampaignState,
    pub updated_at: DateTime<Utc>,
}

/// The campaign a reply from a number belongs to, among its lead campaigns touched within
/// [`super::policy::REPLY_ROUTING_WINDOW`]: the open conversation (awaiting a reply) first; else
/// the latest closed one (a second reply after a confirm or a cancel); a campaign that has not
/// sent yet last. Ties go to the most recently updated, then to the newest.
pub fn route_reply(candidates: &[RouteCandidate]) -> Option<i64> {
    let rank = |c: &RouteCandidate| match c.state {
        CampaignState::AwaitingReply => 0,
        CampaignState::Scheduled => 2,
        _ => 1,
    };
    candidates
        .iter()
        .min_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(b.updated_at.cmp(&a.updated_at))
                .then(b.id.cmp(&a.id))
        })
        .map(|c| c.id)
}

/// A secretary's outcome: no acknowledgement (she spoke with the patient); an opted-out
/// patient's campaign keeps remembering the opt-out while the agenda follows.
fn secretary(c: &Campaign, outcome: SecretaryOutcome) -> Transition {
    use CampaignState as S;
    if !outcome.applies_to(c.state) {
        return Transition::stay(c);
    }
    let keep = |state: S| {
        if c.state == S::OptedOut {
            S::OptedOut
        } else {
            state
        }
    };
    match outcome {
        SecretaryOutcome::ConfirmedByPhone if c.state == S::Confirmed => Transition::stay(c),
        SecretaryOutcome::ConfirmedByPhone => Transition::to(
            c,
            keep(S::Confirmed),
            vec![Command::Unschedule, Command::ConfirmInAgenda],
        ),
        SecretaryOutcome::CancelledByPhone => Transition::to(
            c,
            keep(S::Cancelled),
            vec![Command::Unschedule, Command::ReleaseSlot],
        ),
        SecretaryOutcome::Rescheduled => {
            Transition::to(c, keep(S::Expired), vec![Command::Unschedule])
        }
    }
}

fn upstream(c: &Campaign, change: Upstream) -> Transition {
    use CampaignState as S;
    match change {
        Upstream::Cancelled if c.state != S::Cancelled => {
            Transition::to(c, S::CancelledUpstream, vec![Command::Unschedule])
        }
        Upstream::Superseded if !matches!(c.state, S::Cancelled | S::CancelledUpstream) => {
            Transition::to(c, S::Expired, vec![Command::Unschedule])
        }
        Upstream::Started if c.state.is_active() => {
            Transition::to(c, S::Expired, vec![Command::Unschedule])
        }
        _ => Transition::stay(c),
    }
}

fn open(c: &Campaign, now: DateTime<Utc>, policy: &Policy, cals: &Calendars) -> Transition {
    let first = policy.next_runnable(
        0,
        c.preferred,
        c.mobile,
        None,
        now,
        c.appointment_start,
        cals,
    );
    // Booked too late for any allowed window: a secretary calls if needed.
    schedule_or_give_up(
        c,
        CampaignState::Scheduled,
        first.map(|(step, _, at)| (step as u32, at)),
    )
}

/// Step `step` at `at` as the first attempt, in `state`; with no step left, unreachable with a
/// note for the secretaries.
fn schedule_or_give_up(
    c: &Campaign,
    state: CampaignState,
    next: Option<(u32, DateTime<Utc>)>,
) -> Transition {
    match next {
        Some((step, at)) => Transition::scheduled(state, step, 0, at),
        None => Transition::to(
            c,
            CampaignState::Unreachable,
            vec![Command::Unschedule, Command::Note(NoteReason::Unreachable)],
        ),
    }
}

fn step_due(
    c: &Campaign,
    budget_ok: bool,
    opted_out: bool,
    now: DateTime<Utc>,
    policy: &Policy,
    cals: &Calendars,
) -> Transition {
    if now >= c.appointment_start {
        return Transition::to(c, CampaignState::Expired, vec![Command::Unschedule]);
    }
    if opted_out {
        return Transition::to(c, CampaignState::OptedOut, vec![Command::Unschedule]);
    }
    if now > policy.deadline(c.appointment_start) {
        // Picked up late (downtime): nothing goes out inside the give-up margin.
        return Transition::to(
            c,
            CampaignState::Unreachable,
            vec![Command::Unschedule, Command::Note(NoteReason::Unreachable)],
        );
    }
    let Some(spec) = policy.steps.get(c.step as usize) else {
        // The wait after the last step is over.
        return Transition::to(
            c,
            CampaignState::Unreachable,
            vec![Command::Unschedule, Command::Note(NoteReason::Unreachable)],
        );
    };
    let Some(channel) = spec.channel.resolve(c.preferred, c.mobile) else {
        return reschedule_from(c, c.step as usize + 1, None, now, policy, cals);
    };
    if !budget_ok {
        // Try again on the next local day, if that still fits before the deadline.
        let tomorrow = next_local_day(cals.tz, now);
        let at = cals.for_channel(channel).next_allowed(tomorrow);
        return same_step_at_or_next(c, at, None, now, policy, cals);
    }
    if !cals.for_channel(channel).is_allowed(now) {
        // Picked up outside its window (after downtime, or a batch that sent past the window's
        // end): the step waits for the next allowed instant.
        let at = cals.for_channel(channel).next_allowed(now);
        return same_step_at_or_next(c, at, None, now, policy, cals);
    }
    Transition::to(
        c,
        CampaignState::AwaitingReply,
        vec![Command::Send {
            channel,
            template: spec.template.clone(),
            step: c.step,
            attempt: c.attempt,
        }],
    )
}

/// After a touch went out: the next attempt of this step, else the next step, else wait for a
/// reply until the deadline.
fn follow_up(c: &Campaign, now: DateTime<Utc>, policy: &Policy, cals: &Calendars) -> Transition {
    let step = c.step as usize;
    if let Some(spec) = policy.steps.get(step)
        && c.attempt + 1 < spec.attempts
        && let Some(ch) = spec.channel.resolve(c.preferred, c.mobile)
        && let Some(at) = policy.due_at(
            step,
            c.attempt + 1,
            ch,
            Some(now),
            now,
            c.appointment_start,
            cals,
        )
    {
        return Transition::scheduled(CampaignState::AwaitingReply, c.step, c.attempt + 1, at);
    }
    let mut t = reschedule_from(c, step + 1, Some(now), now, policy, cals);
    t.state = CampaignState::AwaitingReply;
    t
}

/// Queue the first runnable step from `from`, or the final wait until the deadline.
fn reschedule_from(
    c: &Campaign,
    from: usize,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: &Policy,
    cals: &Calendars,
) -> Transition {
    let (step, at) = match policy.next_runnable(
        from,
        c.preferred,
        c.mobile,
        previous,
        now,
        c.appointment_start,
        cals,
    ) {
        Some((step, _, at)) => (step as u32, at),
        None => (
            policy.steps.len() as u32,
            policy.deadline(c.appointment_start).max(now),
        ),
    };
    Transition::scheduled(c.state, step, 0, at)
}

/// 30006 (landline), 21614, WhatsApp 63016: the next step on another channel, at once.
fn next_channel_at_once(
    c: &Campaign,
    now: DateTime<Utc>,
    policy: &Policy,
    cals: &Calendars,
) -> Transition {
    let current = policy
        .steps
        .get(c.step as usize)
        .and_then(|s| s.channel.resolve(c.preferred, c.mobile));
    let deadline = policy.deadline(c.appointment_start);
    let next = policy
        .steps
        .iter()
        .enumerate()
        .skip(c.step as usize + 1)
        .filter_map(|(i, s)| {
            let ch = s.channel.resolve(c.preferred, false)?;
            (Some(ch) != current).then_some((i, ch))
        })
        .find_map(|(i, ch)| {
            let at = cals.for_channel(ch).next_allowed(now)?;
            (at <= deadline).then_some((i as u32, at))
        });
    schedule_or_give_up(c, CampaignState::AwaitingReply, next)
}

/// The same step and attempt again at `at` when that still fits before the deadline, else the
/// next step that can run (counting from `previous`).
fn same_step_at_or_next(
    c: &Campaign,
    at: Option<DateTime<Utc>>,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: &Policy,
    cals: &Calendars,
) -> Transition {
    match at {
        Some(at) if at <= policy.deadline(c.appointment_start) => Transition {
            commands: vec![Command::Schedule {
                at,
                step: c.step,
                attempt: c.attempt,
            }],
            ..Transition::stay(c)
        },
        _ => reschedule_from(c, c.step as usize + 1, previous, now, policy, cals),
    }
}

fn send_failed(
    c: &Campaign,
    f: SendFailure,
    now: DateTime<Utc>,
    policy: &Policy,
    cals: &Calendars,
) -> Transition {
    use CampaignState as S;
    let retry = |at: DateTime<Utc>| {
        let channel = policy
            .steps
            .get(c.step as usize)
            .and_then(|s| s.channel.resolve(c.preferred, c.mobile));
        let at = channel.and_then(|ch| cals.for_channel(ch).next_allowed(at.max(now)));
        same_step_at_or_next(c, at, Some(now), now, policy, cals)
    };
    match f {
        SendFailure::Transient { retry_at } => retry(retry_at),
        SendFailure::Configuration => {
            let mut t = retry(now + super::policy::CONFIGURATION_PAUSE);
            t.commands
                .push(Command::Note(NoteReason::ProviderConfiguration));
            t
        }
        SendFailure::ChannelUnavailable => {
            // A landline cannot get messages: drop the mobile assumption for what follows.
            let landline = Campaign {
                mobile: false,
                ..c.clone()
            };
            next_channel_at_once(&landline, now, policy, cals)
        }
        SendFailure::InvalidNumber => Transition::to(
            c,
            S::InvalidContact,
            vec![
                Command::Unschedule,
                Command::Note(NoteReason::InvalidContact),
            ],
        ),
        SendFailure::OptedOut => Transition::to(
            c,
            S::OptedOut,
            vec![Command::Unschedule, Command::RecordOptOut],
        ),
    }
}

/// A reply, in any state. Active (and unreachable: a late answer is still an answer) campaigns
/// act on it fully; closed ones handle a second reply as the module doc says.
fn reply(c: &Campaign, intent: Intent, late: bool, policy: &Policy) -> Transition {
    use CampaignState as S;
    use Command as C;
    let ack = |a: Ack| {
        if c.state == S::OptedOut {
            None
        } else {
            Some(C::Acknowledge(a))
        }
    };
    let with = |state: S, mut cmds: Vec<C>, a: Option<Ack>| {
        cmds.extend(a.and_then(ack));
        Transition::to(c, state, cmds)
    };
    let note = |reason: NoteReason, a: Ack| with(c.state, vec![C::Note(reason)], Some(a));
    let open = matches!(
        c.state,
        S::Scheduled | S::AwaitingReply | S::Unreachable | S::NeedsHuman | S::RescheduleRequested
    );
    match intent {
        Intent::OptOut => {
            // The agenda keeps confirmed/cancelled; the campaign remembers the opt-out so that
            // no later reply is ever acknowledged.
            let state = S::OptedOut;
            let mut cmds = vec![C::Unschedule, C::RecordOptOut];
            if c.state != S::OptedOut {
                cmds.push(C::Acknowledge(Ack::OptOut));
            }
            Transition::to(c, state, cmds)
        }
        Intent::Urgent => {
            let state = if open { S::NeedsHuman } else { c.state };
            with(
                state,
                vec![C::Unschedule, C::Note(NoteReason::Urgent)],
                Some(Ack::Holding),
            )
        }
        Intent::Confirm => match c.state {
            // Told again, now with a delay: the secretaries see the delay, nothing else moves.
            S::Confirmed if late => {
                Transition::to(c, S::Confirmed, vec![C::Note(NoteReason::RunningLate)])
            }
            S::Confirmed => Transition::stay(c),
            S::Cancelled => note(NoteReason::ConfirmAfterRelease, Ack::Holding),
            S::RescheduleRequested if policy.release_on_reschedule => {
                note(NoteReason::ConfirmAfterRelease, Ack::Holding)
            }
            S::OptedOut => Transition::to(c, S::OptedOut, vec![C::ConfirmInAgenda]),
            _ if open => {
                let mut cmds = vec![C::Unschedule, C::ConfirmInAgenda];
                if late {
                    cmds.push(C::Note(NoteReason::RunningLate));
                }
                with(S::Confirmed, cmds, Some(Ack::Confirmed { late }))
            }
            _ => note(NoteReason::LateReply, Ack::Holding),
        },
        Intent::Cancel => match c.state {
            S::Cancelled => Transition::stay(c),
            S::OptedOut => Transition::to(c, S::OptedOut, vec![C::ReleaseSlot]),
            _ if open || c.state == S::Confirmed => with(
                S::Cancelled,
                vec![C::Unschedule, C::ReleaseSlot],
                Some(Ack::Cancelled),
            ),
            _ => note(NoteReason::LateReply, Ack::Holding),
        },
        Intent::Reschedule => match c.state {
            S::Cancelled | S::Expired | S::CancelledUpstream | S::InvalidContact => {
                note(NoteReason::Reschedule, Ack::Reschedule)
            }
            _ => {
                let mut cmds = vec![C::Unschedule, C::Note(NoteReason::Reschedule)];
                if policy.release_on_reschedule {
                    cmds.push(C::ReleaseSlot);
                }
                with(S::RescheduleRequested, cmds, Some(Ack::Reschedule))
            }
        },
        Intent::Question | Intent::Unclear | Intent::WrongPerson => {
            let reason = match intent {
                Intent::Question => NoteReason::Question,
                Intent::WrongPerson => NoteReason::WrongPerson,
                _ => NoteReason::Unclear,
            };
            let state = if open { S::NeedsHuman } else { c.state };
            with(
                state,
                vec![C::Unschedule, C::Note(reason)],
                Some(Ack::Holding),
            )
        }
    }
}
