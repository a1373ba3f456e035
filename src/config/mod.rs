//! Layered configuration: raw TOML layers, then one validation into typed settings.
//!
//! Layers, later wins: `default.toml`, `exams.toml`, `sites.toml`, `<RAPPEL_ENV>.toml` from the
//! configuration directory (or the copies built into the binary when there is none), then
//! `RAPPEL__SECTION__KEY` environment variables. Each layer is checked alone against the raw
//! schema (so a typo names its file, line and key), merged, and validated once into `Settings`
//! (time zones, windows, durations, phone numbers, cross references between sites, exams and
//! policies). Every error names the file or variable and the key. Secrets are `SecretString`
//! and never printed.

use crate::domain::calendar::{self, HolidayRegion, SendCalendar, WeekWindows};
use crate::domain::policy::{Calendars, ContactBudget, Policy, StepChannel, StepSpec, StepTiming};
use crate::domain::reply::{Intent, Vocabulary};
use crate::domain::types::{Channel, PhoneNumber, parse_identifier};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const BUILTIN_DEFAULT: &str = include_str!("../../config/default.toml");
pub const BUILTIN_EXAMS: &str = include_str!("../../config/exams.toml");
pub const BUILTIN_SITES: &str = include_str!("../../config/sites.toml");

/// A configuration error: where (file or environment variable), which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: key `{}`: {}", self.source, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------------
// Raw layer: what the files say, every field optional so that any layer may set any part.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: Option<RawServer>,
    database: Option<RawDatabase>,
    worker: Option<RawWorker>,
    planner: Option<RawPlanner>,
    provider: Option<RawProvider>,
    clock: Option<RawClock>,
    templates: Option<RawTemplates>,
    #[serde(default)]
    policies: BTreeMap<String, RawPolicy>,
    #[serde(default)]
    sites: BTreeMap<String, RawSite>,
    #[serde(default)]
    exams: BTreeMap<String, RawExam>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    bind: Option<String>,
    public_url: Option<String>,
    admin_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    sweep_interval_ms: Option<u64>,
    batch_size: Option<usize>,
    claim_lease_secs: Option<u64>,
    outbox_interval_ms: Option<u64>,
    outbox_max_tries: Option<u32>,
    outbox_backoff_secs: Option<u64>,
    planner_interval_secs: Option<u64>,
    send_concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlanner {
    horizon_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    kind: Option<String>,
    twilio: Option<RawTwilio>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTwilio {
    base_url: Option<String>,
    account_sid: Option<String>,
    auth_token: Option<String>,
    messages_per_second: Option<f64>,
    max_in_flight: Option<usize>,
    timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClock {
    start: Option<String>,
    speed: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    open_days_before: Option<u32>,
    give_up_hours_before: Option<u32>,
    release_on_reschedule: Option<bool>,
    messages_per_day: Option<u32>,
    calls_per_day: Option<u32>,
    steps: Option<Vec<RawStep>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    channel: String,
    template: Option<String>,
    days_before: Option<u32>,
    after_minutes: Option<u32>,
    attempts: Option<u32>,
    spacing_minutes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: Option<String>,
    time_zone: Option<String>,
    locale: Option<String>,
    phone: Option<String>,
    holiday_region: Option<HolidayRegion>,
    closed_days: Option<Vec<String>>,
    show_preparation: Option<bool>,
    default_policy: Option<String>,
    #[serde(default)]
    policies: BTreeMap<String, String>,
    #[serde(default)]
    senders: BTreeMap<String, String>,
    #[serde(default)]
    windows: BTreeMap<String, Vec<RawWindow>>,
    #[serde(default)]
    vocabulary: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    whatsapp_templates: BTreeMap<String, String>,
    provider: Option<String>,
    agenda: Option<RawAgenda>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgenda {
    kind: Option<String>,
    base_url: Option<String>,
    auth: Option<String>,
    token: Option<String>,
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    page_size: Option<u32>,
    use_pending: Option<bool>,
    server_manages_slots: Option<bool>,
    tag_system: Option<String>,
    timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    days: String,
    hours: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExam {
    family: String,
    label_fr: String,
    label_en: Option<String>,
    duration_min: Option<u32>,
    fasting_hours: Option<u32>,
    creatinine: Option<bool>,
    mri_safety: Option<bool>,
    arrive_early_min: Option<u32>,
    documents: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Typed settings.

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

fn parse_provider(s: &str) -> Option<ProviderKind> {
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

// ---------------------------------------------------------------------------------------------
// Loading.

/// One source of configuration text: its name for errors and its content.
pub struct Layer {
    pub name: String,
    pub text: String,
}

/// The layers of a configuration directory, or the built-in ones when `dir` is None.
pub fn read_layers(dir: Option<&Path>) -> Result<Vec<Layer>, ConfigError> {
    let mut layers = Vec::new();
    match dir {
        None => {
            for (name, text) in [
                ("builtin:config/default.toml", BUILTIN_DEFAULT),
                ("builtin:config/exams.toml", BUILTIN_EXAMS),
                ("builtin:config/sites.toml", BUILTIN_SITES),
            ] {
                layers.push(Layer {
                    name: name.into(),
                    text: text.into(),
                });
            }
        }
        Some(dir) => {
            let env_file = std::env::var("RAPPEL_ENV")
                .ok()
                .filter(|e| !e.is_empty())
                .map(|e| format!("{e}.toml"));
            let mut names = vec![
                "default.toml".to_string(),
                "exams.toml".into(),
                "sites.toml".into(),
            ];
            names.extend(env_file);
            for (i, name) in names.iter().enumerate() {
                let path = dir.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(text) => layers.push(Layer {
                        name: path.display().to_string(),
                        text,
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && i > 0 => {}
                    Err(e) => {
                        return Err(ConfigError {
                            source: path.display().to_string(),
                            key: String::new(),
                            message: format!("cannot read: {e}"),
                        });
                    }
                }
            }
        }
    }
    Ok(layers)
}

/// The configuration directory to use: the one given, else `./config` when it exists, else the
/// built-in defaults (None).
pub fn config_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let p = PathBuf::from("config");
            p.join("default.toml").is_file().then_some(p)
        }
    }
}

/// Load and validate: layers, then the process environment.
pub fn load(dir: Option<&Path>) -> Result<Settings, ConfigError> {
    let layers = read_layers(dir)?;
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("RAPPEL__"))
        .collect();
    load_from(&layers, &env)
}

/// Where each key was last set, to name the file in validation errors.
#[derive(Default)]
struct Origins(HashMap<String, String>);

impl Origins {
    fn record(&mut self, prefix: &str, value: &toml::Value, source: &str) {
        self.0.insert(prefix.to_string(), source.to_string());
        if let toml::Value::Table(t) = value {
            for (k, v) in t {
                self.record(&join(prefix, k), v, source);
            }
        }
    }

    fn of(&self, key: &str) -> String {
        let mut k = key.to_string();
        loop {
            if let Some(s) = self.0.get(&k) {
                return s.clone();
            }
            match k.rfind(['.', '[']) {
                Some(i) => k.truncate(i),
                None => return "configuration".into(),
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn check_raw(value: toml::Value, source: &str) -> Result<RawConfig, ConfigError> {
    serde_path_to_error::deserialize::<_, RawConfig>(value).map_err(|e| ConfigError {
        source: source.to_string(),
        key: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

pub fn load_from(layers: &[Layer], env: &[(String, String)]) -> Result<Settings, ConfigError> {
    let mut merged = toml::Table::new();
    let mut origins = Origins::default();
    for layer in layers {
        let table: toml::Table = toml::from_str(&layer.text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| line_col(&layer.text, s.start))
                .unwrap_or((0, 0));
            ConfigError {
                source: format!("{}:{line}:{col}", layer.name),
                key: String::new(),
                message: e.message().to_string(),
            }
        })?;
        check_raw(toml::Value::Table(table.clone()), &layer.name)?;
        origins.record("", &toml::Value::Table(table.clone()), &layer.name);
        merge(&mut merged, table);
    }
    let mut env = env.to_vec();
    env.sort();
    for (name, raw) in &env {
        let path: Vec<String> = name
            .trim_start_matches("RAPPEL__")
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(ConfigError {
                source: format!("environment variable {name}"),
                key: String::new(),
                message: "expected RAPPEL__SECTION__KEY".into(),
            });
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut single = toml::Table::new();
        let mut cursor = &mut single;
        for p in &path[..path.len() - 1] {
            cursor = cursor
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("just inserted a table");
        }
        cursor.insert(path[path.len() - 1].clone(), value);
        let source = format!("environment variable {name}");
        check_raw(toml::Value::Table(single.clone()), &source)?;
        origins.record("", &toml::Value::Table(single.clone()), &source);
        merge(&mut merged, single);
    }
    let raw = check_raw(toml::Value::Table(merged), "configuration")?;
    validate(raw).map_err(|(key, message)| ConfigError {
        source: origins.of(&key),
        key,
        message,
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

type VResult<T> = Result<T, (String, String)>;

fn err<T>(key: impl Into<String>, msg: impl Into<String>) -> VResult<T> {
    Err((key.into(), msg.into()))
}

fn validate(raw: RawConfig) -> VResult<Settings> {
    let server = raw.server.unwrap_or_default();
    let bind = server
        .bind
        .unwrap_or_else(|| "127.0.0.1:8080".into())
        .parse::<SocketAddr>()
        .or_else(|e| err("server.bind", format!("not an address:port ({e})")))?;
    let public_url = server
        .public_url
        .unwrap_or_else(|| format!("http://{bind}"));
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        return err("server.public_url", "must start with http:// or https://");
    }
    let admin_token = server
        .admin_token
        .filter(|t| !t.is_empty())
        .map(|t| {
            if t.len() < 16 {
                err(
                    "server.admin_token",
                    "must be at least 16 characters (or empty to disable the admin API)",
                )
            } else {
                Ok(SecretString::from(t))
            }
        })
        .transpose()?;

    let db = raw.database.unwrap_or_default();
    let url = db.url.unwrap_or_else(|| "sqlite://rappel.db".into());
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres:")
        || url.starts_with("postgresql:"))
    {
        return err(
            "database.url",
            "must start with sqlite: or postgres: (value not shown: it may hold a password)",
        );
    }
    let max_connections = db.max_connections.unwrap_or(8);
    if max_connections == 0 {
        return err("database.max_connections", "must be at least 1");
    }

    let w = raw.worker.unwrap_or_default();
    let positive = |key: &str, v: Option<u64>, default: u64| -> VResult<u64> {
        match v.unwrap_or(default) {
            0 => err(format!("worker.{key}"), "must be greater than 0"),
            n => Ok(n),
        }
    };
    let worker = WorkerSettings {
        sweep_interval: std::time::Duration::from_millis(positive(
            "sweep_interval_ms",
            w.sweep_interval_ms,
            500,
        )?),
        batch_size: positive("batch_size", w.batch_size.map(|v| v as u64), 500)? as usize,
        claim_lease: Duration::seconds(
            positive("claim_lease_secs", w.claim_lease_secs, 120)? as i64
        ),
        outbox_interval: std::time::Duration::from_millis(positive(
            "outbox_interval_ms",
            w.outbox_interval_ms,
            1000,
        )?),
        outbox_max_tries: positive("outbox_max_tries", w.outbox_max_tries.map(u64::from), 10)?
            as u32,
        outbox_backoff: Duration::seconds(positive(
            "outbox_backoff_secs",
            w.outbox_backoff_secs,
            30,
        )? as i64),
        planner_interval: std::time::Duration::from_secs(positive(
            "planner_interval_secs",
            w.planner_interval_secs,
            60,
        )?),
        send_concurrency: positive("send_concurrency", w.send_concurrency.map(|v| v as u64), 64)?
            as usize,
    };
    let planner_secs = worker.planner_interval.as_secs();
    if !((planner_secs <= 60 && 60 % planner_secs == 0)
        || (planner_secs % 60 == 0 && 3600 % planner_secs == 0))
    {
        return err(
            "worker.planner_interval_secs",
            "must divide a minute (1, 2, 5, 10, 15, 30, 60) or be whole minutes dividing an hour (120, 300, 600, …)",
        );
    }
    if worker.batch_size > 5_000 {
        return err("worker.batch_size", "must be at most 5000");
    }

    let horizon_days = raw.planner.unwrap_or_default().horizon_days.unwrap_or(3);
    let raw_provider = raw.provider.unwrap_or_default();
    let kind = raw_provider.kind.as_deref().unwrap_or("sandbox");
    let provider = parse_provider(kind).ok_or_else(|| {
        (
            "provider.kind".to_string(),
            format!("unknown provider '{kind}' (sandbox, twilio)"),
        )
    })?;
    let raw_twilio = raw_provider.twilio;
    let rc = raw.clock.unwrap_or_default();
    let start = match rc.start.as_deref().unwrap_or("") {
        "" => None,
        s => Some(
            DateTime::parse_from_rfc3339(s)
                .or_else(|e| err("clock.start", format!("not an RFC 3339 instant ({e})")))?
                .with_timezone(&Utc),
        ),
    };
    let speed = rc.speed.unwrap_or(1.0);
    if !(speed.is_finite() && speed > 0.0 && speed <= 1_000_000.0) {
        return err("clock.speed", "must be a number in (0, 1000000]");
    }
    let templates_dir = raw
        .templates
        .and_then(|t| t.dir)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);

    let mut policies = BTreeMap::new();
    for (name, p) in raw.policies {
        let key = format!("policies.{name}");
        policies.insert(name.clone(), validate_policy(&key, &name, p)?);
    }
    if policies.is_empty() {
        return err("policies", "at least one policy is needed");
    }
    let max_open = policies
        .values()
        .map(|p| p.open_days_before)
        .max()
        .unwrap_or(0);
    if horizon_days < max_open {
        return err(
            "planner.horizon_days",
            format!("must cover the largest open_days_before ({max_open})"),
        );
    }

    let mut exams = BTreeMap::new();
    for (code, e) in raw.exams {
        let key = format!("exams.{code}");
        parse_identifier(&code).or_else(|m| err(&key, format!("exam code {m}")))?;
        let family = ExamFamily::parse(&e.family).ok_or_else(|| {
            (
                format!("{key}.family"),
                format!(
                    "unknown family '{}' (mri, ct, ultrasound, xray, mammography, nuclear)",
                    e.family
                ),
            )
        })?;
        let documents = e.documents.unwrap_or_default();
        for (i, d) in documents.iter().enumerate() {
            if !DOCUMENTS.contains(&d.as_str()) {
                return err(
                    format!("{key}.documents[{i}]"),
                    format!("unknown document '{d}' ({})", DOCUMENTS.join(", ")),
                );
            }
        }
        let duration_min = e.duration_min.unwrap_or(15);
        if duration_min == 0 || duration_min > 600 {
            return err(format!("{key}.duration_min"), "must be 1 to 600 minutes");
        }
        exams.insert(
            code.clone(),
            Exam {
                code: code.clone(),
                family,
                label_en: e.label_en.unwrap_or_else(|| e.label_fr.clone()),
                label_fr: e.label_fr,
                duration_min,
                fasting_hours: e.fasting_hours.unwrap_or(0),
                creatinine: e.creatinine.unwrap_or(false),
                mri_safety: e.mri_safety.unwrap_or(false),
                arrive_early_min: e.arrive_early_min.unwrap_or(10),
                documents,
            },
        );
    }

    let mut sites = BTreeMap::new();
    for (id, s) in raw.sites {
        let key = format!("sites.{id}");
        parse_identifier(&id).or_else(|m| err(&key, format!("site id {m}")))?;
        sites.insert(id.clone(), validate_site(&key, &id, s, &policies)?);
    }
    if sites.is_empty() {
        return err("sites", "at least one site is needed");
    }

    let uses_twilio = provider == ProviderKind::Twilio
        || sites
            .values()
            .any(|s| s.provider == Some(ProviderKind::Twilio));
    let twilio = if uses_twilio {
        let t = raw_twilio.unwrap_or_default();
        let account_sid = t.account_sid.unwrap_or_default();
        if !(account_sid.starts_with("AC") && account_sid.len() == 34) {
            return err(
                "provider.twilio.account_sid",
                "must be an account SID (AC followed by 32 hex digits)",
            );
        }
        let auth_token = t.auth_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            (
                "provider.twilio.auth_token".to_string(),
                "is required (secret: set it with RAPPEL__PROVIDER__TWILIO__AUTH_TOKEN)"
                    .to_string(),
            )
        })?;
        let base_url = t
            .base_url
            .unwrap_or_else(|| "https://api.twilio.com".into());
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return err(
                "provider.twilio.base_url",
                "must start with https:// (or http:// for a local test peer)",
            );
        }
        let messages_per_second = t.messages_per_second.unwrap_or(10.0);
        if !(messages_per_second > 0.0 && messages_per_second <= 10_000.0) {
            return err(
                "provider.twilio.messages_per_second",
                "must be in (0, 10000]",
            );
        }
        Some(TwilioSettings {
            base_url,
            account_sid,
            auth_token: SecretString::from(auth_token),
            public_url: public_url.clone(),
            messages_per_second,
            max_in_flight: t.max_in_flight.unwrap_or(32).max(1),
            timeout: std::time::Duration::from_millis(t.timeout_ms.unwrap_or(5_000).max(100)),
        })
    } else {
        None
    };

    Ok(Settings {
        twilio,
        server: ServerSettings {
            bind,
            public_url,
            admin_token,
        },
        database: DatabaseSettings {
            url: SecretString::from(url),
            max_connections,
        },
        worker,
        horizon_days,
        provider,
        clock: ClockSettings { start, speed },
        templates_dir,
        policies,
        sites,
        exams,
    })
}

fn validate_policy(key: &str, name: &str, p: RawPolicy) -> VResult<Policy> {
    let raw_steps = p.steps.unwrap_or_default();
    if raw_steps.is_empty() {
        return err(format!("{key}.steps"), "a policy needs at least one step");
    }
    let mut steps = Vec::new();
    for (i, s) in raw_steps.into_iter().enumerate() {
        let sk = format!("{key}.steps[{i}]");
        let channel = StepChannel::parse(&s.channel).ok_or_else(|| {
            (
                format!("{sk}.channel"),
                format!(
                    "unknown channel '{}' (message, sms, whatsapp, call)",
                    s.channel
                ),
            )
        })?;
        let timing = match (s.days_before, s.after_minutes) {
            (Some(d), None) => {
                if i > 0 {
                    return err(
                        format!("{sk}.days_before"),
                        "only the first step may use days_before; later ones use after_minutes",
                    );
                }
                StepTiming::DaysBefore(d)
            }
            (None, Some(m)) => StepTiming::After(Duration::minutes(i64::from(m))),
            (None, None) if i == 0 => StepTiming::DaysBefore(p.open_days_before.unwrap_or(2)),
            _ => {
                return err(
                    &sk,
                    "give exactly one of days_before (first step) or after_minutes",
                );
            }
        };
        let attempts = s.attempts.unwrap_or(1);
        if attempts == 0 || attempts > 10 {
            return err(format!("{sk}.attempts"), "must be 1 to 10");
        }
        let template = s.template.unwrap_or_else(|| {
            if channel == StepChannel::Call {
                "call".into()
            } else {
                "request".into()
            }
        });
        steps.push(StepSpec {
            channel,
            template,
            timing,
            attempts,
            spacing: Duration::minutes(i64::from(s.spacing_minutes.unwrap_or(180))),
        });
    }
    let open_days_before = p.open_days_before.unwrap_or(2);
    if let StepTiming::DaysBefore(d) = steps[0].timing
        && d > open_days_before
    {
        return err(
            format!("{key}.steps[0].days_before"),
            format!("is {d} but the campaign only opens {open_days_before} days before"),
        );
    }
    Ok(Policy {
        name: name.to_string(),
        steps,
        give_up_before: Duration::hours(i64::from(p.give_up_hours_before.unwrap_or(2))),
        open_days_before,
        budget: ContactBudget {
            messages_per_day: p.messages_per_day.unwrap_or(2),
            calls_per_day: p.calls_per_day.unwrap_or(3),
        },
        release_on_reschedule: p.release_on_reschedule.unwrap_or(false),
    })
}

fn validate_agenda(key: &str, a: RawAgenda) -> VResult<Option<FhirSettings>> {
    match a.kind.as_deref().unwrap_or("builtin") {
        "builtin" => return Ok(None),
        "fhir" => {}
        other => {
            return err(
                format!("{key}.kind"),
                format!("unknown agenda '{other}' (builtin, fhir)"),
            );
        }
    }
    let base_url = a
        .base_url
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .ok_or_else(|| {
            (
                format!("{key}.base_url"),
                "an http(s) URL of the FHIR R4 base is required".to_string(),
            )
        })?;
    let required = |v: Option<String>, k: &str| {
        v.filter(|x| !x.is_empty()).ok_or_else(|| {
            (
                format!("{key}.{k}"),
                "is required for this auth".to_string(),
            )
        })
    };
    let auth = match a.auth.as_deref().unwrap_or("none") {
        "none" => FhirAuth::None,
        "bearer" => FhirAuth::Bearer(SecretString::from(required(a.token, "token")?)),
        "client_credentials" => FhirAuth::ClientCredentials {
            token_url: required(a.token_url, "token_url")?,
            client_id: required(a.client_id, "client_id")?,
            client_secret: SecretString::from(required(a.client_secret, "client_secret")?),
            scope: a.scope,
        },
        other => {
            return err(
                format!("{key}.auth"),
                format!("unknown auth '{other}' (none, bearer, client_credentials)"),
            );
        }
    };
    let page_size = a.page_size.unwrap_or(100);
    if !(1..=1000).contains(&page_size) {
        return err(format!("{key}.page_size"), "must be 1 to 1000");
    }
    Ok(Some(FhirSettings {
        base_url,
        auth,
        page_size,
        use_pending: a.use_pending.unwrap_or(false),
        server_manages_slots: a.server_manages_slots.unwrap_or(false),
        tag_system: a
            .tag_system
            .unwrap_or_else(|| "https://rappel.example/fhir/written-by".into()),
        timeout_ms: a.timeout_ms.unwrap_or(10_000).max(100),
    }))
}

/// Latest hour any window may end: "never after 20:00".
const LATEST_END: (u32, u32) = (20, 0);

fn validate_site(
    key: &str,
    id: &str,
    s: RawSite,
    policies: &BTreeMap<String, Policy>,
) -> VResult<Site> {
    let name = s
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| (format!("{key}.name"), "is required".to_string()))?;
    let tz_name = s.time_zone.unwrap_or_else(|| "Europe/Paris".into());
    let tz: Tz = tz_name.parse().or_else(|_| {
        err(
            format!("{key}.time_zone"),
            format!("unknown time zone '{tz_name}' (IANA name such as Europe/Paris)"),
        )
    })?;
    let locale = s.locale.unwrap_or_else(|| "fr".into());
    if !matches!(locale.as_str(), "fr" | "en") {
        return err(format!("{key}.locale"), "must be fr or en");
    }
    let phone = s
        .phone
        .map(|p| PhoneNumber::parse(&p))
        .transpose()
        .or_else(|m| err(format!("{key}.phone"), format!("phone number {m}")))?;
    let region = s
        .holiday_region
        .unwrap_or_else(|| HolidayRegion::for_time_zone(tz));
    let mut closed = BTreeSet::new();
    for (i, d) in s.closed_days.unwrap_or_default().iter().enumerate() {
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").or_else(|_| {
            err(
                format!("{key}.closed_days[{i}]"),
                format!("'{d}' is not a date YYYY-MM-DD"),
            )
        })?;
        closed.insert(date);
    }
    for ch in s.windows.keys() {
        if Channel::parse(ch).is_none() {
            return err(
                format!("{key}.windows.{ch}"),
                "unknown channel (sms, whatsapp, call)",
            );
        }
    }
    let calendar_for = |ch: Channel| -> VResult<SendCalendar> {
        let windows = match s.windows.get(ch.as_str()) {
            None => match ch {
                Channel::Call => calendar::default_call_windows(),
                _ => calendar::default_message_windows(),
            },
            Some(blocks) => {
                let mut w = WeekWindows::default();
                for (i, b) in blocks.iter().enumerate() {
                    let wk = format!("{key}.windows.{}[{i}]", ch.as_str());
                    let parsed =
                        WeekWindows::parse(&b.days, &b.hours).or_else(|m| err(&wk, m.clone()))?;
                    w.merge(&parsed).or_else(|m| err(&wk, m))?;
                }
                w
            }
        };
        let latest = NaiveTime::from_hms_opt(LATEST_END.0, LATEST_END.1, 0).expect("valid time");
        if windows.latest_end().is_some_and(|t| t > latest) {
            return err(
                format!("{key}.windows.{}", ch.as_str()),
                "a window ends after 20:00: patients are never contacted later",
            );
        }
        let mut cal = SendCalendar::new(tz, windows);
        cal.region = region;
        cal.extra_closed = closed.clone();
        Ok(cal)
    };
    let calendars = Calendars {
        tz,
        sms: calendar_for(Channel::Sms)?,
        whatsapp: calendar_for(Channel::Whatsapp)?,
        call: calendar_for(Channel::Call)?,
    };
    let default_policy = s.default_policy.unwrap_or_else(|| "standard".into());
    if !policies.contains_key(&default_policy) {
        return err(
            format!("{key}.default_policy"),
            format!("no policy named '{default_policy}'"),
        );
    }
    let mut site_policies = BTreeMap::new();
    for (fam, pol) in s.policies {
        let family = ExamFamily::parse(&fam).ok_or_else(|| {
            (
                format!("{key}.policies.{fam}"),
                "unknown exam family (mri, ct, ultrasound, xray, mammography, nuclear)".to_string(),
            )
        })?;
        if !policies.contains_key(&pol) {
            return err(
                format!("{key}.policies.{fam}"),
                format!("no policy named '{pol}'"),
            );
        }
        site_policies.insert(family, pol);
    }
    let mut senders = BTreeMap::new();
    for (ch, sender) in s.senders {
        let channel = Channel::parse(&ch).ok_or_else(|| {
            (
                format!("{key}.senders.{ch}"),
                "unknown channel (sms, whatsapp, call)".to_string(),
            )
        })?;
        if sender.trim().is_empty() {
            return err(format!("{key}.senders.{ch}"), "is empty");
        }
        if channel == Channel::Sms && sender.chars().any(|c| c.is_ascii_alphabetic()) {
            // An alphanumeric sender cannot receive the patient's reply.
            if !sender.starts_with("MG") {
                return err(
                    format!("{key}.senders.sms"),
                    "an alphanumeric sender cannot receive replies: use a number, a short code or a messaging service (MG…)",
                );
            }
        }
        senders.insert(channel, sender);
    }
    let mut vocabulary = Vocabulary::default();
    for (intent, phrases) in s.vocabulary {
        let i = Intent::parse(&intent).ok_or_else(|| {
            (
                format!("{key}.vocabulary.{intent}"),
                "unknown intent (confirm, cancel, reschedule, question, opt_out, urgent, wrong_person, unclear)"
                    .to_string(),
            )
        })?;
        vocabulary.extra.insert(i, phrases);
    }
    vocabulary
        .validate()
        .or_else(|m| err(format!("{key}.vocabulary"), m))?;
    for (locale, sid) in &s.whatsapp_templates {
        if !matches!(locale.as_str(), "fr" | "en") {
            return err(
                format!("{key}.whatsapp_templates.{locale}"),
                "locale must be fr or en",
            );
        }
        if !(sid.starts_with("HX") && sid.len() == 34) {
            return err(
                format!("{key}.whatsapp_templates.{locale}"),
                "must be an approved template's ContentSid (HX followed by 32 hex digits)",
            );
        }
    }
    let provider = s
        .provider
        .as_deref()
        .map(|p| {
            parse_provider(p).ok_or_else(|| {
                (
                    format!("{key}.provider"),
                    format!("unknown provider '{p}' (sandbox, twilio)"),
                )
            })
        })
        .transpose()?;
    let fhir = match s.agenda {
        None => None,
        Some(a) => validate_agenda(&format!("{key}.agenda"), a)?,
    };
    Ok(Site {
        id: id.to_string(),
        fhir,
        whatsapp_templates: s.whatsapp_templates,
        provider,
        name,
        tz,
        locale,
        phone,
        show_preparation: s.show_preparation.unwrap_or(false),
        default_policy,
        policies: site_policies,
        senders,
        calendars,
        vocabulary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Vec<Layer> {
        read_layers(None).unwrap()
    }

    #[test]
    fn the_builtin_configuration_is_valid() {
        let s = load_from(&builtin(), &[]).unwrap();
        assert!(s.sites.contains_key("paris-nord"));
        assert_eq!(s.policies["standard"].steps.len(), 3);
        assert_eq!(s.exams["IRM-CER"].family, ExamFamily::Mri);
    }

    #[test]
    fn an_environment_variable_overrides_a_file_key() {
        let env = [("RAPPEL__WORKER__BATCH_SIZE".to_string(), "42".to_string())];
        let s = load_from(&builtin(), &env).unwrap();
        assert_eq!(s.worker.batch_size, 42);
    }

    #[test]
    fn a_bad_environment_value_names_the_variable_and_key() {
        let env = [("RAPPEL__WORKER__BATCH_SIZE".to_string(), "many".to_string())];
        let e = load_from(&builtin(), &env).unwrap_err();
        assert_eq!(e.source, "environment variable RAPPEL__WORKER__BATCH_SIZE");
        assert!(e.key.contains("worker.batch_size"), "{e}");
    }

    #[test]
    fn an_unknown_key_names_the_file_and_the_key() {
        let mut layers = builtin();
        layers.push(Layer {
            name: "config/prod.toml".into(),
            text: "[worker]\nbatch_sise = 3\n".into(),
        });
        let e = load_from(&layers, &[]).unwrap_err();
        assert_eq!(e.source, "config/prod.toml");
        assert!(e.message.contains("batch_sise"), "{e}");
    }

    #[test]
    fn a_bad_time_zone_names_the_site_key_and_its_file() {
        let mut layers = builtin();
        layers.push(Layer {
            name: "config/prod.toml".into(),
            text: "[sites.paris-nord]\ntime_zone = \"Europe/Pariss\"\n".into(),
        });
        let e = load_from(&layers, &[]).unwrap_err();
        assert_eq!(e.source, "config/prod.toml");
        assert_eq!(e.key, "sites.paris-nord.time_zone");
    }

    #[test]
    fn a_window_after_eight_pm_is_refused() {
        let mut layers = builtin();
        layers.push(Layer {
            name: "config/prod.toml".into(),
            text:
                "[[sites.paris-nord.windows.sms]]\ndays = \"mon-fri\"\nhours = [\"18:00-21:00\"]\n"
                    .into(),
        });
        let e = load_from(&layers, &[]).unwrap_err();
        assert_eq!(e.key, "sites.paris-nord.windows.sms");
    }

    #[test]
    fn a_toml_syntax_error_gives_the_line() {
        let layers = vec![Layer {
            name: "config/default.toml".into(),
            text: "[server]\nbind = \n".into(),
        }];
        let e = load_from(&layers, &[]).unwrap_err();
        assert!(e.source.starts_with("config/default.toml:2:"), "{e}");
    }

    #[test]
    fn a_policy_reference_to_nothing_is_refused() {
        let mut layers = builtin();
        layers.push(Layer {
            name: "config/prod.toml".into(),
            text: "[sites.paris-nord.policies]\nct = \"turbo\"\n".into(),
        });
        let e = load_from(&layers, &[]).unwrap_err();
        assert_eq!(e.key, "sites.paris-nord.policies.ct");
    }
}
