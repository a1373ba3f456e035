//! A step falls due, a touch went out, a provider failed: what is sent and when the next step
//! is queued (windows, daily budget, call attempts, give-up deadline).

use super::*;

// ---- a step falls due ----

#[test]
fn a_due_step_is_sent_on_the_patients_preferred_channel() {
    let p = policy();
    let cals = paris();
    let start = local(PARIS, 2026, 1, 14, 10, 0);
    let now = local(PARIS, 2026, 1, 12, 9, 0);
    let sms = campaign(start);
    assert_eq!(
        decide(&sms, &DUE, now, &p, &cals),
        tr(
            S::AwaitingReply,
            0,
            0,
            vec![send(Channel::Sms, "request", 0, 0)]
        )
    );
    let wa = Campaign {
        preferred: Channel::Whatsapp,
        ..campaign(start)
    };
    assert_eq!(
        decide(&wa, &DUE, now, &p, &cals),
        tr(
            S::AwaitingReply,
            0,
            0,
            vec![send(Channel::Whatsapp, "request", 0, 0)]
        )
    );
    let nudge = Campaign {
        step: 1,
        ..wa.clone()
    };
    assert_eq!(
        decide(&nudge, &DUE, now, &p, &cals).commands,
        vec![send(Channel::Whatsapp, "nudge", 1, 0)]
    );
    // Calls are calls whatever the preference.
    let call = Campaign {
        state: S::AwaitingReply,
        step: 2,
        attempt: 1,
        ..wa
    };
    assert_eq!(
        decide(&call, &DUE, local(PARIS, 2026, 1, 12, 17, 0), &p, &cals),
        tr(
            S::AwaitingReply,
            2,
            1,
            vec![send(Channel::Call, "call", 2, 1)]
        )
    );
}

#[test]
fn a_landline_skips_the_message_steps_straight_to_the_call_step() {
    let p = policy();
    let cals = paris();
    let start = local(PARIS, 2026, 1, 14, 10, 0);
    let landline = Campaign {
        mobile: false,
        ..campaign(start)
    };
    // Opened at midnight J-2: the call step, one hour later, in the first call window (10:00).
    let t = decide(
        &landline,
        &Event::Opened,
        p.opens_at(PARIS, start),
        &p,
        &cals,
    );
    assert_eq!(
        t,
        tr(
            S::Scheduled,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 9, 0), 2, 0)]
        )
    );
    // A message step falling due for a landline sends nothing and queues the call step.
    let t = decide(&landline, &DUE, local(PARIS, 2026, 1, 12, 9, 0), &p, &cals);
    assert_eq!(
        t,
        tr(
            S::Scheduled,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 9, 0), 2, 0)]
        )
    );
}

#[test]
fn a_step_blocked_by_the_daily_budget_waits_for_the_next_local_days_window_or_moves_on_past_the_give_up()
 {
    let p = policy();
    let cals = paris();
    let blocked = Event::StepDue {
        budget_ok: false,
        opted_out: false,
    };
    // Monday 09:00: the same request, Tuesday 09:00 CET.
    let c = campaign(local(PARIS, 2026, 1, 14, 10, 0));
    assert_eq!(
        decide(&c, &blocked, local(PARIS, 2026, 1, 12, 9, 0), &p, &cals),
        tr(
            S::Scheduled,
            0,
            0,
            vec![sched(utc(2026, 1, 13, 8, 0), 0, 0)]
        )
    );
    // A call attempt blocked on Friday goes to Monday's first call window, same attempt.
    let call = at_step(local(PARIS, 2026, 1, 20, 15, 0), S::AwaitingReply, 2, 1);
    assert_eq!(
        decide(&call, &blocked, local(PARIS, 2026, 1, 16, 17, 0), &p, &cals),
        tr(
            S::AwaitingReply,
            2,
            1,
            vec![sched(utc(2026, 1, 19, 9, 0), 2, 1)]
        )
    );
    // Appointment Tuesday 10:00: Tuesday 09:00 is past the give-up (08:00), so the request is
    // dropped for the next step (the nudge, 4 h later, which will meet the same budget) ...
    let c = campaign(local(PARIS, 2026, 1, 13, 10, 0));
    let t = decide(&c, &blocked, local(PARIS, 2026, 1, 12, 9, 0), &p, &cals);
    assert_eq!(
        t,
        tr(
            S::Scheduled,
            1,
            0,
            vec![sched(utc(2026, 1, 12, 12, 0), 1, 0)]
        )
    );
    // ... and then for the call step, which has its own budget.
    let t = decide(
        &apply(&c, &t),
        &blocked,
        local(PARIS, 2026, 1, 12, 13, 0),
        &p,
        &cals,
    );
    assert_eq!(
        t,
        tr(
            S::Scheduled,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 13, 0), 2, 0)]
        )
    );
}

