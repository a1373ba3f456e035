//! The agenda: where appointments come from and where outcomes are written back.
//!
//! The built-in agenda is Rappel's own `appointments` table, fed by `rappel import` (CSV or
//! JSON) or the admin API. An import is all or nothing: every row is parsed and checked first,
//! and the first bad rows are reported with their line and field while nothing is written.
//! Re-importing a moved appointment (new start, exam or phone) bumps its version, so its old
//! campaign is superseded and a new one opens; a row marked cancelled closes the campaign as
//! `cancelled_upstream`. A status set by the patient through Rappel (confirmed, cancelled) is
//! not undone by re-importing the same unchanged row.

pub mod fhir;
pub mod import;

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::calendar::resolve_local;
use crate::domain::text::{self, quote};
use crate::domain::types::{Channel, PhoneNumber, parse_identifier};
use crate::store::{Db, appointments};
use anyhow::Result;
use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use futures::future::BoxFuture;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgendaError {
    /// The appointment changed so that the intent no longer applies (moved, cancelled).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("appointment not found")]
    NotFound,
    /// Try again later (server down, timeout).
    #[error("agenda unavailable: {0}")]
    Unavailable(String),
}

/// What an agenda connector can do, for `check-config` and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// Appointments are read from the connector (else imported into Rappel's tables).
    pub reads_window: bool,
    pub confirms: bool,
    pub releases_slots: bool,
    /// Writes are conditional on the version read (`If-Match`).
    pub versioned_writes: bool,
}

/// Write-backs the outbox performs. Implementations must be idempotent.
pub trait Agenda: Send + Sync {
    fn capabilities(&self) -> Capabilities;
    fn confirm(&self, appointment_id: i64, version: i64) -> BoxFuture<'_, Result<(), AgendaError>>;
    fn release(&self, appointment_id: i64, version: i64) -> BoxFuture<'_, Result<(), AgendaError>>;
}

pub struct BuiltinAgenda {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl BuiltinAgenda {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> BuiltinAgenda {
        BuiltinAgenda { db, clock }
    }

    async fn set_status(&self, id: i64, version: i64, to: &str) -> Result<(), AgendaError> {
        let unavailable = |e: sqlx::Error| AgendaError::Unavailable(e.to_string());
        let (status, current) = appointments::status_of(&self.db, id)
            .await
            .map_err(unavailable)?
            .ok_or(AgendaError::NotFound)?;
        if current != version {
            return Err(AgendaError::Conflict(format!(
                "appointment moved (version {version} → {current})"
            )));
        }
        if status == to {
            return Ok(());
        }
        if status == "cancelled" {
            return Err(AgendaError::Conflict(
                "appointment already cancelled".into(),
            ));
        }
        let now = self.clock.now().timestamp();
        appointments::set_status(&self.db, id, version, to, now)
            .await
            .map_err(unavailable)
    }
}

impl Agenda for BuiltinAgenda {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reads_window: false,
            confirms: true,
            releases_slots: true,
            versioned_writes: true,
        }
    }

    fn confirm(&self, appointment_id: i64, version: i64) -> BoxFuture<'_, Result<(), AgendaError>> {
        Box::pin(self.set_status(appointment_id, version, "confirmed"))
    }

    fn release(&self, appointment_id: i64, version: i64) -> BoxFuture<'_, Result<(), AgendaError>> {
        Box::pin(self.set_status(appointment_id, version, "cancelled"))
    }
}

/// One appointment as an import file or the admin API gives it. Column names of the CSV.
///
/// Unknown fields are not refused here: an import file's extra columns are ignored with a
/// warning naming them ([`import`]), while the admin API refuses unknown keys itself (a typo in
/// a program is a bug to report, an extra column in a spreadsheet is not).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct AppointmentInput {
    pub external_id: String,
    pub site: String,
    pub exam_code: String,
    /// `2026-11-24T14:30` (site local time), `24/11/2026 14:30` (site local time, French sites)
    /// or `2026-11-24T14:30:00+01:00`.
    pub start: String,
    #[serde(default)]
    pub duration_min: Option<u32>,
    pub patient_name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    /// `booked` (default) or `cancelled` (the centre cancelled it).
    #[serde(default)]
    pub status: Option<String>,
}

pub use crate::domain::types::Appointment;

/// A bad field of an input row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Appointments are planned days ahead, so a start outside these years is a typo (`20266`, a
/// stray sign: `-2026`, `+12026`), refused rather than planned centuries away.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2200;

/// Local date-times an import may use; the `DD/MM/YYYY` ones (what a French spreadsheet shows)
/// only for sites whose locale is `fr`, where `03/04/2026` can only mean 3 April.
const ISO_LOCAL: [&str; 4] = [
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
];
const FRENCH_LOCAL: [&str; 2] = ["%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S"];

