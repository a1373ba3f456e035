//! Send-window calendar: decides *when* Rappel may send a message or place a
//! call for a site, in that site's local time zone.
//!
//! This module owns the answer to one question: "may this channel be used at
//! this instant for this site, and if not, when next?". It keeps that answer in
//! one pure place (no I/O, no logging, the clock is always passed in) so that
//! the scheduler, the give-up deadline and the "send the day before" logic all
//! agree, and so that patients are never contacted outside the hours the
//! design allows.
//!
//! The defaults from the design are:
//!
//! * SMS / WhatsApp: Monday to Saturday, 09:00–19:30 local time
//!   ([`default_message_windows`]);
//! * phone calls: Monday to Friday, 10:00–12:30 and 14:00–19:30 local time
//!   ([`default_call_windows`]);
//! * never after 20:00 local time (the configuration checks
//!   [`WeekWindows::latest_end`] against it);
//! * no Sundays and no French public holidays (jours fériés légaux) of the
//!   site's region, unless the site opts in; plus site-specific closed days.
//!
//! Windows are half-open, `[start, end)`, in local wall-clock time. A local
//! time is turned into an instant by [`resolve_local`]: a time that does not
//! exist (DST gap, e.g. 02:30 on the last Sunday of March in Europe/Paris)
//! becomes the first instant after the gap (03:00 local); a time that exists
//! twice (DST overlap, e.g. 02:30 on the last Sunday of October) becomes the
//! earlier of the two. Searches ([`SendCalendar::next_allowed`],
//! [`SendCalendar::last_allowed_before`]) look at most 400 days ahead or back
//! and cost O(days scanned × windows per day); they never step minute by
//! minute.
//!
//! Public holidays follow the Code du travail (art. L3133-1 for the national
//! list, L3134-13 for Alsace-Moselle) and, for the overseas abolition-of-slavery
//! day, loi n° 83-550 du 30 juin 1983 and décret n° 83-1003 du 23 novembre 1983
//! as amended (see [`french_holidays`]). Easter is computed with the anonymous
//! Gregorian (Meeus/Jones/Butcher) algorithm.
//!
//! Nothing in this module panics, whatever its input (out-of-range years and
//! instants, hand-built windows that are empty, reversed or unsorted).

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Timelike,
    Utc, Weekday,
};
use chrono_tz::{GapInfo, Tz};

/// How many days [`SendCalendar::next_allowed`] and
/// [`SendCalendar::last_allowed_before`] look ahead or back.
const SCAN_DAYS: usize = 400;

/// English three-letter day names, Monday first (the index into
/// [`WeekWindows::days`]).
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A local-time window [start, end) on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: chrono::NaiveTime,
    pub end: chrono::NaiveTime,
}

/// Windows per weekday, Monday first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WeekWindows {
    pub days: [Vec<Window>; 7],
}

impl WeekWindows {
    /// days: "mon-sat", "mon-fri", "mon,wed,fri", "sat" (case-insensitive, English 3-letter names);
    /// hours: ["10:00-12:30", "14:00-19:30"]. Errors are plain strings that name the bad part,
    /// e.g. "days: unknown day 'sun2'" or "hours[1]: '14:00-13:00' ends before it starts".
    /// Windows on one day must not overlap (error), are sorted.
    ///
    /// `days` is a comma-separated list of days and Monday-first ranges
    /// (`"mon-wed,fri"` works; a backwards range such as `"sat-mon"` is an
    /// error). Times are `H:MM` or `HH:MM`, 00:00 to 23:59. An empty `days`
    /// or an empty `hours` list is an error (it is always a configuration
    /// mistake; a channel with no windows is `WeekWindows::default()`).
    /// Touching windows (`"10:00-12:00"`, `"12:00-14:00"`) do not overlap.
    pub fn parse(days: &str, hours: &[String]) -> Result<WeekWindows, String> {
        let selected = parse_days(days)?;
        if hours.is_empty() {
            return Err("hours: no window given".to_string());
        }
        let mut windows: Vec<(usize, Window)> = Vec::with_capacity(hours.len());
        for (i, spec) in hours.iter().enumerate() {
            windows.push((i, parse_window(i, spec)?));
        }
        windows.sort_by_key(|(_, w)| (w.start, w.end));
        for pair in windows.windows(2) {
            let (i, a) = pair[0];
            let (j, b) = pair[1];
            if a.end > b.start {
                let (first, second) = if i < j { (i, j) } else { (j, i) };
                return Err(format!(
                    "hours[{second}]: '{}' overlaps hours[{first}]: '{}'",
                    hours[second].trim(),
                    hours[first].trim()
                ));
            }
        }
        let sorted: Vec<Window> = windows.into_iter().map(|(_, w)| w).collect();
        let mut out = WeekWindows::default();
        for (day, on) in out.days.iter_mut().zip(selected) {
            if on {
                day.clone_from(&sorted);
            }
        }
        Ok(out)
    }

