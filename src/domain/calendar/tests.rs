//! Unit tests of the send-window calendar: Easter and the holidays of each region, closed days,
//! windows and their parsing, DST gaps and overlaps, and the next/last allowed searches (checked
//! against a minute-by-minute walk).

use super::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    date(y, mo, d)
        .and_hms_opt(h, mi, 0)
        .expect("valid test time")
        .and_utc()
}

/// A wall-clock time that exists exactly once in `tz`.
fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("unambiguous test time")
        .with_timezone(&Utc)
}

fn hours(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn window(a: &str, b: &str) -> Window {
    Window {
        start: parse_time(a).expect("test time"),
        end: parse_time(b).expect("test time"),
    }
}

const PARIS: Tz = Tz::Europe__Paris;
const REUNION: Tz = Tz::Indian__Reunion;
const MARTINIQUE: Tz = Tz::America__Martinique;

fn paris_messages() -> SendCalendar {
    SendCalendar::new(PARIS, default_message_windows())
}

fn paris_calls() -> SendCalendar {
    SendCalendar::new(PARIS, default_call_windows())
}

/// Every day of the week open, one window.
fn every_day(tz: Tz, from: &str, to: &str) -> SendCalendar {
    let mut cal = SendCalendar::new(
        tz,
        WeekWindows::parse("mon-sun", &hours(&[&format!("{from}-{to}")])).expect("spec"),
    );
    cal.open_on_sundays = true;
    cal
}

// ---- Easter and holidays ----

#[test]
fn easter_2024_is_on_march_31() {
    assert_eq!(easter_sunday(2024), date(2024, 3, 31));
}

#[test]
fn easter_2025_is_on_april_20() {
    assert_eq!(easter_sunday(2025), date(2025, 4, 20));
}

#[test]
fn easter_2026_is_on_april_5() {
    assert_eq!(easter_sunday(2026), date(2026, 4, 5));
}

#[test]
fn easter_2027_is_on_march_28() {
    assert_eq!(easter_sunday(2027), date(2027, 3, 28));
}

#[test]
fn easter_2038_is_on_april_25_the_latest_possible_date() {
    assert_eq!(easter_sunday(2038), date(2038, 4, 25));
}

#[test]
fn easter_2285_is_on_march_22_the_earliest_possible_date() {
    assert_eq!(easter_sunday(2285), date(2285, 3, 22));
}

#[test]
fn easter_of_any_year_is_a_sunday_between_march_22_and_april_25() {
    for year in 1583..=4099 {
        let e = easter_sunday(year);
        assert_eq!(e.weekday(), Weekday::Sun, "{year}");
        assert!(
            e >= date(year, 3, 22) && e <= date(year, 4, 25),
            "{year}: {e}"
        );
    }
}

#[test]
fn easter_of_an_impossible_year_does_not_panic() {
    assert_eq!(easter_sunday(i32::MAX), NaiveDate::MAX);
    assert_eq!(easter_sunday(i32::MIN), NaiveDate::MIN);
    assert!(french_holidays(i32::MAX, HolidayRegion::Reunion).is_empty());
    assert!(french_holidays(i32::MIN, HolidayRegion::AlsaceMoselle).is_empty());
    let _ = french_holidays(-44, HolidayRegion::Metropole);
    let _ = easter_sunday(0);
}

#[test]
fn metropole_2026_has_the_eleven_national_holidays_in_order() {
    let got = french_holidays(2026, HolidayRegion::Metropole);
    let want = vec![
        (date(2026, 1, 1), "Jour de l'an"),
        (date(2026, 4, 6), "Lundi de Pâques"),
        (date(2026, 5, 1), "Fête du Travail"),
        (date(2026, 5, 8), "Victoire 1945"),
        (date(2026, 5, 14), "Ascension"),
        (date(2026, 5, 25), "Lundi de Pentecôte"),
        (date(2026, 7, 14), "Fête nationale"),
        (date(2026, 8, 15), "Assomption"),
        (date(2026, 11, 1), "Toussaint"),
        (date(2026, 11, 11), "Armistice 1918"),
        (date(2026, 12, 25), "Noël"),
    ];
    assert_eq!(got, want);
}

#[test]
fn alsace_moselle_2026_adds_good_friday_and_saint_stephen() {
    let got = french_holidays(2026, HolidayRegion::AlsaceMoselle);
    assert_eq!(got.len(), 13);
    assert!(got.contains(&(date(2026, 4, 3), "Vendredi saint")));
    assert!(got.contains(&(date(2026, 12, 26), "Saint-Étienne")));
    assert!(got.windows(2).all(|p| p[0].0 <= p[1].0));
}

#[test]
fn each_overseas_region_adds_its_own_abolition_day() {
    let cases = [
        (HolidayRegion::Mayotte, 4, 27),
        (HolidayRegion::Martinique, 5, 22),
        (HolidayRegion::Guadeloupe, 5, 27),
        (HolidayRegion::SaintMartin, 5, 28),
        (HolidayRegion::Guyane, 6, 10),
        (HolidayRegion::SaintBarthelemy, 10, 9),
        (HolidayRegion::Reunion, 12, 20),
    ];
    for (region, m, d) in cases {
        let got = french_holidays(2027, region);
        assert_eq!(got.len(), 12, "{region:?}");
        assert!(
            got.contains(&(date(2027, m, d), "Abolition de l'esclavage")),
            "{region:?}"
        );
        assert!(got.windows(2).all(|p| p[0].0 <= p[1].0), "{region:?}");
    }
}

#[test]
fn coinciding_holidays_are_both_listed() {
    // Easter 2008 was on 23 March, so Ascension fell on 1 May.
    let got = french_holidays(2008, HolidayRegion::Metropole);
    let on_may_day: Vec<_> = got.iter().filter(|(d, _)| *d == date(2008, 5, 1)).collect();
    assert_eq!(on_may_day.len(), 2);
}

#[test]
fn time_zones_map_to_their_holiday_region() {
    let cases = [
        (Tz::Europe__Paris, HolidayRegion::Metropole),
        (Tz::America__Guadeloupe, HolidayRegion::Guadeloupe),
        (Tz::America__Martinique, HolidayRegion::Martinique),
        (Tz::America__Cayenne, HolidayRegion::Guyane),
        (Tz::Indian__Reunion, HolidayRegion::Reunion),
        (Tz::Indian__Mayotte, HolidayRegion::Mayotte),
        (Tz::America__St_Barthelemy, HolidayRegion::SaintBarthelemy),
        (Tz::America__Marigot, HolidayRegion::SaintMartin),
        (Tz::Europe__Berlin, HolidayRegion::Metropole),
        (Tz::UTC, HolidayRegion::Metropole),
    ];
    for (tz, region) in cases {
        assert_eq!(HolidayRegion::for_time_zone(tz), region, "{tz}");
    }
}

#[test]
fn holiday_regions_are_named_in_snake_case_by_serde() {
    // No serde format crate here: read the names back through serde's own
    // string deserializer.
    use serde::Deserialize;
    use serde::de::IntoDeserializer;
    use serde::de::value::Error;
    let read =
        |name: &str| HolidayRegion::deserialize(name.into_deserializer()).map_err(|e: Error| e);
    assert_eq!(read("metropole"), Ok(HolidayRegion::Metropole));
    assert_eq!(read("alsace_moselle"), Ok(HolidayRegion::AlsaceMoselle));
    assert_eq!(read("saint_barthelemy"), Ok(HolidayRegion::SaintBarthelemy));
    assert_eq!(read("saint_martin"), Ok(HolidayRegion::SaintMartin));
    assert_eq!(read("reunion"), Ok(HolidayRegion::Reunion));
    assert!(read("AlsaceMoselle").is_err());
}

// ---- Closed days ----

#[test]
fn whit_monday_2026_is_closed_in_paris() {
    let cal = paris_messages();
    assert!(cal.is_closed_day(date(2026, 5, 25)));
    assert!(!cal.is_allowed(local(PARIS, 2026, 5, 25, 10, 0)));
    assert_eq!(
        cal.next_allowed(local(PARIS, 2026, 5, 25, 10, 0)),
        Some(local(PARIS, 2026, 5, 26, 9, 0))
    );
}

#[test]
fn ascension_thursday_pushes_calls_to_friday() {
    let cal = paris_calls();
    let at = local(PARIS, 2026, 5, 14, 11, 0);
    assert!(!cal.is_allowed(at));
    // Friday 15 May 10:00 CEST = 08:00 UTC.
    assert_eq!(cal.next_allowed(at), Some(utc(2026, 5, 15, 8, 0)));
}

#[test]
fn reunion_closes_on_20_december_but_paris_does_not() {
    // 20 December 2025 is a Saturday: messages are otherwise allowed.
    let reunion = SendCalendar::new(REUNION, default_message_windows());
    let paris = paris_messages();
    assert!(reunion.is_closed_day(date(2025, 12, 20)));
    assert!(!paris.is_closed_day(date(2025, 12, 20)));
    assert!(!reunion.is_allowed(local(REUNION, 2025, 12, 20, 10, 0)));
    assert!(paris.is_allowed(local(PARIS, 2025, 12, 20, 10, 0)));
    // Saturday closed, Sunday closed: Monday 22 December 09:00 (+04:00).
    assert_eq!(
        reunion.next_allowed(local(REUNION, 2025, 12, 20, 10, 0)),
        Some(utc(2025, 12, 22, 5, 0))
    );
}

#[test]
fn martinique_closes_on_22_may() {
    let cal = SendCalendar::new(MARTINIQUE, default_message_windows());
    assert!(cal.is_closed_day(date(2026, 5, 22)));
    assert!(!paris_messages().is_closed_day(date(2026, 5, 22)));
    // Friday 22 May 2026 10:00 local: waits for Saturday 09:00 -04:00 = 13:00 UTC.
    let at = local(MARTINIQUE, 2026, 5, 22, 10, 0);
    assert!(!cal.is_allowed(at));
    assert_eq!(cal.next_allowed(at), Some(utc(2026, 5, 23, 13, 0)));
}

#[test]
fn alsace_moselle_closes_on_good_friday() {
    let mut alsace = paris_messages();
    alsace.region = HolidayRegion::AlsaceMoselle;
    let good_friday = date(2026, 4, 3);
    assert!(alsace.is_closed_day(good_friday));
    assert!(!paris_messages().is_closed_day(good_friday));
    assert_eq!(
        alsace.next_allowed(local(PARIS, 2026, 4, 3, 10, 0)),
        Some(local(PARIS, 2026, 4, 4, 9, 0))
    );
}

#[test]
fn alsace_moselle_closes_on_26_december_but_paris_does_not() {
    let mut alsace = paris_messages();
    alsace.region = HolidayRegion::AlsaceMoselle;
    assert!(alsace.is_closed_day(date(2025, 12, 26)));
    assert!(!paris_messages().is_closed_day(date(2025, 12, 26)));
}

#[test]
fn a_site_open_on_holidays_sends_on_whit_monday() {
    let mut cal = paris_messages();
    cal.open_on_holidays = true;
    assert!(!cal.is_closed_day(date(2026, 5, 25)));
    assert!(cal.is_allowed(local(PARIS, 2026, 5, 25, 10, 0)));
}

#[test]
fn sundays_are_closed_unless_the_site_opts_in() {
    let mut cal = every_day(PARIS, "09:00", "19:30");
    cal.open_on_sundays = false;
    assert!(cal.is_closed_day(date(2026, 6, 7)));
    assert!(!cal.is_allowed(local(PARIS, 2026, 6, 7, 10, 0)));
    cal.open_on_sundays = true;
    assert!(!cal.is_closed_day(date(2026, 6, 7)));
    assert!(cal.is_allowed(local(PARIS, 2026, 6, 7, 10, 0)));
}

#[test]
fn an_extra_closed_day_is_skipped() {
    let mut cal = paris_messages();
    cal.extra_closed.insert(date(2026, 6, 3));
    assert!(cal.is_closed_day(date(2026, 6, 3)));
    let at = local(PARIS, 2026, 6, 3, 10, 0);
    assert!(!cal.is_allowed(at));
    assert_eq!(cal.next_allowed(at), Some(local(PARIS, 2026, 6, 4, 9, 0)));
    assert_eq!(
        cal.last_allowed_before(local(PARIS, 2026, 6, 4, 8, 0)),
        Some(local(PARIS, 2026, 6, 2, 19, 30) - TimeDelta::nanoseconds(1))
    );
}

// ---- next_allowed ----

#[test]
fn a_message_due_on_saturday_evening_waits_for_monday_morning() {
    let cal = paris_messages();
    let at = local(PARIS, 2026, 6, 6, 20, 0);
    assert_eq!(at.weekday(), Weekday::Sat);
    assert_eq!(cal.next_allowed(at), Some(utc(2026, 6, 8, 7, 0)));
}

#[test]
fn next_allowed_inside_a_window_returns_the_instant_itself() {
    let cal = paris_messages();
    let at = local(PARIS, 2026, 6, 3, 14, 17) + TimeDelta::nanoseconds(123);
    assert!(cal.is_allowed(at));
    assert_eq!(cal.next_allowed(at), Some(at));
    let opening = local(PARIS, 2026, 6, 3, 9, 0);
    assert_eq!(cal.next_allowed(opening), Some(opening));
}

#[test]
fn a_window_end_is_not_allowed_and_moves_to_the_next_window() {
    let cal = paris_calls();
    let end = local(PARIS, 2026, 6, 3, 12, 30);
    assert!(!cal.is_allowed(end));
    assert!(cal.is_allowed(end - TimeDelta::nanoseconds(1)));
    assert_eq!(cal.next_allowed(end), Some(local(PARIS, 2026, 6, 3, 14, 0)));
}

#[test]
fn a_call_due_at_lunch_waits_for_the_afternoon_window() {
    let cal = paris_calls();
    assert_eq!(
        cal.next_allowed(local(PARIS, 2026, 6, 3, 13, 0)),
        Some(local(PARIS, 2026, 6, 3, 14, 0))
    );
}

#[test]
fn after_the_last_window_of_the_day_goes_to_the_next_open_day() {
    let cal = paris_calls();
    // Wednesday 19:45 -> Thursday 10:00.
    assert_eq!(
        cal.next_allowed(local(PARIS, 2026, 6, 3, 19, 45)),
        Some(local(PARIS, 2026, 6, 4, 10, 0))
    );
    // Friday 19:30 -> Monday 10:00 (no calls on Saturday).
    assert_eq!(
        cal.next_allowed(local(PARIS, 2026, 6, 5, 19, 30)),
        Some(local(PARIS, 2026, 6, 8, 10, 0))
    );
}

#[test]
fn a_message_due_before_opening_waits_for_09_00_the_same_day() {
    let cal = paris_messages();
    assert_eq!(
        cal.next_allowed(local(PARIS, 2026, 1, 14, 7, 12)),
        Some(utc(2026, 1, 14, 8, 0))
    );
}

#[test]
fn a_site_with_no_windows_is_never_allowed() {
    let cal = SendCalendar::new(PARIS, WeekWindows::default());
    let at = local(PARIS, 2026, 6, 3, 10, 0);
    assert!(!cal.is_allowed(at));
    assert_eq!(cal.next_allowed(at), None);
    assert_eq!(cal.last_allowed_before(at), None);
}

#[test]
fn a_site_closed_for_more_than_400_days_returns_none() {
    let mut cal = paris_messages();
    let start = date(2026, 6, 1);
    cal.extra_closed
        .extend(start.iter_days().take(SCAN_DAYS + 10));
    assert_eq!(cal.next_allowed(local(PARIS, 2026, 6, 1, 10, 0)), None);
    // ...but an opening day just inside the horizon is found.
    cal.extra_closed.remove(&date(2027, 6, 30));
    assert_eq!(
        cal.next_allowed(local(PARIS, 2026, 6, 1, 10, 0)),
        Some(local(PARIS, 2027, 6, 30, 9, 0))
    );
}

#[test]
fn a_message_due_at_08_00_in_reunion_goes_at_09_00_local_which_is_05_00_utc() {
    let cal = SendCalendar::new(REUNION, default_message_windows());
    let at = local(REUNION, 2026, 6, 3, 8, 0);
    assert_eq!(at, utc(2026, 6, 3, 4, 0));
    assert_eq!(cal.next_allowed(at), Some(utc(2026, 6, 3, 5, 0)));
    // Réunion has no DST: the same in the austral summer.
    let at = local(REUNION, 2026, 1, 14, 8, 0);
    assert_eq!(cal.next_allowed(at), Some(utc(2026, 1, 14, 5, 0)));
}

#[test]
fn a_message_due_at_20_00_in_martinique_goes_next_day_at_13_00_utc() {
    let cal = SendCalendar::new(MARTINIQUE, default_message_windows());
    let at = local(MARTINIQUE, 2026, 6, 3, 20, 0);
    assert_eq!(at, utc(2026, 6, 4, 0, 0));
    assert_eq!(cal.next_allowed(at), Some(utc(2026, 6, 4, 13, 0)));
    // 18:00 local is 22:00 UTC, still inside the window.
    assert!(cal.is_allowed(utc(2026, 6, 3, 22, 0)));
    assert!(!cal.is_allowed(utc(2026, 6, 3, 23, 30)));
}

// ---- DST, Europe/Paris ----

#[test]
fn a_window_at_02_30_on_spring_forward_day_opens_at_03_00_local() {
    let cal = every_day(PARIS, "02:30", "04:00");
    // 2026-03-29 is a Sunday; 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
    let at = local(PARIS, 2026, 3, 29, 1, 0);
    assert_eq!(cal.next_allowed(at), Some(utc(2026, 3, 29, 1, 0)));
    assert_eq!(
        resolve_local(
            PARIS,
            date(2026, 3, 29).and_hms_opt(2, 30, 0).expect("time")
        ),
        utc(2026, 3, 29, 1, 0)
    );
    assert!(!cal.is_allowed(utc(2026, 3, 29, 0, 59)));
    assert!(cal.is_allowed(utc(2026, 3, 29, 1, 0)));
    // The window closes at 04:00 CEST = 02:00 UTC.
    assert!(!cal.is_allowed(utc(2026, 3, 29, 2, 0)));
}

#[test]
fn a_window_ending_inside_the_spring_gap_ends_at_03_00_local() {
    let cal = every_day(PARIS, "01:00", "02:30");
    assert!(cal.is_allowed(utc(2026, 3, 29, 0, 59)));
    assert!(!cal.is_allowed(utc(2026, 3, 29, 1, 0)));
    assert_eq!(
        cal.last_allowed_before(utc(2026, 3, 29, 5, 0)),
        Some(utc(2026, 3, 29, 1, 0) - TimeDelta::nanoseconds(1))
    );
}

#[test]
fn a_window_wholly_inside_the_spring_gap_is_empty_that_day() {
    let cal = every_day(PARIS, "02:10", "02:50");
    // Nothing on 29 March; 30 March 02:10 CEST = 00:10 UTC.
    assert_eq!(
        cal.next_allowed(utc(2026, 3, 28, 23, 0)),
        Some(utc(2026, 3, 30, 0, 10))
    );
}

#[test]
fn a_window_at_02_30_on_fall_back_day_opens_at_the_earlier_02_30() {
    let cal = every_day(PARIS, "02:30", "04:00");
    // 2026-10-25 is a Sunday; 03:00 CEST falls back to 02:00 CET at 01:00 UTC.
    // The first 02:30 is CEST (+02:00) = 00:30 UTC.
    let at = utc(2026, 10, 24, 23, 0);
    assert_eq!(cal.next_allowed(at), Some(utc(2026, 10, 25, 0, 30)));
    assert_eq!(
        resolve_local(
            PARIS,
            date(2026, 10, 25).and_hms_opt(2, 30, 0).expect("time")
        ),
        utc(2026, 10, 25, 0, 30)
    );
    // Open through both 02:30s until 04:00 CET = 03:00 UTC.
    assert!(cal.is_allowed(utc(2026, 10, 25, 1, 30)));
    assert!(!cal.is_allowed(utc(2026, 10, 25, 3, 0)));
}

#[test]
fn a_window_ending_inside_the_autumn_overlap_ends_at_the_earlier_instant() {
    let cal = every_day(PARIS, "01:00", "02:30");
    // 02:30 CEST = 00:30 UTC; the second 02:15 (CET, 01:15 UTC) is outside.
    assert!(cal.is_allowed(utc(2026, 10, 25, 0, 29)));
    assert!(!cal.is_allowed(utc(2026, 10, 25, 0, 30)));
    assert!(!cal.is_allowed(utc(2026, 10, 25, 1, 15)));
    assert_eq!(
        cal.next_allowed(utc(2026, 10, 25, 0, 30)),
        Some(utc(2026, 10, 26, 0, 0)) // 26 Oct 01:00 CET
    );
}

#[test]
fn a_09_00_window_on_spring_forward_day_opens_at_07_00_utc() {
    let cal = every_day(PARIS, "09:00", "19:30");
    assert_eq!(
        cal.next_allowed(utc(2026, 3, 29, 0, 0)),
        Some(utc(2026, 3, 29, 7, 0))
    );
    // The day before was still CET: 08:00 UTC.
    assert_eq!(
        cal.next_allowed(utc(2026, 3, 28, 0, 0)),
        Some(utc(2026, 3, 28, 8, 0))
    );
}

#[test]
fn a_09_00_window_on_fall_back_day_opens_at_08_00_utc() {
    let cal = every_day(PARIS, "09:00", "19:30");
    assert_eq!(
        cal.next_allowed(utc(2026, 10, 25, 0, 0)),
        Some(utc(2026, 10, 25, 8, 0))
    );
    assert_eq!(
        cal.next_allowed(utc(2026, 10, 24, 0, 0)),
        Some(utc(2026, 10, 24, 7, 0))
    );
    // The window lasts 10.5 real hours on both DST days.
    assert_eq!(
        cal.last_allowed_before(utc(2026, 10, 26, 0, 0)),
        Some(utc(2026, 10, 25, 18, 30) - TimeDelta::nanoseconds(1))
    );
}

#[test]
fn by_default_dst_sundays_are_closed_in_paris() {
    let cal = paris_messages();
    assert_eq!(
        cal.next_allowed(utc(2026, 3, 28, 19, 0)),
        Some(utc(2026, 3, 30, 7, 0))
    );
    assert_eq!(
        cal.next_allowed(utc(2026, 10, 24, 18, 0)),
        Some(utc(2026, 10, 26, 8, 0))
    );
}

/// Compare `next_allowed` and `last_allowed_before` with a brute-force
/// minute-by-minute walk over `is_allowed` (windows are on whole minutes).
fn check_against_brute_force(cal: &SendCalendar, from: DateTime<Utc>, minutes: i64) {
    let at = |i: i64| from + TimeDelta::minutes(i);
    let allowed: Vec<bool> = (0..minutes).map(|i| cal.is_allowed(at(i))).collect();
    let mut next: Option<i64> = None;
    for i in (0..minutes).rev() {
        if allowed[i as usize] {
            next = Some(i);
        }
        if let Some(n) = next {
            assert_eq!(cal.next_allowed(at(i)), Some(at(n)), "next from {}", at(i));
        }
    }
    let mut last: Option<i64> = None;
    for i in 1..minutes {
        if allowed[(i - 1) as usize] {
            last = Some(i);
        }
        if let Some(l) = last {
            // Minute l-1 is the last allowed one: allowed until at(l) - 1ns.
            let got = cal.last_allowed_before(at(i));
            assert_eq!(
                got,
                Some(at(l) - TimeDelta::nanoseconds(1)),
                "before {}",
                at(i)
            );
            assert!(got.is_some_and(|g| cal.is_allowed(g)));
        }
    }
}

#[test]
fn next_and_last_agree_with_a_minute_by_minute_walk_across_both_paris_dst_days() {
    let mut spec =
        WeekWindows::parse("mon-sun", &hours(&["01:00-02:30", "02:45-03:15"])).expect("spec");
    spec.merge(&WeekWindows::parse("sun", &hours(&["09:00-09:30", "23:30-23:45"])).expect("spec"))
        .expect("merge");
    let mut cal = SendCalendar::new(PARIS, spec);
    cal.open_on_sundays = true;
    check_against_brute_force(&cal, utc(2026, 3, 28, 20, 0), 36 * 60);
    check_against_brute_force(&cal, utc(2026, 10, 24, 20, 0), 36 * 60);
}

#[test]
fn next_and_last_agree_with_a_minute_by_minute_walk_over_a_default_week() {
    check_against_brute_force(&paris_calls(), utc(2026, 5, 12, 0, 0), 8 * 24 * 60);
}

// ---- last_allowed_before ----

#[test]
fn last_allowed_before_inside_a_window_is_just_before_it() {
    let cal = paris_messages();
    let before = local(PARIS, 2026, 6, 3, 10, 0);
    let got = cal.last_allowed_before(before).expect("some");
    assert_eq!(got, before - TimeDelta::nanoseconds(1));
    assert!(cal.is_allowed(got));
}

#[test]
fn last_allowed_before_monday_morning_is_saturday_evening() {
    let cal = paris_messages();
    assert_eq!(
        cal.last_allowed_before(local(PARIS, 2026, 6, 8, 8, 0)),
        Some(utc(2026, 6, 6, 17, 30) - TimeDelta::nanoseconds(1))
    );
    // Exactly at an opening: the previous window, not this one.
    assert_eq!(
        cal.last_allowed_before(local(PARIS, 2026, 6, 3, 9, 0)),
        Some(local(PARIS, 2026, 6, 2, 19, 30) - TimeDelta::nanoseconds(1))
    );
}

#[test]
fn last_allowed_call_before_14_00_is_the_end_of_the_morning_window() {
    let cal = paris_calls();
    assert_eq!(
        cal.last_allowed_before(local(PARIS, 2026, 6, 3, 14, 0)),
        Some(local(PARIS, 2026, 6, 3, 12, 30) - TimeDelta::nanoseconds(1))
    );
}

#[test]
fn last_allowed_before_skips_whit_monday_and_sunday() {
    let cal = paris_messages();
    assert_eq!(
        cal.last_allowed_before(local(PARIS, 2026, 5, 26, 9, 0)),
        Some(local(PARIS, 2026, 5, 23, 19, 30) - TimeDelta::nanoseconds(1))
    );
}

// ---- parsing and merging ----

#[test]
fn parse_reads_a_day_range_and_sorts_the_hours() {
    let w = WeekWindows::parse("Mon-Fri", &hours(&["14:00-19:30", "10:00-12:30"])).expect("spec");
    assert_eq!(w, default_call_windows());
}

#[test]
fn parse_reads_a_day_list_a_single_day_and_mixed_items() {
    let h = hours(&["9:00-12:00"]);
    let w = WeekWindows::parse("mon, WED ,fri", &h).expect("spec");
    let on: Vec<bool> = w.days.iter().map(|d| !d.is_empty()).collect();
    assert_eq!(on, [true, false, true, false, true, false, false]);
    assert_eq!(w.days[0], vec![window("09:00", "12:00")]);
    let w = WeekWindows::parse("sat", &h).expect("spec");
    assert!(w.days[5].len() == 1 && w.days.iter().flatten().count() == 1);
    let w = WeekWindows::parse("mon-tue,thu-sat", &h).expect("spec");
    let on: Vec<bool> = w.days.iter().map(|d| !d.is_empty()).collect();
    assert_eq!(on, [true, true, false, true, true, true, false]);
}

#[test]
fn parse_gives_the_defaults_from_the_design() {
    let msg = WeekWindows::parse("mon-sat", &hours(&["09:00-19:30"])).expect("spec");
    assert_eq!(msg, default_message_windows());
    assert!(default_message_windows().days[6].is_empty());
    assert!(default_call_windows().days[5].is_empty());
}

#[test]
fn parse_names_an_unknown_day() {
    assert_eq!(
        WeekWindows::parse("mon,sun2", &hours(&["09:00-10:00"])),
        Err("days: unknown day 'sun2'".to_string())
    );
    assert_eq!(
        WeekWindows::parse("lundi-sat", &hours(&["09:00-10:00"])),
        Err("days: unknown day 'lundi'".to_string())
    );
}

#[test]
fn parse_rejects_empty_and_backwards_day_specs() {
    let h = hours(&["09:00-10:00"]);
    assert_eq!(WeekWindows::parse(" ", &h), Err("days: empty".to_string()));
    assert!(WeekWindows::parse("mon,,fri", &h).is_err_and(|e| e.starts_with("days: empty item")));
    assert!(WeekWindows::parse("sat-mon", &h).is_err_and(|e| e.contains("'sat-mon'")));
}

#[test]
fn parse_names_a_window_that_ends_before_it_starts() {
    assert_eq!(
        WeekWindows::parse("mon-fri", &hours(&["10:00-12:30", "14:00-13:00"])),
        Err("hours[1]: '14:00-13:00' ends before it starts".to_string())
    );
    assert!(
        WeekWindows::parse("mon", &hours(&["10:00-10:00"]))
            .is_err_and(|e| e.starts_with("hours[0]: '10:00-10:00' is empty"))
    );
}

#[test]
fn parse_names_bad_times() {
    for (bad, part) in [
        ("24:00-25:00", "bad start time '24:00'"),
        ("10:00-12:60", "bad end time '12:60'"),
        ("10h-12h", "bad start time '10h'"),
        ("10:00", "not of the form HH:MM-HH:MM"),
        ("-1:00-2:00", "bad start time ''"),
        ("+9:00-10:00", "bad start time '+9:00'"),
        ("10:0-11:00", "bad start time '10:0'"),
        ("", "not of the form"),
    ] {
        let got = WeekWindows::parse("mon", &hours(&["08:00-08:30", bad]));
        assert!(
            got.as_ref()
                .is_err_and(|e| e.starts_with("hours[1]: ") && e.contains(part)),
            "{bad}: {got:?}"
        );
    }
}

#[test]
fn parse_rejects_overlapping_windows_but_accepts_touching_ones() {
    assert_eq!(
        WeekWindows::parse("mon", &hours(&["14:00-19:30", "10:00-14:30"])),
        Err("hours[1]: '10:00-14:30' overlaps hours[0]: '14:00-19:30'".to_string())
    );
    let w = WeekWindows::parse("mon", &hours(&["12:00-14:00", "10:00-12:00"])).expect("spec");
    assert_eq!(
        w.days[0],
        vec![window("10:00", "12:00"), window("12:00", "14:00")]
    );
}

#[test]
fn parse_rejects_an_empty_hours_list() {
    assert_eq!(
        WeekWindows::parse("mon", &[]),
        Err("hours: no window given".to_string())
    );
}

#[test]
fn merge_unites_several_blocks() {
    let mut w = WeekWindows::parse("mon-fri", &hours(&["14:00-19:30"])).expect("spec");
    w.merge(&WeekWindows::parse("mon-sat", &hours(&["09:00-12:00"])).expect("spec"))
        .expect("merge");
    assert_eq!(
        w.days[0],
        vec![window("09:00", "12:00"), window("14:00", "19:30")]
    );
    assert_eq!(w.days[5], vec![window("09:00", "12:00")]);
    assert!(w.days[6].is_empty());
    assert_eq!(w.latest_end(), Some(hm(19, 30)));
}

#[test]
fn merge_rejects_an_overlap_and_leaves_the_windows_unchanged() {
    let mut w = WeekWindows::parse("mon-sat", &hours(&["09:00-12:00"])).expect("spec");
    let before = w.clone();
    let other = WeekWindows::parse("sat", &hours(&["11:00-13:00"])).expect("spec");
    assert_eq!(
        w.merge(&other),
        Err("sat: 09:00-12:00 overlaps 11:00-13:00".to_string())
    );
    assert_eq!(w, before);
}

#[test]
fn merge_rejects_a_hand_built_reversed_window() {
    let mut w = WeekWindows::default();
    let mut other = WeekWindows::default();
    other.days[2].push(window("12:00", "10:00"));
    assert!(
        w.merge(&other)
            .is_err_and(|e| e.starts_with("wed: window 12:00-10:00"))
    );
    assert_eq!(w, WeekWindows::default());
}

#[test]
fn latest_end_is_the_latest_window_end_of_the_week() {
    assert_eq!(WeekWindows::default().latest_end(), None);
    assert_eq!(default_call_windows().latest_end(), Some(hm(19, 30)));
    let mut w = default_message_windows();
    w.merge(&WeekWindows::parse("sun", &hours(&["18:00-20:30"])).expect("spec"))
        .expect("merge");
    assert_eq!(w.latest_end(), Some(hm(20, 30)));
    assert!(w.latest_end() > Some(hm(20, 0)));
}

// ---- robustness ----

#[test]
fn hand_built_odd_windows_do_not_break_the_search() {
    let mut windows = WeekWindows::default();
    for day in windows.days.iter_mut() {
        // Unsorted, overlapping, empty and reversed.
        day.push(window("15:00", "16:00"));
        day.push(window("10:00", "10:00"));
        day.push(window("12:00", "11:00"));
        day.push(window("09:30", "15:30"));
    }
    let cal = SendCalendar::new(PARIS, windows);
    let at = local(PARIS, 2026, 6, 3, 8, 0);
    assert_eq!(cal.next_allowed(at), Some(local(PARIS, 2026, 6, 3, 9, 30)));
    assert!(cal.is_allowed(local(PARIS, 2026, 6, 3, 15, 45)));
    assert_eq!(
        cal.last_allowed_before(local(PARIS, 2026, 6, 3, 20, 0)),
        Some(local(PARIS, 2026, 6, 3, 16, 0) - TimeDelta::nanoseconds(1))
    );
}

#[test]
fn extreme_instants_do_not_panic() {
    let mut windows = default_message_windows();
    windows.days[6].push(window("00:00", "23:59"));
    for tz in [
        PARIS,
        REUNION,
        MARTINIQUE,
        Tz::Pacific__Kiritimati,
        Tz::Etc__GMTPlus12,
    ] {
        let mut cal = SendCalendar::new(tz, windows.clone());
        cal.open_on_sundays = true;
        for at in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let _ = cal.is_allowed(at);
            let _ = cal.next_allowed(at);
            let _ = cal.last_allowed_before(at);
        }
        let _ = resolve_local(tz, NaiveDateTime::MIN);
        let _ = resolve_local(tz, NaiveDateTime::MAX);
        let _ = cal.is_closed_day(NaiveDate::MIN);
        let _ = cal.is_closed_day(NaiveDate::MAX);
    }
}

#[test]
fn resolve_local_is_exact_outside_transitions() {
    let t = date(2026, 6, 3).and_hms_opt(9, 0, 0).expect("time");
    assert_eq!(resolve_local(PARIS, t), utc(2026, 6, 3, 7, 0));
    assert_eq!(resolve_local(REUNION, t), utc(2026, 6, 3, 5, 0));
    assert_eq!(resolve_local(MARTINIQUE, t), utc(2026, 6, 3, 13, 0));
}
