//! The typed settings: what the rest of Rappel reads, built once by `validate` from the merged
//! raw layers (durations, time zones, send calendars, secrets).

use crate::domain::policy::{Calendars, Policy};
use crate::domain::reply::Vocabulary;
use crate::domain::types::{Channel, PhoneNumber};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The Twilio-compatible provider's settings (`[twilio]`).
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// `https://api.twilio.com` or a compatible provider's base URL.
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: SecretString,
    /// Public base URL of Rappel's webhooks (status callbacks, TwiML).
    pub public_url: String,
    pub messages_per_second: f64,
    pub max_in_flight: usize,
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub worker: WorkerSettings,
    pub horizon_days: u32,
    pub provider: ProviderKind,
    /// Set when any site uses the Twilio-compatible provider.
    pub twilio: Option<TwilioSettings>,
    pub clock: ClockSettings,
    pub templates_dir: Option<PathBuf>,
    pub policies: BTreeMap<String, Policy>,
    pub sites: BTreeMap<String, Site>,
    pub exams: BTreeMap<String, Exam>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub public_url: String,
    /// None disables the admin API.
    pub admin_token: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
}

impl DatabaseSettings {
    /// `sqlite` or `postgres`: what may be shown of the URL (it may hold a password).
    pub fn kind(&self) -> &'static str {
        use secrecy::ExposeSecret;
        if self.url.expose_secret().starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgres"
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub sweep_interval: std::time::Duration,
    pub batch_size: usize,
    pub claim_lease: Duration,
    pub outbox_interval: std::time::Duration,
    pub outbox_max_tries: u32,
    pub outbox_backoff: Duration,
    pub planner_interval: std::time::Duration,
    pub send_concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Sandbox,
    Twilio,
}

pub(super) fn parse_provider(s: &str) -> Option<ProviderKind> {
    match s {
        "sandbox" => Some(ProviderKind::Sandbox),
        "twilio" => Some(ProviderKind::Twilio),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ClockSettings {
    pub start: Option<DateTime<Utc>>,
    pub speed: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExamFamily {
    Mri,
    Ct,
    Ultrasound,
    Xray,
    Mammography,
    Nuclear,
}

impl ExamFamily {
    pub fn parse(s: &str) -> Option<ExamFamily> {
        Some(match s {
            "mri" => ExamFamily::Mri,
            "ct" => ExamFamily::Ct,
            "ultrasound" => ExamFamily::Ultrasound,
            "xray" => ExamFamily::Xray,
            "mammography" => ExamFamily::Mammography,
            "nuclear" => ExamFamily::Nuclear,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExamFamily::Mri => "mri",
            ExamFamily::Ct => "ct",
            ExamFamily::Ultrasound => "ultrasound",
            ExamFamily::Xray => "xray",
            ExamFamily::Mammography => "mammography",
            ExamFamily::Nuclear => "nuclear",
        }
    }
}

pub const DOCUMENTS: &[&str] = &[
    "prescription",
    "previous_images",
    "carte_vitale",
    "mutuelle",
    "blood_test",
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct Exam {
    pub code: String,
    #[serde(skip)]
    pub family: ExamFamily,
    pub label_fr: String,
    pub label_en: String,
    pub duration_min: u32,
    pub fasting_hours: u32,
    pub creatinine: bool,
    pub mri_safety: bool,
    pub arrive_early_min: u32,
    pub documents: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub tz: Tz,
    pub locale: String,
    pub phone: Option<PhoneNumber>,
    pub show_preparation: bool,
    pub default_policy: String,
    pub policies: BTreeMap<ExamFamily, String>,
    pub senders: BTreeMap<Channel, String>,
    pub calendars: Calendars,
    pub vocabulary: Vocabulary,
    /// Approved WhatsApp template (`ContentSid`) per locale, for conversation-opening messages.
    pub whatsapp_templates: BTreeMap<String, String>,
    /// This site's provider (else the global `provider.kind`).
    pub provider: Option<ProviderKind>,
    /// Where the site's appointments live: Rappel's own tables, or a FHIR R4 server.
    pub fhir: Option<FhirSettings>,
}

#[derive(Debug, Clone)]
pub enum FhirAuth {
    None,
    Bearer(SecretString),
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretString,
        scope: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct FhirSettings {
    pub base_url: String,
    pub auth: FhirAuth,
    /// Search page size (`_count`).
    pub page_size: u32,
    /// The site books unconfirmed appointments as `pending`: a confirmation makes them `booked`.
    pub use_pending: bool,
    /// The server frees slots itself when an appointment is cancelled.
    pub server_manages_slots: bool,
    /// `meta.tag` system recording that Rappel wrote a confirmation or cancellation.
    pub tag_system: String,
    pub timeout_ms: u64,
}

impl Site {
    pub fn policy_name_for(&self, family: Option<ExamFamily>) -> &str {
        family
            .and_then(|f| self.policies.get(&f))
            .unwrap_or(&self.default_policy)
    }
}

impl Settings {
    /// The site that sends from `to` (the number, short code or service a patient wrote to;
    /// a `whatsapp:` prefix is ignored).
    pub fn site_for_sender(&self, to: &str) -> Option<&Site> {
        let bare = |s: &str| s.trim_start_matches("whatsapp:").to_string();
        let to = bare(to);
        self.sites
            .values()
            .find(|site| site.senders.values().any(|s| bare(s) == to))
    }

    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.get(id)
    }

    pub fn policy_for(&self, site: &Site, exam_code: &str) -> &Policy {
        let family = self.exams.get(exam_code).map(|e| e.family);
        let name = site.policy_name_for(family);
        // Validation guarantees every referenced policy exists.
        &self.policies[name]
    }
}