    /// Union of several parsed specs (a site can list several {days, hours} blocks).
    ///
    /// Errors (and leaves `self` unchanged) when a window of `other` overlaps a
    /// window of `self` on the same day, or when either side holds an empty or
    /// reversed window: "sat: 09:00-12:00 overlaps 11:00-13:00".
    pub fn merge(&mut self, other: &WeekWindows) -> Result<(), String> {
        let mut merged = self.days.clone();
        for (d, day) in merged.iter_mut().enumerate() {
            day.extend_from_slice(&other.days[d]);
            day.sort_by_key(|w| (w.start, w.end));
            if let Some(w) = day.iter().find(|w| w.start >= w.end) {
                return Err(format!(
                    "{}: window {} is empty or ends before it starts",
                    DAY_NAMES[d],
                    fmt_window(w)
                ));
            }
            for pair in day.windows(2) {
                if pair[0].end > pair[1].start {
                    return Err(format!(
                        "{}: {} overlaps {}",
                        DAY_NAMES[d],
                        fmt_window(&pair[0]),
                        fmt_window(&pair[1])
                    ));
                }
            }
        }
        self.days = merged;
        Ok(())
    }

    /// Latest end time over all days (config checks it is <= 20:00: "never after 20:00").
    /// `None` when there is no window at all.
    pub fn latest_end(&self) -> Option<chrono::NaiveTime> {
        self.days.iter().flatten().map(|w| w.end).max()
    }
}

fn parse_day(name: &str) -> Option<usize> {
    let lower = name.trim().to_ascii_lowercase();
    DAY_NAMES.iter().position(|d| *d == lower)
}

fn parse_days(spec: &str) -> Result<[bool; 7], String> {
    if spec.trim().is_empty() {
        return Err("days: empty".to_string());
    }
    let mut selected = [false; 7];
    for item in spec.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("days: empty item in '{}'", spec.trim()));
        }
        let day = |name: &str| {
            let name = name.trim();
            parse_day(name).ok_or_else(|| format!("days: unknown day '{name}'"))
        };
        match item.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                if from > to {
                    return Err(format!(
                        "days: range '{item}' runs backwards (days run Monday first, e.g. 'mon-sat')"
                    ));
                }
                for on in &mut selected[from..=to] {
                    *on = true;
                }
            }
            None => selected[day(item)?] = true,
        }
    }
    Ok(selected)
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    let (h, m) = text.trim().split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

