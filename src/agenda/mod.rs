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

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::calendar::resolve_local;
use crate::domain::types::{Channel, PhoneNumber, parse_identifier};
use crate::store::{Db, appointments};
use anyhow::Result;
use chrono::{DateTime, NaiveDateTime, Utc};
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
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppointmentInput {
    pub external_id: String,
    pub site: String,
    pub exam_code: String,
    /// `2026-11-24T14:30` (site local time) or `2026-11-24T14:30:00+01:00`.
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

impl AppointmentInput {
    pub fn check(&self, settings: &Settings) -> Result<Appointment, FieldError> {
        let fe = |field: &'static str, message: String| FieldError { field, message };
        let external_id = parse_identifier(&self.external_id).map_err(|m| fe("external_id", m))?;
        let site = settings
            .site(self.site.trim())
            .ok_or_else(|| fe("site", format!("unknown site '{}'", self.site.trim())))?;
        let exam_code = parse_identifier(&self.exam_code).map_err(|m| fe("exam_code", m))?;
        let exam = settings.exams.get(&exam_code);
        let raw = self.start.trim();
        let starts_at = match DateTime::parse_from_rfc3339(raw) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => {
                let local = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
                    .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
                    .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M"))
                    .map_err(|_| {
                        fe(
                            "start",
                            format!("'{raw}' is not YYYY-MM-DDTHH:MM (local) nor RFC 3339 with an offset"),
                        )
                    })?;
                resolve_local(site.tz, local)
            }
        };
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
            Some(p) => {
                Some(PhoneNumber::parse(p).map_err(|m| fe("phone", format!("phone number {m}")))?)
            }
        };
        let locale = match self.locale.as_deref().map(str::trim) {
            None | Some("") => site.locale.clone(),
            Some(l) => {
                let l = l.to_ascii_lowercase();
                let base = l.split(['-', '_']).next().unwrap_or("");
                if !matches!(base, "fr" | "en") {
                    return Err(fe("locale", format!("'{l}' is not supported (fr, en)")));
                }
                base.to_string()
            }
        };
        let channel = match self.channel.as_deref().map(str::trim) {
            None | Some("") => Channel::Sms,
            Some(c) => Channel::parse(c)
                .ok_or_else(|| fe("channel", format!("'{c}' is not sms, whatsapp or call")))?,
        };
        let cancelled = match self.status.as_deref().map(str::trim) {
            None | Some("") | Some("booked") => false,
            Some("cancelled") => true,
            Some(s) => return Err(fe("status", format!("'{s}' is not booked or cancelled"))),
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

/// A rejected import: every error found (up to 20), nothing written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .errors.join("\n"))]
pub struct ImportError {
    pub errors: Vec<String>,
}

const MAX_REPORTED: usize = 20;

/// Parses a CSV or JSON import; `name` is used in messages (a file name).
pub fn parse_import(
    name: &str,
    text: &str,
    settings: &Settings,
) -> Result<Vec<Appointment>, ImportError> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| ImportError {
                errors: vec![format!(
                    "{name}:{}:{}: not a JSON array of appointments: {e}",
                    e.line(),
                    e.column()
                )],
            })?;
        for (i, v) in items.into_iter().enumerate() {
            match serde_json::from_value::<AppointmentInput>(v) {
                Ok(input) => match input.check(settings) {
                    Ok(a) => out.push(a),
                    Err(fe) => errors.push(format!(
                        "{name}: item {}: field `{}`: {}",
                        i + 1,
                        fe.field,
                        fe.message
                    )),
                },
                Err(e) => errors.push(format!("{name}: item {}: {e}", i + 1)),
            }
        }
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        for record in reader.deserialize::<AppointmentInput>() {
            match record {
                Ok(input) => match input.check(settings) {
                    Ok(a) => out.push(a),
                    Err(fe) => {
                        let line = out.len() + errors.len() + 2;
                        errors.push(format!(
                            "{name}: line {line}: field `{}`: {}",
                            fe.field, fe.message
                        ))
                    }
                },
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    let field = match e.kind() {
                        csv::ErrorKind::Deserialize { err, .. } => err
                            .field()
                            .and_then(|i| reader_headers(text).get(i as usize).cloned())
                            .map(|f| format!("field `{f}`: "))
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    errors.push(format!(
                        "{name}: line {line}: {field}{}",
                        short_csv_error(&e)
                    ));
                }
            }
            if errors.len() >= MAX_REPORTED {
                break;
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for a in &out {
        if !seen.insert((a.site_id.clone(), a.external_id.clone())) {
            errors.push(format!(
                "{name}: appointment {} of site {} appears twice",
                a.external_id, a.site_id
            ));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.truncate(MAX_REPORTED);
        Err(ImportError { errors })
    }
}

fn reader_headers(text: &str) -> Vec<String> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
        .headers()
        .map(|h| h.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

fn short_csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => err.kind().to_string(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where the header has {expected_len}")
        }
        _ => e.to_string(),
    }
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ImportReport {
    pub created: usize,
    pub moved: usize,
    pub cancelled: usize,
    pub unchanged: usize,
}