#[test]
fn a_due_step_for_a_number_that_opted_out_meanwhile_closes_the_campaign_without_sending() {
    let p = policy();
    let c = at_step(local(PARIS, 2026, 1, 14, 10, 0), S::AwaitingReply, 1, 0);
    for budget_ok in [true, false] {
        let t = decide(
            &c,
            &Event::StepDue {
                budget_ok,
                opted_out: true,
            },
            local(PARIS, 2026, 1, 12, 13, 0),
            &p,
            &paris(),
        );
        assert_eq!(t, tr(S::OptedOut, 1, 0, vec![Command::Unschedule]));
    }
}

// ---- after a touch went out ----

#[test]
fn the_nudge_is_scheduled_four_hours_after_the_first_sms_within_the_message_windows() {
    let p = policy();
    let cals = paris();
    let c = at_step(local(PARIS, 2026, 1, 14, 10, 0), S::AwaitingReply, 0, 0);
    assert_eq!(
        decide(&c, &Event::Sent, local(PARIS, 2026, 1, 12, 9, 0), &p, &cals),
        tr(
            S::AwaitingReply,
            1,
            0,
            vec![sched(utc(2026, 1, 12, 12, 0), 1, 0)]
        )
    );
    // Sent at 16:00: 20:00 is after the window, so Tuesday 09:00.
    assert_eq!(
        decide(
            &c,
            &Event::Sent,
            local(PARIS, 2026, 1, 12, 16, 0),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            1,
            0,
            vec![sched(utc(2026, 1, 13, 8, 0), 1, 0)]
        )
    );
}

#[test]
fn the_first_call_is_scheduled_one_hour_after_the_nudge_within_the_call_windows() {
    let p = policy();
    let cals = paris();
    let c = at_step(local(PARIS, 2026, 1, 14, 10, 0), S::AwaitingReply, 1, 0);
    assert_eq!(
        decide(
            &c,
            &Event::Sent,
            local(PARIS, 2026, 1, 12, 13, 0),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 13, 0), 2, 0)]
        )
    );
    // Nudge at 11:45: 12:45 is the lunch break, so 14:00.
    assert_eq!(
        decide(
            &c,
            &Event::Sent,
            local(PARIS, 2026, 1, 12, 11, 45),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 13, 0), 2, 0)]
        )
    );
    // Nudge at 09:00: 10:00 is the opening of the morning call window.
    assert_eq!(
        decide(&c, &Event::Sent, local(PARIS, 2026, 1, 12, 9, 0), &p, &cals),
        tr(
            S::AwaitingReply,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 9, 0), 2, 0)]
        )
    );
}