impl AppointmentInput {
    /// Every field, in the order of a CSV header.
    pub const FIELDS: [&'static str; 10] = [
        "external_id",
        "site",
        "exam_code",
        "start",
        "duration_min",
        "patient_name",
        "phone",
        "locale",
        "channel",
        "status",
    ];
    /// The fields a row cannot do without.
    pub const REQUIRED: [&'static str; 5] =
        ["external_id", "site", "exam_code", "start", "patient_name"];

    fn texts(&self) -> [(&'static str, Option<&str>); 9] {
        [
            ("external_id", Some(&self.external_id)),
            ("site", Some(&self.site)),
            ("exam_code", Some(&self.exam_code)),
            ("start", Some(&self.start)),
            ("patient_name", Some(&self.patient_name)),
            ("phone", self.phone.as_deref()),
            ("locale", self.locale.as_deref()),
            ("channel", self.channel.as_deref()),
            ("status", self.status.as_deref()),
        ]
    }

    pub fn check(&self, settings: &Settings) -> Result<Appointment, FieldError> {
        let fe = |field: &'static str, message: String| FieldError { field, message };
        // Before anything else: no control character reaches a message, a log or the database.
        for (field, value) in self.texts() {
            if let Some(found) = value.and_then(text::find_control) {
                return Err(fe(
                    field,
                    format!("contains {}", text::describe_control(found)),
                ));
            }
        }
        let external_id = parse_identifier(&self.external_id).map_err(|m| fe("external_id", m))?;
        let site = settings
            .site(self.site.trim())
            .ok_or_else(|| fe("site", format!("unknown site {}", quote(self.site.trim()))))?;
        let exam_code = parse_identifier(&self.exam_code).map_err(|m| fe("exam_code", m))?;
        let exam = settings.exams.get(&exam_code);
        let starts_at = parse_start(self.start.trim(), site.tz, site.locale == "fr")
            .map_err(|m| fe("start", m))?;
        let duration_min = self
            .duration_min
            .or(exam.map(|e| e.duration_min))
            .unwrap_or(15);
        if duration_min == 0 || duration_min > 600 {
            return Err(fe("duration_min", "must be 1 to 600 minutes".into()));
        }
        let patient_name = self.patient_name.trim().to_string();
        if patient_name.is_empty() || patient_name.chars().count() > 200 {
            return Err(fe("patient_name", "must be 1 to 200 characters".into()));
        }
        let phone = match self.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(PhoneNumber::parse(p).map_err(|m| fe("phone", phone_error(p, m)))?),
        };
        let locale = match self.locale.as_deref().map(str::trim) {
            None | Some("") => site.locale.clone(),
            Some(l) => {
                let l = l.to_ascii_lowercase();
                let base = l.split(['-', '_']).next().unwrap_or("");
                if !matches!(base, "fr" | "en") {
                    return Err(fe(
                        "locale",
                        format!("{} is not supported (fr, en)", quote(&l)),
                    ));
                }
                base.to_string()
            }
        };
        let channel = match self.channel.as_deref().map(str::trim) {
            None | Some("") => Channel::Sms,
            Some(c) => Channel::parse(c).ok_or_else(|| {
                fe(
                    "channel",
                    format!("{} is not sms, whatsapp or call", quote(c)),
                )
            })?,
        };
        let cancelled = match self.status.as_deref().map(str::trim) {
            None | Some("") | Some("booked") => false,
            Some("cancelled") => true,
            Some(s) => {
                return Err(fe(
                    "status",
                    format!("{} is not booked or cancelled", quote(s)),
                ));
            }
        };
        Ok(Appointment {
            external_id,
            site_id: site.id.clone(),
            exam_code,
            starts_at,
            duration_min,
            patient_name,
            phone,
            locale,
            channel,
            cancelled,
            source: None,
        })
    }
}

/// The start of an appointment: RFC 3339 with an offset, or a local time of the site (ISO, or
/// `DD/MM/YYYY HH:MM` when `french`), its year in [`YEARS`].
fn parse_start(raw: &str, tz: chrono_tz::Tz, french: bool) -> Result<DateTime<Utc>, String> {
    let year_check = |year: i32| {
        if YEARS.contains(&year) {
            Ok(())
        } else {
            Err(format!(
                "year {year} of {} is outside {}–{}",
                quote(raw),
                YEARS.start(),
                YEARS.end()
            ))
        }
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        year_check(t.year())?;
        return Ok(t.with_timezone(&Utc));
    }
    let french_formats: &[&str] = if french { &FRENCH_LOCAL } else { &[] };
    let local = ISO_LOCAL
        .iter()
        .chain(french_formats)
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
        .ok_or_else(|| {
            let french = if french { ", DD/MM/YYYY HH:MM" } else { "" };
            format!(
                "{} is not YYYY-MM-DDTHH:MM{french} (site time) nor RFC 3339 with an offset",
                quote(raw)
            )
        })?;
    year_check(local.year())?;
    Ok(resolve_local(tz, local))
}

/// A phone number's error, with the likely cause when a spreadsheet stored `06…` as a number and
/// dropped its leading zero (nine digits starting with 6 or 7).
fn phone_error(raw: &str, message: String) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 9 && (digits.starts_with('6') || digits.starts_with('7')) {
        format!("phone number {message} (nine digits: did a spreadsheet drop its leading 0?)")
    } else {
        format!("phone number {message}")
    }
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ImportReport {
    pub created: usize,
    pub moved: usize,
    pub cancelled: usize,
    pub unchanged: usize,
}
