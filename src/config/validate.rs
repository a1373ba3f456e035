//! Validation: the merged raw layers into typed [`Settings`], once. Every error is a pair (key,
//! message); the caller names the file or variable that last set the key. Cross-field checks
//! (policies named by sites, the planner horizon against `open_days_before`, Twilio settings
//! needed by any site) are all here.

use super::raw::{
    RawAgenda, RawClock, RawConfig, RawDatabase, RawExam, RawPolicy, RawServer, RawSite, RawTwilio,
    RawWindow, RawWorker,
};
use super::settings::{
    ClockSettings, DOCUMENTS, DatabaseSettings, Exam, ExamFamily, FhirAuth, FhirSettings,
    ProviderKind, ServerSettings, Settings, Site, TwilioSettings, WorkerSettings, parse_provider,
};
use crate::domain::calendar::{self, HolidayRegion, SendCalendar, WeekWindows};
use crate::domain::policy::{
    Calendars, ContactBudget, Escalation, Policy, StepChannel, StepSpec, StepTiming,
};
use crate::domain::reply::{Intent, Vocabulary};
use crate::domain::types::{Channel, PhoneNumber, parse_identifier};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use secrecy::SecretString;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

pub(super) type VResult<T> = Result<T, (String, String)>;

/// `J-1 16:00`: the secretaries learn of a patient nobody reached by the afternoon before.
const DEFAULT_ESCALATION: Escalation = Escalation::DayBeforeAt {
    days: 1,
    at: NaiveTime::from_hms_opt(16, 0, 0).expect("16:00"),
};

fn err<T>(key: impl Into<String>, msg: impl Into<String>) -> VResult<T> {
    Err((key.into(), msg.into()))
}

/// Raw to typed, section by section in a fixed order: the first error found is the one reported.
pub(super) fn validate(raw: RawConfig) -> VResult<Settings> {
    let server = validate_server(raw.server.unwrap_or_default())?;
    let database = validate_database(raw.database.unwrap_or_default())?;
    let worker = validate_worker(raw.worker.unwrap_or_default())?;

    let horizon_days = raw.planner.unwrap_or_default().horizon_days.unwrap_or(3);
    let raw_provider = raw.provider.unwrap_or_default();
    let kind = raw_provider.kind.as_deref().unwrap_or("sandbox");
    let provider = parse_provider(kind).ok_or_else(|| {
        (
            "provider.kind".to_string(),
            format!("unknown provider '{kind}' (sandbox, twilio)"),
        )
    })?;
    let clock = validate_clock(raw.clock.unwrap_or_default())?;
    let templates_dir = raw
        .templates
        .and_then(|t| t.dir)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);

    let policies = validate_policies(raw.policies, horizon_days)?;
    let exams = validate_exams(raw.exams)?;
    let sites = validate_sites(raw.sites, &policies)?;

    let uses_twilio = provider == ProviderKind::Twilio
        || sites
            .values()
            .any(|s| s.provider == Some(ProviderKind::Twilio));
    let twilio = if uses_twilio {
        Some(validate_twilio(
            raw_provider.twilio.unwrap_or_default(),
            &server.public_url,
        )?)
    } else {
        None
    };

    Ok(Settings {
        twilio,
        server,
        database,
        worker,
        horizon_days,
        provider,
        clock,
        templates_dir,
        policies,
        sites,
        exams,
    })
}

fn validate_server(server: RawServer) -> VResult<ServerSettings> {
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
    Ok(ServerSettings {
        bind,
        public_url,
        admin_token,
    })
}

fn validate_database(db: RawDatabase) -> VResult<DatabaseSettings> {
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
    Ok(DatabaseSettings {
        url: SecretString::from(url),
        max_connections,
    })
}

fn validate_worker(w: RawWorker) -> VResult<WorkerSettings> {
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
    Ok(worker)
}

fn validate_clock(rc: RawClock) -> VResult<ClockSettings> {
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
    Ok(ClockSettings { start, speed })
}