#[test]
fn call_attempts_are_three_hours_apart_and_half_an_hour_after_the_last_one_a_secretary_is_told() {
    let p = policy();
    let cals = paris();
    let start = local(PARIS, 2026, 1, 14, 10, 0);
    let c0 = at_step(start, S::AwaitingReply, 2, 0);
    // Attempt 0 Monday 14:00 -> attempt 1 Monday 17:00.
    let t = decide(
        &c0,
        &Event::Sent,
        local(PARIS, 2026, 1, 12, 14, 0),
        &p,
        &cals,
    );
    assert_eq!(
        t,
        tr(
            S::AwaitingReply,
            2,
            1,
            vec![sched(utc(2026, 1, 12, 16, 0), 2, 1)]
        )
    );
    // Attempt 1 Monday 17:00 -> 20:00 is closed -> attempt 2 Tuesday 10:00.
    let c1 = apply(&c0, &t);
    let t = decide(
        &c1,
        &Event::Sent,
        local(PARIS, 2026, 1, 12, 17, 0),
        &p,
        &cals,
    );
    assert_eq!(
        t,
        tr(
            S::AwaitingReply,
            2,
            2,
            vec![sched(utc(2026, 1, 13, 9, 0), 2, 2)]
        )
    );
    // A call that ends unanswered changes nothing (the next attempt is already queued); an
    // answering machine gets one voicemail.
    let c2 = apply(&c1, &t);
    assert_eq!(
        decide(
            &c2,
            &Event::CallEnded(CallOutcome::NoAnswer),
            local(PARIS, 2026, 1, 13, 10, 1),
            &p,
            &cals
        ),
        tr(S::AwaitingReply, 2, 2, vec![])
    );
    assert_eq!(
        decide(
            &c2,
            &Event::CallEnded(CallOutcome::Machine),
            local(PARIS, 2026, 1, 13, 10, 1),
            &p,
            &cals
        ),
        tr(S::AwaitingReply, 2, 2, vec![Command::Voicemail])
    );
    // After the last attempt: half an hour for an answer (the give-up deadline, Wednesday
    // 08:00 CET, is far later), then a secretary is told.
    let t = decide(
        &c2,
        &Event::Sent,
        local(PARIS, 2026, 1, 13, 10, 0),
        &p,
        &cals,
    );
    let escalation = local(PARIS, 2026, 1, 13, 10, 30);
    assert!(escalation < p.deadline(start));
    assert_eq!(t, tr(S::AwaitingReply, 3, 0, vec![sched(escalation, 3, 0)]));
    let waiting = apply(&c2, &t);
    assert_eq!(waiting.step as usize, p.steps.len());
    assert_eq!(
        decide(&waiting, &DUE, escalation, &p, &cals),
        tr(
            S::Unreachable,
            3,
            0,
            vec![Command::Unschedule, Command::Note(NoteReason::Unreachable)]
        )
    );
}

#[test]
fn nothing_is_scheduled_after_the_give_up_deadline_even_when_a_window_would_allow_it() {
    let p = policy();
    let cals = paris();
    // Monday 12 January 16:00: give-up at 14:00 CET. A call at 11:30 would retry at 14:30,
    // inside the afternoon call window but past the give-up: only the final wait is queued
    // (half an hour for an answer, then a secretary).
    let start = local(PARIS, 2026, 1, 12, 16, 0);
    let c = at_step(start, S::AwaitingReply, 2, 0);
    assert_eq!(
        decide(
            &c,
            &Event::Sent,
            local(PARIS, 2026, 1, 12, 11, 30),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            3,
            0,
            vec![sched(utc(2026, 1, 12, 11, 0), 3, 0)]
        )
    );
    // A transient failure asking to retry at 14:30 skips to the final wait too.
    let retry_at = local(PARIS, 2026, 1, 12, 14, 30);
    assert_eq!(
        decide(
            &c,
            &Event::SendFailed(SendFailure::Transient { retry_at }),
            local(PARIS, 2026, 1, 12, 11, 30),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            3,
            0,
            vec![sched(utc(2026, 1, 12, 11, 0), 3, 0)]
        )
    );
    // Monday 11:30 appointment (give-up 09:30): the nudge went out Saturday 13:00, no calls
    // on Saturday and Monday's 10:00 window is past the give-up: no step is left, so a
    // secretary is told half an hour after the nudge.
    let start = local(PARIS, 2026, 1, 12, 11, 30);
    let c = at_step(start, S::AwaitingReply, 1, 0);
    assert_eq!(
        decide(
            &c,
            &Event::Sent,
            local(PARIS, 2026, 1, 10, 13, 0),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            3,
            0,
            vec![sched(utc(2026, 1, 10, 12, 30), 3, 0)]
        )
    );
    // A step due exactly at the give-up still runs.
    let c = at_step(local(PARIS, 2026, 1, 12, 16, 0), S::AwaitingReply, 2, 1);
    assert!(has_send(&decide(
        &c,
        &DUE,
        local(PARIS, 2026, 1, 12, 14, 0),
        &p,
        &cals
    )));
}

// ---- provider failures ----

