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
mod tests;
