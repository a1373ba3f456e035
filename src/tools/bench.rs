//! `rappel bench`: seeds N appointments and measures, on this machine, end-to-end dispatch
//! (plan → render → provider → ledger) and reply handling (reply in → intent → agenda
//! write-back), then prints a final JSON line: `appointments`, `sends_per_sec`, `reply_p50_ms`,
//! `reply_p99_ms`, `due_to_sent_p50_ms`/`p99`/`max` (the worker role on a clock running at the
//! real pace), `classify_per_sec` (the reply classifier on one thread), `peak_rss_mb`, `backend`. Figures are reported, never asserted in tests.

use super::{layer, outln, scratch_dir, settings_with};
use crate::agenda::{Appointment, AppointmentInput};
use crate::app;
use crate::clock::{Clock, ManualClock, SimulatedClock};
use crate::config::Settings;
use crate::domain::calendar::resolve_local;
use crate::domain::types::{Channel, PhoneNumber};
use crate::engine::{Engine, Inbound};
use crate::provider::twilio::TwilioClient;
use crate::provider::{Provider, Sandbox};
use crate::store::{Backend, Db, campaigns, maintenance, stats};
use crate::templates::Templates;
use anyhow::Result;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// A loopback stand-in for Twilio's message API, for `--provider twilio-fake`: it answers every
/// `POST Messages.json` with 201 and a message sid, so the bench measures Rappel's real client
/// (form encoding, Basic auth, pacing, keep-alive) and not a remote service.
async fn start_twilio_fake() -> Result<String> {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/2010-04-01/Accounts/{account}/Messages.json",
        post(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                (
                    axum::http::StatusCode::CREATED,
                    axum::Json(
                        serde_json::json!({"sid": format!("SM{n:032x}"), "status": "queued"}),
                    ),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

/// The bench's configuration: the configuration directory's (see `settings_with`), then its
/// own database, batches of 1,000, and the loopback Twilio fake (every Twilio key replaced, so
/// no real account is ever used) when `provider_name` is `twilio-fake`.
async fn bench_settings(
    config_dir: Option<&Path>,
    url: &str,
    provider_name: &str,
) -> Result<Settings> {
    let mut layers = vec![layer(
        "bench",
        format!("[database]\nurl = \"{url}\"\nmax_connections = 8\n[worker]\nbatch_size = 1000\n"),
    )];
    if provider_name == "twilio-fake" {
        let base = start_twilio_fake().await?;
        layers.push(layer(
            "bench twilio-fake",
            format!(
                "[provider]\nkind = \"twilio\"\n[provider.twilio]\nbase_url = \"{base}\"\n\
                 account_sid = \"AC00000000000000000000000000000000\"\nauth_token = \"bench-token\"\n\
                 messages_per_second = 10000.0\nmax_in_flight = 64\n"
            ),
        ));
    }
    settings_with(config_dir, layers)
}

/// The appointments' day: the first Wednesday at least a week ahead.
fn bench_day() -> NaiveDate {
    let mut day = Utc::now().date_naive() + Duration::days(7);
    while day.weekday() != Weekday::Wed {
        day += Duration::days(1);
    }
    day
}

/// J-2 (Monday) at 09:00 the site's time: every request step is due at once.
fn bench_start(tz: chrono_tz::Tz, day: NaiveDate) -> DateTime<Utc> {
    resolve_local(
        tz,
        (day - Duration::days(2)).and_time(NaiveTime::from_hms_opt(9, 0, 0).expect("time")),
    )
}

/// The engine on a migrated, empty database, with the provider `provider_name` names: the
/// sandbox, or the Twilio client against the loopback fake (never a provider the configuration
/// names, which may be a real account).
async fn bench_engine(
    settings: Settings,
    clock: Arc<ManualClock>,
    provider_name: &str,
) -> Result<Engine> {
    let db = Db::connect(&settings.database.url, 8).await?;
    db.migrate().await?;
    if db.backend == Backend::Postgres {
        maintenance::truncate_all(&db).await?;
    }
    let provider: Arc<dyn Provider> = match (provider_name, &settings.twilio) {
        ("twilio-fake", Some(t)) => Arc::new(TwilioClient::new(t.clone())?),
        _ => Arc::new(Sandbox::new(db.clone())),
    };
    let templates = Arc::new(Templates::load(settings.templates_dir.as_deref())?);
    Ok(Engine::new(
        db,
        Arc::new(settings),
        clock,
        provider,
        templates,
    ))
}

/// Where and what the bench books: a site and the exams it cycles through.
struct Workload {
    site: String,
    tz: chrono_tz::Tz,
    exams: Vec<String>,
}

impl Workload {
    /// Site `paris-nord` (else the configuration's first site); five exams of different families
    /// (else the first five of the configuration's catalogue).
    fn of(settings: &Settings) -> Result<Workload> {
        const EXAMS: [&str; 5] = ["IRM-GEN", "TDM-THO", "ECHO-PEL", "RX-THO", "MAMMO"];
        let site = settings
            .site("paris-nord")
            .or_else(|| settings.sites.values().next())
            .ok_or_else(|| anyhow::anyhow!("configuration: the bench needs a site"))?;
        let mut exams: Vec<String> = EXAMS
            .iter()
            .filter(|e| settings.exams.contains_key(**e))
            .map(|e| e.to_string())
            .collect();
        if exams.len() < EXAMS.len() {
            exams = settings.exams.keys().take(EXAMS.len()).cloned().collect();
        }
        if exams.is_empty() {
            anyhow::bail!("configuration: the bench books exams and the configuration has none");
        }
        Ok(Workload {
            site: site.id.clone(),
            tz: site.tz,
            exams,
        })
    }
}

/// The `i`-th appointment: one a minute from 08:00 (600 a day, then the same times again),
/// each patient with a number of their own.
fn appointment(engine: &Engine, work: &Workload, day: NaiveDate, i: usize) -> Result<Appointment> {
    let minute = (i % 600) as u32;
    let input = AppointmentInput {
        external_id: format!("B{i:07}"),
        site: work.site.clone(),
        exam_code: work.exams[i % work.exams.len()].clone(),
        start: format!("{day}T{:02}:{:02}", 8 + minute / 60, minute % 60),
        duration_min: None,
        patient_name: format!("Patient {i}"),
        phone: Some(format!("+336{:08}", i)),
        locale: Some(if i % 10 == 0 { "en" } else { "fr" }.into()),
        channel: Some(if i % 7 == 0 { "whatsapp" } else { "sms" }.into()),
        status: None,
    };
    input
        .check(&engine.settings)
        .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))
}

/// Seeds `n` appointments on `day`, then gives the planner statistics: a running system has them
/// (autovacuum, or the ANALYZE of `migrate`), a table filled in seconds does not yet, and
/// PostgreSQL then plans the batch queries as for an empty table.
async fn seed(engine: &Engine, work: &Workload, day: NaiveDate, n: usize) -> Result<()> {
    eprintln!(
        "seeding {n} appointments at {} ({})…",
        work.site,
        engine.db.backend.as_str()
    );
    let appts = (0..n)
        .map(|i| appointment(engine, work, day, i))
        .collect::<Result<Vec<_>>>()?;
    for chunk in appts.chunks(5_000) {
        engine.write_appointments(chunk).await?;
    }
    maintenance::analyze(&engine.db).await
}

/// What planning and dispatching every due step took.
struct Dispatched {
    sent: i64,
    plan_secs: f64,
    /// Planning included.
    dispatch_secs: f64,
}

/// Plans the campaigns, then claims and runs due steps until none is left.
async fn plan_and_dispatch(engine: &Engine) -> Result<Dispatched> {
    let t0 = Instant::now();
    let planned = engine.plan().await?.opened;
    let plan_secs = t0.elapsed().as_secs_f64();
    // Statistics for the 100,000 new campaigns (autovacuum would take a minute to notice them);
    // not counted in the figures.
    maintenance::analyze(&engine.db).await?;
    let t1 = Instant::now();
    let mut dispatched = 0usize;
    loop {
        let (ids, token) = engine.claim_due(engine.settings.worker.batch_size).await?;
        if ids.is_empty() {
            break;
        }
        dispatched += engine.run_batch(&ids, &token).await?;
    }
    let dispatch_secs = plan_secs + t1.elapsed().as_secs_f64();
    maintenance::analyze(&engine.db).await?;
    let sent = stats::sent_attempts(&engine.db).await?;
    eprintln!(
        "planned {planned} campaigns in {plan_secs:.2} s; dispatched {dispatched} steps, {sent} messages sent, in {dispatch_secs:.2} s"
    );
    Ok(Dispatched {
        sent,
        plan_secs,
        dispatch_secs,
    })
}

/// Campaigns whose due → sent lag is measured, and the seconds their steps are spread over.
const LAG_CAMPAIGNS: usize = 600;
const LAG_SPREAD_SECS: i64 = 15;

/// Due → sent lag with time passing at the real pace: the worker role as `rappel worker` runs
/// it (sweeper, queue, dispatcher) on a clock at speed 1 set inside the send window, steps
/// falling due a few each second; each lag is the instant the provider got the message minus
/// the instant its step fell due, in milliseconds.
async fn time_lag(
    config_dir: Option<&Path>,
    url: &str,
    work: &Workload,
    day: NaiveDate,
) -> Result<Vec<f64>> {
    let settings = bench_settings(config_dir, url, "sandbox").await?;
    let db = Db::connect(&settings.database.url, 8).await?;
    db.migrate().await?;
    if db.backend == Backend::Postgres {
        maintenance::truncate_all(&db).await?;
    }
    let first = bench_start(work.tz, day);
    let clock = Arc::new(SimulatedClock::new(first - Duration::seconds(5), 1.0));
    let (tx, mut sent) = tokio::sync::mpsc::unbounded_channel();
    let provider = Arc::new(Sandbox::with_listener(db.clone(), tx));
    let templates = Arc::new(Templates::load(settings.templates_dir.as_deref())?);
    let engine = Engine::new(db, Arc::new(settings), clock.clone(), provider, templates);
    let appts = (0..LAG_CAMPAIGNS)
        .map(|i| appointment(&engine, work, day, i))
        .collect::<Result<Vec<_>>>()?;
    engine.write_appointments(&appts).await?;
    engine.plan().await?;
    campaigns::spread_due(&engine.db, first.timestamp(), LAG_SPREAD_SECS).await?;
    let shutdown = CancellationToken::new();
    let roles = app::Roles {
        http: false,
        worker: true,
    };
    let worker = tokio::spawn(app::run(engine.clone(), None, roles, shutdown.clone()));
    let mut lags = Vec::with_capacity(LAG_CAMPAIGNS);
    let wait = std::time::Duration::from_secs(LAG_SPREAD_SECS as u64 + 60);
    let deadline = tokio::time::Instant::now() + wait;
    while lags.len() < LAG_CAMPAIGNS {
        let Ok(Some(s)) = tokio::time::timeout_at(deadline, sent.recv()).await else {
            break;
        };
        let at = clock.now();
        let Some(id) = s
            .client_ref
            .strip_prefix('c')
            .and_then(|r| r.split('-').next())
            .and_then(|id| id.parse::<i64>().ok())
        else {
            continue;
        };
        let due = first.timestamp() + id % LAG_SPREAD_SECS;
        lags.push((at.timestamp_millis() - due * 1000) as f64);
    }
    shutdown.cancel();
    let _ = worker.await;
    if lags.len() < LAG_CAMPAIGNS {
        eprintln!(
            "lag: only {} of {LAG_CAMPAIGNS} steps were sent in time",
            lags.len()
        );
    }
    lags.sort_by(f64::total_cmp);
    Ok(lags)
}

/// The `i`-th timed reply, from the `idx`-th patient: half confirm, half cancel (a cancel goes
/// through the agenda release).
fn reply(i: usize, idx: usize) -> Result<Inbound> {
    Ok(Inbound {
        to: None,
        provider_id: format!("SMBENCH{i}"),
        from: PhoneNumber::parse(&format!("+336{:08}", idx)).map_err(|e| anyhow::anyhow!(e))?,
        channel: Channel::Sms,
        body: if i % 2 == 0 {
            "oui je serai là".into()
        } else {
            "je ne pourrai pas venir, annulez".into()
        },
        intent: None,
        campaign_id: None,
    })
}

/// Handles up to `replies` replies spread over the `n` patients; each one's latency in ms,
/// sorted.
async fn time_replies(engine: &Engine, n: usize, replies: usize) -> Result<Vec<f64>> {
    let mut lat = Vec::with_capacity(replies);
    for i in 0..replies.min(n) {
        let idx = (i * (n / replies.min(n).max(1))).min(n - 1);
        let msg = reply(i, idx)?;
        let t = Instant::now();
        engine.handle_inbound(msg).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(lat)
}

/// The `p`-th percentile of sorted values (0 when there is none).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0)
}

/// Rounds to `places` decimal places.
fn round_to(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// The bench on the configuration of `config_dir` (see `bench_settings`).
/// Replies of every kind and length, for the classifier's throughput (the corpora are not in
/// the shipped binary).
const SAMPLE_REPLIES: [&str; 16] = [
    "Oui",
    "ok merci à demain",
    "je ne pourrai pas venir, j'ai un empêchement",
    "Est-ce que je dois être à jeun pour le scanner ?",
    "STOP",
    "oui je viens mais arrêtez les rappels par SMS",
    "je suis sous Préviscan, faut-il l'arrêter avant ?",
    "vous vous trompez de numéro, je ne connais pas cette personne",
    "possible de décaler à jeudi après-midi plutôt ?",
    "mwen ka vini, mèsi",
    "Yes I'll be there, running 10 min late",
    "Can't make it, sorry. Please cancel.",
    "i have a pacemaker is that ok for the MRI",
    "👍",
    "Bonjour Madame, je vous confirme ma présence au rendez-vous de mardi. Je viendrai \
     accompagnée de ma fille car je ne conduis plus depuis mon opération de la hanche. \
     Bien cordialement, Mme Lefèvre",
    "euh bah je sais pas trop je vous redis",
];

/// Replies classified per second on one thread (rules, lists and model), over
/// [`SAMPLE_REPLIES`] for about a second.
fn classify_per_sec() -> f64 {
    use crate::domain::reply::{Vocabulary, classify};
    let vocab = Vocabulary::default();
    let started = Instant::now();
    let mut n = 0usize;
    while started.elapsed().as_secs_f64() < 1.0 {
        for r in SAMPLE_REPLIES {
            std::hint::black_box(classify(std::hint::black_box(r), None, &vocab));
            n += 1;
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

pub async fn run(
    config_dir: Option<&Path>,
    n: usize,
    database: Option<String>,
    replies: usize,
    provider_name: &str,
) -> Result<()> {
    let dir = scratch_dir("bench")?;
    let url = database.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    let settings = bench_settings(config_dir, &url, provider_name).await?;
    let work = Workload::of(&settings)?;
    let day = bench_day();
    let clock = Arc::new(ManualClock::new(bench_start(work.tz, day)));
    let engine = bench_engine(settings, clock.clone(), provider_name).await?;
    seed(&engine, &work, day, n).await?;
    let d = plan_and_dispatch(&engine).await?;

    clock.advance(Duration::minutes(30));
    let lat = time_replies(&engine, n, replies).await?;
    let lag_url = match engine.db.backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("lag.db").display()),
        Backend::Postgres => url.clone(),
    };
    let lag = time_lag(config_dir, &lag_url, &work, day).await?;
    let released = stats::agenda_writebacks_done(&engine.db).await?;
    eprintln!(
        "{} replies handled, {released} agenda write-backs done",
        lat.len()
    );
    let out = serde_json::json!({
        "appointments": n,
        "backend": engine.db.backend.as_str(),
        "provider": provider_name,
        "sends": d.sent,
        "sends_per_sec": (d.sent as f64 / d.dispatch_secs).round(),
        "plan_secs": round_to(d.plan_secs, 2),
        "dispatch_secs": round_to(d.dispatch_secs, 2),
        "replies": lat.len(),
        "reply_p50_ms": round_to(percentile(&lat, 0.50), 2),
        "reply_p99_ms": round_to(percentile(&lat, 0.99), 2),
        "due_to_sent_p50_ms": round_to(percentile(&lag, 0.50), 1),
        "due_to_sent_p99_ms": round_to(percentile(&lag, 0.99), 1),
        "due_to_sent_max_ms": round_to(lag.last().copied().unwrap_or(0.0), 1),
        "lag_steps": lag.len(),
        "classify_per_sec": classify_per_sec().round(),
        "peak_rss_mb": round_to(peak_rss_mb(), 1),
    });
    let _ = std::fs::remove_dir_all(&dir);
    outln!("{out}")
}
