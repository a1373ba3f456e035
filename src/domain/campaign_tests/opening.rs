//! Opening a campaign: when its first step is scheduled (give-up, weekends, holidays per region,
//! DST changes).

use super::*;

// ---- opening ----

#[test]
fn opening_a_wednesday_10_00_paris_appointment_schedules_the_first_sms_on_monday_09_00_paris_which_is_08_00_utc_in_winter()
 {
    let p = policy();
    let start = local(PARIS, 2026, 1, 14, 10, 0);
    assert_eq!(start, utc(2026, 1, 14, 9, 0));
    // The planner opens at midnight local of J-2.
    let now = p.opens_at(PARIS, start);
    assert_eq!(now, utc(2026, 1, 11, 23, 0));
    let t = decide(&campaign(start), &Event::Opened, now, &p, &paris());
    assert_eq!(
        t,
        tr(
            S::Scheduled,
            0,
            0,
            vec![sched(utc(2026, 1, 12, 8, 0), 0, 0)]
        )
    );
}

#[test]
fn an_appointment_booked_today_for_tomorrow_opens_at_once_in_the_window_at_the_next_window_start_at_night_and_not_at_all_past_the_give_up()
 {
    let p = policy();
    let cals = paris();
    // Wednesday 14 January 2026, 15:00 Paris: the give-up is 13:00.
    let c = campaign(local(PARIS, 2026, 1, 14, 15, 0));
    let in_window = local(PARIS, 2026, 1, 13, 10, 15);
    assert_eq!(
        decide(&c, &Event::Opened, in_window, &p, &cals),
        tr(
            S::Scheduled,
            0,
            0,
            vec![sched(utc(2026, 1, 13, 9, 15), 0, 0)]
        )
    );
    let at_night = local(PARIS, 2026, 1, 13, 21, 0);
    assert_eq!(
        decide(&c, &Event::Opened, at_night, &p, &cals),
        tr(
            S::Scheduled,
            0,
            0,
            vec![sched(utc(2026, 1, 14, 8, 0), 0, 0)]
        )
    );
    // Wednesday 10:00: the give-up (08:00) comes before the next window (09:00) and before any
    // call window: a secretary is told at once, nothing is queued.
    let early = campaign(local(PARIS, 2026, 1, 14, 10, 0));
    assert_eq!(
        decide(&early, &Event::Opened, at_night, &p, &cals),
        tr(
            S::Unreachable,
            0,
            0,
            vec![Command::Unschedule, Command::Note(NoteReason::Unreachable)]
        )
    );
}

#[test]
fn a_step_due_on_saturday_evening_after_19_30_is_pushed_to_monday_09_00() {
    let p = policy();
    let cals = paris();
    // Appointment Tuesday 20 January 2026 15:00; the request went out Saturday 17 at 16:00.
    let c = at_step(local(PARIS, 2026, 1, 20, 15, 0), S::AwaitingReply, 0, 0);
    let sat_16 = local(PARIS, 2026, 1, 17, 16, 0);
    // The nudge would be due at 20:00 Saturday; Sunday is closed: Monday 09:00 CET.
    assert_eq!(
        decide(&c, &Event::Sent, sat_16, &p, &cals),
        tr(
            S::AwaitingReply,
            1,
            0,
            vec![sched(utc(2026, 1, 19, 8, 0), 1, 0)]
        )
    );
    // Same for a provider retry asked for Saturday 19:45.
    let retry_at = local(PARIS, 2026, 1, 17, 19, 45);
    assert_eq!(
        decide(
            &c,
            &Event::SendFailed(SendFailure::Transient { retry_at }),
            sat_16,
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            0,
            0,
            vec![sched(utc(2026, 1, 19, 8, 0), 0, 0)]
        )
    );
}

#[test]
fn a_first_step_falling_on_ascension_whit_monday_or_armistice_day_moves_to_the_next_open_day() {
    let p = policy();
    let cals = paris();
    let cases = [
        // Saturday 16 May 2026: J-2 is Ascension (Thursday 14) -> Friday 15, 09:00 CEST.
        (local(PARIS, 2026, 5, 16, 10, 0), utc(2026, 5, 15, 7, 0)),
        // Wednesday 27 May 2026: J-2 is Whit Monday (25) -> Tuesday 26, 09:00 CEST.
        (local(PARIS, 2026, 5, 27, 10, 0), utc(2026, 5, 26, 7, 0)),
        // Friday 13 November 2026: J-2 is 11 November -> Thursday 12, 09:00 CET.
        (local(PARIS, 2026, 11, 13, 10, 0), utc(2026, 11, 12, 8, 0)),
    ];
    for (start, expected) in cases {
        let now = p.opens_at(PARIS, start);
        assert_eq!(
            decide(&campaign(start), &Event::Opened, now, &p, &cals),
            tr(S::Scheduled, 0, 0, vec![sched(expected, 0, 0)]),
            "appointment at {start}"
        );
    }
}