fn parse_window(index: usize, spec: &str) -> Result<Window, String> {
    let spec = spec.trim();
    let (start, end) = spec
        .split_once('-')
        .ok_or_else(|| format!("hours[{index}]: '{spec}' is not of the form HH:MM-HH:MM"))?;
    let start_time = parse_time(start).ok_or_else(|| {
        format!(
            "hours[{index}]: '{spec}' has a bad start time '{}' (want HH:MM, 00:00 to 23:59)",
            start.trim()
        )
    })?;
    let end_time = parse_time(end).ok_or_else(|| {
        format!(
            "hours[{index}]: '{spec}' has a bad end time '{}' (want HH:MM, 00:00 to 23:59)",
            end.trim()
        )
    })?;
    if end_time < start_time {
        return Err(format!("hours[{index}]: '{spec}' ends before it starts"));
    }
    if end_time == start_time {
        return Err(format!(
            "hours[{index}]: '{spec}' is empty (ends when it starts)"
        ));
    }
    Ok(Window {
        start: start_time,
        end: end_time,
    })
}

fn fmt_time(t: NaiveTime) -> String {
    if t.second() == 0 && t.nanosecond() == 0 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M:%S%.f").to_string()
    }
}

fn fmt_window(w: &Window) -> String {
    format!("{}-{}", fmt_time(w.start), fmt_time(w.end))
}

/// French holiday region of a site: which local public holidays apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayRegion {
    Metropole,
    AlsaceMoselle,
    Guadeloupe,
    Martinique,
    Guyane,
    Reunion,
    Mayotte,
    SaintBarthelemy,
    SaintMartin,
}

impl HolidayRegion {
    /// Default region for a site's time zone: Europe/Paris -> Metropole, America/Guadeloupe -> Guadeloupe,
    /// America/Martinique -> Martinique, America/Cayenne -> Guyane, Indian/Reunion -> Reunion,
    /// Indian/Mayotte -> Mayotte, America/St_Barthelemy -> SaintBarthelemy, America/Marigot -> SaintMartin, anything else -> Metropole.
    ///
    /// Alsace-Moselle shares Europe/Paris with the rest of metropolitan France,
    /// so it can only be chosen explicitly.
    pub fn for_time_zone(tz: chrono_tz::Tz) -> HolidayRegion {
        match tz {
            Tz::Europe__Paris => HolidayRegion::Metropole,
            Tz::America__Guadeloupe => HolidayRegion::Guadeloupe,
            Tz::America__Martinique => HolidayRegion::Martinique,
            Tz::America__Cayenne => HolidayRegion::Guyane,
            Tz::Indian__Reunion => HolidayRegion::Reunion,
            Tz::Indian__Mayotte => HolidayRegion::Mayotte,
            Tz::America__St_Barthelemy => HolidayRegion::SaintBarthelemy,
            Tz::America__Marigot => HolidayRegion::SaintMartin,
            _ => HolidayRegion::Metropole,
        }
    }

    /// Day and month of the abolition-of-slavery public holiday, for the
    /// overseas regions that have one.
    ///
    /// Loi n° 83-550 du 30 juin 1983 makes the commemoration of the abolition
    /// of slavery a public holiday overseas (Code du travail, art. L3422-2);
    /// décret n° 83-1003 du 23 novembre 1983 fixes the date for each territory:
    /// Guadeloupe 27 May, Guyane 10 June, Martinique 22 May, Mayotte 27 April,
    /// La Réunion 20 December. Décret n° 2012-553 du 23 avril 2012 added
    /// Saint-Barthélemy (9 October) and Saint-Martin (then 27 May); a later
    /// amendment moved Saint-Martin to 28 May, the date slavery was proclaimed
    /// abolished there (observed on 28 May since 2018).
    fn abolition_day(self) -> Option<(u32, u32)> {
        match self {
            HolidayRegion::Metropole | HolidayRegion::AlsaceMoselle => None,
            HolidayRegion::Mayotte => Some((4, 27)),
            HolidayRegion::Martinique => Some((5, 22)),
            HolidayRegion::Guadeloupe => Some((5, 27)),
            HolidayRegion::SaintMartin => Some((5, 28)),
            HolidayRegion::Guyane => Some((6, 10)),
            HolidayRegion::SaintBarthelemy => Some((10, 9)),
            HolidayRegion::Reunion => Some((12, 20)),
        }
    }
}