#[test]
fn a_message_the_number_cannot_receive_moves_to_the_call_step_at_the_next_call_window() {
    let p = policy();
    let cals = paris();
    let start = local(PARIS, 2026, 1, 14, 10, 0);
    let sms = at_step(start, S::AwaitingReply, 0, 0);
    let unavailable = Event::SendFailed(SendFailure::ChannelUnavailable);
    // At 09:00 the first call window opens at 10:00 (no 60-minute wait, no nudge).
    assert_eq!(
        decide(
            &sms,
            &unavailable,
            local(PARIS, 2026, 1, 12, 9, 0),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 9, 0), 2, 0)]
        )
    );
    // Inside a call window: at once.
    assert_eq!(
        decide(
            &sms,
            &unavailable,
            local(PARIS, 2026, 1, 12, 10, 30),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 9, 30), 2, 0)]
        )
    );
    // WhatsApp not available for this number: same.
    let wa = Campaign {
        preferred: Channel::Whatsapp,
        ..sms.clone()
    };
    assert_eq!(
        decide(
            &wa,
            &unavailable,
            local(PARIS, 2026, 1, 12, 9, 0),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 9, 0), 2, 0)]
        )
    );
    // A delivery report "undelivered" after acceptance does the same.
    assert_eq!(
        decide(
            &sms,
            &Event::Undelivered,
            local(PARIS, 2026, 1, 12, 9, 5),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            2,
            0,
            vec![sched(utc(2026, 1, 12, 9, 0), 2, 0)]
        )
    );
}

#[test]
fn an_invalid_number_a_provider_opt_out_or_a_configuration_error_are_handled_each_their_way() {
    let p = policy();
    let cals = paris();
    let c = at_step(local(PARIS, 2026, 1, 14, 10, 0), S::AwaitingReply, 0, 0);
    let now = local(PARIS, 2026, 1, 12, 9, 0);
    assert_eq!(
        decide(
            &c,
            &Event::SendFailed(SendFailure::InvalidNumber),
            now,
            &p,
            &cals
        ),
        tr(
            S::InvalidContact,
            0,
            0,
            vec![
                Command::Unschedule,
                Command::Note(NoteReason::InvalidContact)
            ]
        )
    );
    assert_eq!(
        decide(
            &c,
            &Event::SendFailed(SendFailure::OptedOut),
            now,
            &p,
            &cals
        ),
        tr(
            S::OptedOut,
            0,
            0,
            vec![Command::Unschedule, Command::RecordOptOut]
        )
    );
    // Configuration: pause 15 minutes on the same attempt and tell a person.
    assert_eq!(
        decide(
            &c,
            &Event::SendFailed(SendFailure::Configuration),
            now,
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            0,
            0,
            vec![
                sched(utc(2026, 1, 12, 8, 15), 0, 0),
                Command::Note(NoteReason::ProviderConfiguration)
            ]
        )
    );
}

#[test]
fn a_transient_failure_retries_the_same_step_and_attempt_at_retry_at_or_the_next_window_after_it() {
    let p = policy();
    let cals = paris();
    let start = local(PARIS, 2026, 1, 14, 10, 0);
    let c = at_step(start, S::AwaitingReply, 0, 0);
    let now = local(PARIS, 2026, 1, 12, 9, 0);
    let failed = |retry_at| Event::SendFailed(SendFailure::Transient { retry_at });
    assert_eq!(
        decide(&c, &failed(now + Duration::minutes(5)), now, &p, &cals),
        tr(
            S::AwaitingReply,
            0,
            0,
            vec![sched(utc(2026, 1, 12, 8, 5), 0, 0)]
        )
    );
    // A retry_at in the past means now.
    assert_eq!(
        decide(&c, &failed(now - Duration::minutes(5)), now, &p, &cals),
        tr(S::AwaitingReply, 0, 0, vec![sched(now, 0, 0)])
    );
    // After the window: next morning.
    assert_eq!(
        decide(
            &c,
            &failed(local(PARIS, 2026, 1, 12, 19, 45)),
            local(PARIS, 2026, 1, 12, 19, 25),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            0,
            0,
            vec![sched(utc(2026, 1, 13, 8, 0), 0, 0)]
        )
    );
    // A call attempt asked back during lunch keeps its attempt number and waits for 14:00.
    let call = at_step(start, S::AwaitingReply, 2, 1);
    assert_eq!(
        decide(
            &call,
            &failed(local(PARIS, 2026, 1, 12, 12, 40)),
            local(PARIS, 2026, 1, 12, 12, 20),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            2,
            1,
            vec![sched(utc(2026, 1, 12, 13, 0), 2, 1)]
        )
    );
}