#[test]
fn in_reunion_a_message_due_at_08_00_local_goes_at_09_00_local_which_is_05_00_utc_and_20_december_is_closed()
 {
    let p = policy();
    let cals = calendars(REUNION);
    // Wednesday 14 January 2026 10:00 in Réunion (UTC+4, no DST) = 06:00 UTC.
    let start = local(REUNION, 2026, 1, 14, 10, 0);
    assert_eq!(start, utc(2026, 1, 14, 6, 0));
    let opened = p.opens_at(REUNION, start);
    assert_eq!(opened, utc(2026, 1, 11, 20, 0));
    assert_eq!(
        decide(&campaign(start), &Event::Opened, opened, &p, &cals),
        tr(
            S::Scheduled,
            0,
            0,
            vec![sched(utc(2026, 1, 12, 5, 0), 0, 0)]
        )
    );
    // The provider asks to retry at 08:00 local Tuesday: 09:00 local = 05:00 UTC.
    let c = at_step(start, S::AwaitingReply, 0, 0);
    let retry_at = local(REUNION, 2026, 1, 13, 8, 0);
    assert_eq!(
        decide(
            &c,
            &Event::SendFailed(SendFailure::Transient { retry_at }),
            local(REUNION, 2026, 1, 12, 19, 0),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            0,
            0,
            vec![sched(utc(2026, 1, 13, 5, 0), 0, 0)]
        )
    );
    // Monday 20 December 2027 is the abolition of slavery day in Réunion (not in Paris).
    let start = local(REUNION, 2027, 12, 22, 10, 0);
    let opened = p.opens_at(REUNION, start);
    assert_eq!(
        decide(&campaign(start), &Event::Opened, opened, &p, &cals),
        tr(
            S::Scheduled,
            0,
            0,
            vec![sched(utc(2027, 12, 21, 5, 0), 0, 0)]
        )
    );
    let start = local(PARIS, 2027, 12, 22, 10, 0);
    assert_eq!(
        decide(
            &campaign(start),
            &Event::Opened,
            p.opens_at(PARIS, start),
            &p,
            &paris()
        ),
        tr(
            S::Scheduled,
            0,
            0,
            vec![sched(utc(2027, 12, 20, 8, 0), 0, 0)]
        )
    );
}

#[test]
fn in_martinique_22_may_is_closed_for_messages_and_calls() {
    let p = policy();
    let cals = calendars(MARTINIQUE);
    // Wednesday 27 May 2026 15:00 in Martinique (UTC-4). Friday 22 May is the abolition of
    // slavery day, Monday 25 May is Whit Monday.
    let start = local(MARTINIQUE, 2026, 5, 27, 15, 0);
    // The request went out Thursday 21 at 18:00: the nudge (22:00) waits for Saturday 09:00.
    let c = at_step(start, S::AwaitingReply, 0, 0);
    assert_eq!(
        decide(
            &c,
            &Event::Sent,
            local(MARTINIQUE, 2026, 5, 21, 18, 0),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            1,
            0,
            vec![sched(utc(2026, 5, 23, 13, 0), 1, 0)]
        )
    );
    // The nudge went out Thursday 21 at 19:00: the call (20:00) skips Friday 22, the weekend and
    // Whit Monday: Tuesday 26, 10:00 local = 14:00 UTC.
    let c = at_step(start, S::AwaitingReply, 1, 0);
    assert_eq!(
        decide(
            &c,
            &Event::Sent,
            local(MARTINIQUE, 2026, 5, 21, 19, 0),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            2,
            0,
            vec![sched(utc(2026, 5, 26, 14, 0), 2, 0)]
        )
    );
}

#[test]
fn a_first_step_on_the_monday_after_a_dst_change_goes_at_09_00_local_in_that_days_offset() {
    let p = policy();
    let cals = paris();
    // Spring forward on Sunday 29 March 2026: Monday 30 March 09:00 CEST = 07:00 UTC.
    let start = local(PARIS, 2026, 4, 1, 10, 0);
    let opened = p.opens_at(PARIS, start);
    assert_eq!(opened, utc(2026, 3, 29, 22, 0));
    assert_eq!(
        decide(&campaign(start), &Event::Opened, opened, &p, &cals),
        tr(
            S::Scheduled,
            0,
            0,
            vec![sched(utc(2026, 3, 30, 7, 0), 0, 0)]
        )
    );
    // Fall back on Sunday 25 October 2026: Monday 26 October 09:00 CET = 08:00 UTC.
    let start = local(PARIS, 2026, 10, 28, 10, 0);
    let opened = p.opens_at(PARIS, start);
    assert_eq!(opened, utc(2026, 10, 25, 23, 0));
    assert_eq!(
        decide(&campaign(start), &Event::Opened, opened, &p, &cals),
        tr(
            S::Scheduled,
            0,
            0,
            vec![sched(utc(2026, 10, 26, 8, 0), 0, 0)]
        )
    );
    // A call due Friday 27 March 20:00 CET (after 17:00 + 3 h) goes on Monday 10:00 CEST.
    let c = at_step(local(PARIS, 2026, 3, 31, 15, 0), S::AwaitingReply, 2, 0);
    assert_eq!(
        decide(
            &c,
            &Event::Sent,
            local(PARIS, 2026, 3, 27, 17, 0),
            &p,
            &cals
        ),
        tr(
            S::AwaitingReply,
            2,
            1,
            vec![sched(utc(2026, 3, 30, 8, 0), 2, 1)]
        )
    );
}