/// French public holidays (jours fériés légaux) of `year` in `region`, sorted, with their French name.
/// National: 1 Jan, Easter Monday, 1 May, 8 May, Ascension (Easter+39), Whit Monday (Easter+50), 14 Jul, 15 Aug, 1 Nov, 11 Nov, 25 Dec.
/// Alsace-Moselle adds Good Friday and 26 Dec. Overseas add the abolition of slavery day: Mayotte 27 Apr,
/// Martinique 22 May, Guadeloupe 27 May, Saint-Martin 28 May, Guyane 10 Jun, Saint-Barthélemy 9 Oct, Réunion 20 Dec.
/// Easter by the anonymous Gregorian (Meeus/Jones/Butcher) algorithm.
///
/// National list: Code du travail, art. L3133-1. Alsace-Moselle (Bas-Rhin,
/// Haut-Rhin, Moselle): art. L3134-13 adds Good Friday (Easter − 2) and
/// 26 December. Abolition days: loi n° 83-550 du 30 juin 1983 and décret
/// n° 83-1003 du 23 novembre 1983 as amended (details on the region's dates in
/// the source). Whit Monday stays a public holiday even where it is the
/// "journée de solidarité".
///
/// When two holidays fall on the same date (Ascension on 1 May in 2008, Whit
/// Monday on 22 May in Martinique...) both entries are kept, so a date may
/// appear twice. Years outside chrono's range give an empty list.
pub fn french_holidays(year: i32, region: HolidayRegion) -> Vec<(chrono::NaiveDate, &'static str)> {
    let mut out: Vec<(NaiveDate, &'static str)> = Vec::with_capacity(14);
    let mut fixed = |month: u32, day: u32, name: &'static str| {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
            out.push((date, name));
        }
    };
    fixed(1, 1, "Jour de l'an");
    fixed(5, 1, "Fête du Travail");
    fixed(5, 8, "Victoire 1945");
    fixed(7, 14, "Fête nationale");
    fixed(8, 15, "Assomption");
    fixed(11, 1, "Toussaint");
    fixed(11, 11, "Armistice 1918");
    fixed(12, 25, "Noël");
    if region == HolidayRegion::AlsaceMoselle {
        fixed(12, 26, "Saint-Étienne");
    }
    if let Some((month, day)) = region.abolition_day() {
        fixed(month, day, "Abolition de l'esclavage");
    }
    if let Some(easter) = easter_sunday_opt(year) {
        let mut relative = |days: i64, name: &'static str| {
            if let Some(date) = easter.checked_add_signed(TimeDelta::days(days)) {
                out.push((date, name));
            }
        };
        if region == HolidayRegion::AlsaceMoselle {
            relative(-2, "Vendredi saint");
        }
        relative(1, "Lundi de Pâques");
        relative(39, "Ascension");
        relative(50, "Lundi de Pentecôte");
    }
    out.sort_by_key(|(date, _)| *date);
    out
}

/// Easter Sunday (Gregorian) of `year`, by the anonymous Gregorian
/// (Meeus/Jones/Butcher) algorithm.
///
/// For a year outside chrono's date range (about ±262,000) there is no such
/// `NaiveDate`: the function then returns `NaiveDate::MIN` (negative years) or
/// `NaiveDate::MAX` rather than panicking.
pub fn easter_sunday(year: i32) -> chrono::NaiveDate {
    easter_sunday_opt(year).unwrap_or(if year < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    })
}