/// Every policy, then the planner horizon against the largest `open_days_before`.
fn validate_policies(
    raw: BTreeMap<String, RawPolicy>,
    horizon_days: u32,
) -> VResult<BTreeMap<String, Policy>> {
    let mut policies = BTreeMap::new();
    for (name, p) in raw {
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
    Ok(policies)
}

fn validate_exams(raw: BTreeMap<String, RawExam>) -> VResult<BTreeMap<String, Exam>> {
    let mut exams = BTreeMap::new();
    for (code, e) in raw {
        let key = format!("exams.{code}");
        parse_identifier(&code).or_else(|m| err(&key, format!("exam code {m}")))?;
        let exam = validate_exam(&key, &code, e)?;
        exams.insert(code, exam);
    }
    Ok(exams)
}

fn validate_exam(key: &str, code: &str, e: RawExam) -> VResult<Exam> {
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
    Ok(Exam {
        code: code.to_string(),
        family,
        label_en: e.label_en.unwrap_or_else(|| e.label_fr.clone()),
        label_fr: e.label_fr,
        duration_min,
        fasting_hours: e.fasting_hours.unwrap_or(0),
        creatinine: e.creatinine.unwrap_or(false),
        mri_safety: e.mri_safety.unwrap_or(false),
        arrive_early_min: e.arrive_early_min.unwrap_or(10),
        documents,
    })
}

fn validate_sites(
    raw: BTreeMap<String, RawSite>,
    policies: &BTreeMap<String, Policy>,
) -> VResult<BTreeMap<String, Site>> {
    let mut sites = BTreeMap::new();
    for (id, s) in raw {
        let key = format!("sites.{id}");
        parse_identifier(&id).or_else(|m| err(&key, format!("site id {m}")))?;
        sites.insert(id.clone(), validate_site(&key, &id, s, policies)?);
    }
    if sites.is_empty() {
        return err("sites", "at least one site is needed");
    }
    Ok(sites)
}

/// `[provider.twilio]`, checked only when the default provider or a site uses Twilio.
fn validate_twilio(t: RawTwilio, public_url: &str) -> VResult<TwilioSettings> {
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
            "is required (secret: set it with RAPPEL__PROVIDER__TWILIO__AUTH_TOKEN)".to_string(),
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
    Ok(TwilioSettings {
        base_url,
        account_sid,
        auth_token: SecretString::from(auth_token),
        public_url: public_url.to_string(),
        messages_per_second,
        max_in_flight: t.max_in_flight.unwrap_or(32).max(1),
        timeout: std::time::Duration::from_millis(t.timeout_ms.unwrap_or(5_000).max(100)),
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
    let escalate = match p.escalate_before.as_deref() {
        None => DEFAULT_ESCALATION,
        Some(text) => match Escalation::parse(text) {
            Ok(e) => e,
            Err(m) => return err(format!("{key}.escalate_before"), m),
        },
    };
    Ok(Policy {
        name: name.to_string(),
        steps,
        escalate,
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
    let closed = closed_days(key, s.closed_days.unwrap_or_default())?;
    let calendars = site_calendars(key, &s.windows, tz, region, &closed)?;
    let default_policy = s.default_policy.unwrap_or_else(|| "standard".into());
    if !policies.contains_key(&default_policy) {
        return err(
            format!("{key}.default_policy"),
            format!("no policy named '{default_policy}'"),
        );
    }
    let site_policies = site_policies(key, s.policies, policies)?;
    let senders = site_senders(key, s.senders)?;
    let vocabulary = site_vocabulary(key, s.vocabulary)?;
    check_whatsapp_templates(key, &s.whatsapp_templates)?;
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

/// `closed_days`: dates YYYY-MM-DD on which the site sends nothing.
fn closed_days(key: &str, days: Vec<String>) -> VResult<BTreeSet<NaiveDate>> {
    let mut closed = BTreeSet::new();
    for (i, d) in days.iter().enumerate() {
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").or_else(|_| {
            err(
                format!("{key}.closed_days[{i}]"),
                format!("'{d}' is not a date YYYY-MM-DD"),
            )
        })?;
        closed.insert(date);
    }
    Ok(closed)
}

/// One send calendar per channel: the site's `windows.<channel>` blocks or the defaults, never
/// ending after [`LATEST_END`], with the site's holidays and closed days.
fn site_calendars(
    key: &str,
    windows: &BTreeMap<String, Vec<RawWindow>>,
    tz: Tz,
    region: HolidayRegion,
    closed: &BTreeSet<NaiveDate>,
) -> VResult<Calendars> {
    for ch in windows.keys() {
        if Channel::parse(ch).is_none() {
            return err(
                format!("{key}.windows.{ch}"),
                "unknown channel (sms, whatsapp, call)",
            );
        }
    }
    let calendar_for = |ch: Channel| -> VResult<SendCalendar> {
        let windows = match windows.get(ch.as_str()) {
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
    Ok(Calendars {
        tz,
        sms: calendar_for(Channel::Sms)?,
        whatsapp: calendar_for(Channel::Whatsapp)?,
        call: calendar_for(Channel::Call)?,
    })
}

/// `policies`: exam family → policy name, each naming a defined policy.
fn site_policies(
    key: &str,
    raw: BTreeMap<String, String>,
    policies: &BTreeMap<String, Policy>,
) -> VResult<BTreeMap<ExamFamily, String>> {
    let mut site_policies = BTreeMap::new();
    for (fam, pol) in raw {
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
    Ok(site_policies)
}

/// `senders`: channel → number, short code or messaging service.
fn site_senders(key: &str, raw: BTreeMap<String, String>) -> VResult<BTreeMap<Channel, String>> {
    let mut senders = BTreeMap::new();
    for (ch, sender) in raw {
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
    Ok(senders)
}

/// `vocabulary`: intent → extra phrases, checked like the classifier reads them.
fn site_vocabulary(key: &str, raw: BTreeMap<String, Vec<String>>) -> VResult<Vocabulary> {
    let mut vocabulary = Vocabulary::default();
    for (intent, phrases) in raw {
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
    Ok(vocabulary)
}

/// `whatsapp_templates`: locale → an approved template's ContentSid.
fn check_whatsapp_templates(key: &str, templates: &BTreeMap<String, String>) -> VResult<()> {
    for (locale, sid) in templates {
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
    Ok(())
}