// ---- rules the shell used to decide (planner states, followers, reply routing) ----

#[test]
fn an_appointment_without_a_number_opens_invalid_contact_with_a_note_and_nothing_scheduled() {
    let p = policy();
    let start = local(PARIS, 2026, 1, 14, 10, 0);
    let o = opening(
        &campaign(start),
        false,
        false,
        p.opens_at(PARIS, start),
        &p,
        &paris(),
    );
    assert_eq!(o, Opening::InvalidContact);
    assert_eq!(o.state(), S::InvalidContact);
    assert_eq!(o.due(), None);
    assert_eq!(o.note(), Some(NoteReason::InvalidContact));
}

#[test]
fn a_second_appointment_of_the_same_patient_and_day_joins_its_lead_and_sends_nothing_itself() {
    let p = policy();
    let start = local(PARIS, 2026, 1, 14, 11, 0);
    let o = opening(
        &campaign(start),
        true,
        true,
        p.opens_at(PARIS, start),
        &p,
        &paris(),
    );
    assert_eq!(o, Opening::Follower);
    assert_eq!((o.state(), o.due(), o.note()), (S::Scheduled, None, None));
}

#[test]
fn a_lead_opens_as_the_state_machine_says_scheduled_in_time_or_unreachable_with_a_note_too_late() {
    let p = policy();
    let cals = paris();
    let start = local(PARIS, 2026, 1, 14, 10, 0);
    let now = p.opens_at(PARIS, start);
    let o = opening(&campaign(start), true, false, now, &p, &cals);
    assert_eq!(
        o,
        Opening::Lead(decide(&campaign(start), &Event::Opened, now, &p, &cals))
    );
    assert_eq!(
        (o.state(), o.due()),
        (S::Scheduled, Some(utc(2026, 1, 12, 8, 0)))
    );
    assert_eq!(o.note(), None);
    // Booked at 09:30 for 10:00: past the give-up margin.
    let late = opening(
        &campaign(start),
        true,
        false,
        start - Duration::minutes(30),
        &p,
        &cals,
    );
    assert_eq!((late.state(), late.due()), (S::Unreachable, None));
    assert_eq!(late.note(), Some(NoteReason::Unreachable));
}

#[test]
fn a_lead_closes_its_followers_only_when_it_ends_without_an_answer() {
    for ended in [S::Unreachable, S::InvalidContact, S::OptedOut] {
        assert!(lead_closes_followers(S::AwaitingReply, ended), "{ended}");
        assert!(lead_closes_followers(S::Scheduled, ended), "{ended}");
        assert!(
            !lead_closes_followers(ended, ended),
            "already closed: {ended}"
        );
    }
    for answered in [
        S::Confirmed,
        S::Cancelled,
        S::NeedsHuman,
        S::Expired,
        S::CancelledUpstream,
    ] {
        assert!(
            !lead_closes_followers(S::AwaitingReply, answered),
            "{answered}"
        );
    }
    // A follower mirrors its lead's end through the state machine.
    let f = at_step(local(PARIS, 2026, 1, 14, 11, 0), S::Scheduled, 0, 0);
    let t = decide(
        &f,
        &Event::LeadClosed(S::Unreachable),
        utc(2026, 1, 14, 8, 0),
        &policy(),
        &paris(),
    );
    assert_eq!(t.state, S::Unreachable);
}

#[test]
fn a_reply_belongs_to_the_open_conversation_then_the_latest_closed_one_then_one_not_yet_sent() {
    let c = |id, state, h| RouteCandidate {
        id,
        state,
        updated_at: utc(2026, 1, 12, h, 0),
    };
    assert_eq!(route_reply(&[]), None);
    let waiting = [
        c(1, S::Confirmed, 12),
        c(2, S::AwaitingReply, 8),
        c(3, S::Scheduled, 13),
    ];
    assert_eq!(
        route_reply(&waiting),
        Some(2),
        "the conversation in progress"
    );
    let closed = [
        c(1, S::Confirmed, 9),
        c(4, S::Cancelled, 11),
        c(3, S::Scheduled, 13),
    ];
    assert_eq!(route_reply(&closed), Some(4), "the latest answered one");
    let tie = [c(5, S::Confirmed, 11), c(6, S::Confirmed, 11)];
    assert_eq!(route_reply(&tie), Some(6), "the newest on a tie");
    assert_eq!(route_reply(&[c(3, S::Scheduled, 13)]), Some(3));
}