fn easter_sunday_opt(year: i32) -> Option<NaiveDate> {
    // i64 and Euclidean division: no overflow, and every intermediate stays
    // in the ranges the algorithm expects, even for negative years.
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    let month = u32::try_from(n / 31).ok()?;
    let day = u32::try_from(n % 31 + 1).ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

fn is_holiday(date: NaiveDate, region: HolidayRegion) -> bool {
    french_holidays(date.year(), region)
        .iter()
        .any(|(d, _)| *d == date)
}

/// Everything needed to decide when a channel may be used at a site.
#[derive(Debug, Clone)]
pub struct SendCalendar {
    pub tz: chrono_tz::Tz,
    pub windows: WeekWindows,
    pub region: HolidayRegion,
    pub extra_closed: std::collections::BTreeSet<chrono::NaiveDate>, // site-specific closed days
    pub open_on_sundays: bool,                                       // default false: no Sundays
    pub open_on_holidays: bool,                                      // default false
}

impl SendCalendar {
    /// Region from `tz`, no extra closed days, closed on Sundays and holidays.
    pub fn new(tz: chrono_tz::Tz, windows: WeekWindows) -> SendCalendar {
        SendCalendar {
            tz,
            windows,
            region: HolidayRegion::for_time_zone(tz),
            extra_closed: BTreeSet::new(),
            open_on_sundays: false,
            open_on_holidays: false,
        }
    }

    /// A Sunday (unless `open_on_sundays`), a public holiday of the region
    /// (unless `open_on_holidays`), or a site-specific closed day.
    /// Says nothing about windows: a day with no window is not "closed".
    pub fn is_closed_day(&self, date: chrono::NaiveDate) -> bool {
        (date.weekday() == Weekday::Sun && !self.open_on_sundays)
            || self.extra_closed.contains(&date)
            || (!self.open_on_holidays && is_holiday(date, self.region))
    }

    /// Whether `at` falls inside a window of an open day (windows resolved to
    /// instants as [`resolve_local`] does, half-open).
    pub fn is_allowed(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        let Some(local) = local_of(self.tz, at) else {
            return false;
        };
        let day = local.date();
        // The neighbours only matter for odd zones whose transitions cross
        // midnight; they keep this check identical to `next_allowed`.
        [day.pred_opt(), Some(day), day.succ_opt()]
            .into_iter()
            .flatten()
            .any(|date| self.intervals(date).any(|(s, e)| s <= at && at < e))
    }

    /// Earliest instant >= `after` inside a window of an open day, or None if none within 400 days.
    /// Must be correct across DST: on Europe/Paris spring-forward day (last Sunday of March, 02:00->03:00)
    /// a window starting at 02:30 local opens at 03:00 local (the first valid instant after the gap);
    /// on fall-back day (last Sunday of October, 03:00->02:00) a window 02:30 local opens at the EARLIER
    /// of the two 02:30s; a window end inside a gap/overlap is resolved the same way.
    /// Must be efficient: O(days scanned * windows), no minute-by-minute stepping.
    pub fn next_allowed(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let first = local_of(self.tz, after)?.date();
        let mut date = first.pred_opt().unwrap_or(first);
        // From the day before `after`'s local date to 400 days after it.
        for _ in 0..=SCAN_DAYS + 1 {
            // [`resolve_local`] is monotonic in local time, so the windows of a
            // later day never open before those of an earlier day: the first
            // day with a candidate holds the answer.
            let best = self
                .intervals(date)
                .filter(|&(_, e)| after < e)
                .map(|(s, _)| s.max(after))
                .min();
            if best.is_some() {
                return best;
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// The latest allowed instant strictly before `before` (used for "give up N hours before the appointment"
    /// and for "send the day before in the morning"), or None within 400 days back.
    ///
    /// Windows are half-open, so the answer is one nanosecond before the end
    /// of the last window that opened before `before` (or one nanosecond
    /// before `before` itself when `before` is inside a window); it is always
    /// itself allowed.
    pub fn last_allowed_before(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let last = local_of(self.tz, before)?.date();
        let mut date = last.succ_opt().unwrap_or(last);
        // From the day after `before`'s local date to 400 days before it.
        for _ in 0..=SCAN_DAYS + 1 {
            let best = self
                .intervals(date)
                .filter(|&(s, _)| s < before)
                .filter_map(|(_, e)| e.min(before).checked_sub_signed(TimeDelta::nanoseconds(1)))
                .max();
            if best.is_some() {
                return best;
            }
            date = date.pred_opt()?;
        }
        None
    }

    /// The non-empty windows of `date` as UTC intervals `[start, end)`, none
    /// if the day is closed. Hand-built windows that are empty or reversed are
    /// skipped.
    fn intervals(
        &self,
        date: NaiveDate,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let windows: &[Window] = if self.is_closed_day(date) {
            &[]
        } else {
            &self.windows.days[date.weekday().num_days_from_monday() as usize]
        };
        windows
            .iter()
            .filter(|w| w.start < w.end)
            .map(move |w| {
                (
                    resolve_local(self.tz, date.and_time(w.start)),
                    resolve_local(self.tz, date.and_time(w.end)),
                )
            })
            .filter(|(s, e)| s < e)
    }
}

/// Local wall-clock time of `at` in `tz`, or `None` when it falls outside
/// chrono's range (`DateTime::naive_local` would panic there).
fn local_of(tz: Tz, at: DateTime<Utc>) -> Option<NaiveDateTime> {
    let utc = at.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
}

/// Resolve a local wall-clock time to UTC: in a DST gap, the first valid instant after the gap (same offset shift as
/// clocks do); in an overlap, the earlier instant. Never fails.
///
/// In other words: the earliest instant whose local wall-clock time is at or
/// after `local`. In Europe/Paris, 2026-03-29 02:30 (inside the 02:00→03:00
/// gap) gives 03:00 CEST = 01:00 UTC, and 2026-10-25 02:30 (which happens
/// twice) gives 02:30 CEST = 00:30 UTC. A local time outside chrono's range
/// falls back to reading it as UTC.
pub fn resolve_local(
    tz: chrono_tz::Tz,
    local: chrono::NaiveDateTime,
) -> chrono::DateTime<chrono::Utc> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(dt) => dt.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
        chrono::LocalResult::None => GapInfo::new(&local, &tz)
            .and_then(|gap| gap.end)
            .map(|end| end.with_timezone(&Utc))
            .or_else(|| {
                // Not a gap (out of range) or a gap with no known end: read
                // `local` with the offset in force at that UTC reading.
                let offset = tz.offset_from_utc_datetime(&local).fix();
                local.checked_sub_offset(offset).map(|utc| utc.and_utc())
            })
            .unwrap_or_else(|| local.and_utc()),
    }
}

fn hm(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN)
}

fn week(days: [bool; 7], windows: &[Window]) -> WeekWindows {
    let mut out = WeekWindows::default();
    for (day, on) in out.days.iter_mut().zip(days) {
        if on {
            day.extend_from_slice(windows);
        }
    }
    out
}

/// Default windows from the design: SMS/WhatsApp Mon–Sat 09:00–19:30; calls Mon–Fri 10:00–12:30 and 14:00–19:30.
pub fn default_message_windows() -> WeekWindows {
    week(
        [true, true, true, true, true, true, false],
        &[Window {
            start: hm(9, 0),
            end: hm(19, 30),
        }],
    )
}

/// Calls: Monday to Friday, 10:00–12:30 and 14:00–19:30 local time.
pub fn default_call_windows() -> WeekWindows {
    week(
        [true, true, true, true, true, false, false],
        &[
            Window {
                start: hm(10, 0),
                end: hm(12, 30),
            },
            Window {
                start: hm(14, 0),
                end: hm(19, 30),
            },
        ],
    )
}

#[cfg(test)]
mod tests {
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
        spec.merge(
            &WeekWindows::parse("sun", &hours(&["09:00-09:30", "23:30-23:45"])).expect("spec"),
        )
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
        let w =
            WeekWindows::parse("Mon-Fri", &hours(&["14:00-19:30", "10:00-12:30"])).expect("spec");
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
        assert!(
            WeekWindows::parse("mon,,fri", &h).is_err_and(|e| e.starts_with("days: empty item"))
        );
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
}
