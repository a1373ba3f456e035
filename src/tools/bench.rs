//! `rappel bench`: seeds N appointments and measures, on this machine, end-to-end dispatch
//! (plan → render → provider → ledger) and reply handling (reply in → intent → agenda
//! write-back), then prints a final JSON line: `appointments`, `sends_per_sec`, `reply_p50_ms`,
//! `reply_p99_ms`, `peak_rss_mb`, `backend`. Figures are reported, never asserted in tests.

use crate::clock::ManualClock;
use crate::config::{self, Layer};
use crate::domain::calendar::resolve_local;
use crate::domain::types::{Channel, PhoneNumber};
use crate::engine::{Engine, Inbound};
use crate::provider::Sandbox;
use crate::store::Db;
use crate::templates::Templates;
use anyhow::Result;
use chrono::{Datelike, Duration, NaiveTime, Utc, Weekday};
use sqlx::Row;
use std::sync::Arc;
use std::time::Instant;

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

pub async fn run(
    n: usize,
    database: Option<String>,
    replies: usize,
    provider_name: &str,
) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("rappel-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let url = database.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    let mut layers = config::read_layers(None).map_err(|e| anyhow::anyhow!("{e}"))?;
    layers.push(Layer {
        name: "bench".into(),
        text: format!(
            "[database]\nurl = \"{url}\"\nmax_connections = 8\n[worker]\nbatch_size = 1000\n"
        ),
    });
    if provider_name == "twilio-fake" {
        let base = start_twilio_fake().await?;
        layers.push(Layer {
            name: "bench twilio-fake".into(),
            text: format!(
                "[provider]\nkind = \"twilio\"\n[provider.twilio]\nbase_url = \"{base}\"\n\
                 account_sid = \"AC00000000000000000000000000000000\"\nauth_token = \"bench-token\"\n\
                 messages_per_second = 10000.0\nmax_in_flight = 64\n"
            ),
        });
    }
    let settings = config::load_from(&layers, &[]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let paris = chrono_tz::Europe::Paris;
    let mut day = Utc::now().date_naive() + Duration::days(7);
    while day.weekday() != Weekday::Wed {
        day += Duration::days(1);
    }
    // J-2 (Monday) at 09:00: every request step is due at once.
    let start = resolve_local(
        paris,
        (day - Duration::days(2)).and_time(NaiveTime::from_hms_opt(9, 0, 0).expect("time")),
    );
    let clock = Arc::new(ManualClock::new(start));
    let db = Db::connect(&settings.database.url, 8).await?;
    db.migrate().await?;
    if db.backend == crate::store::Backend::Postgres {
        sqlx::raw_sql("TRUNCATE appointments, campaigns, attempts, events, replies, notes, outbox, opt_outs, sandbox_messages")
            .execute(&db.pool)
            .await?;
    }
    let provider: Arc<dyn crate::provider::Provider> = match &settings.twilio {
        Some(t) => Arc::new(crate::provider::twilio::TwilioClient::new(t.clone())?),
        None => Arc::new(Sandbox::new(db.clone())),
    };
    let engine = Engine::new(
        db.clone(),
        Arc::new(settings),
        clock.clone(),
        provider,
        Arc::new(Templates::load(None)?),
    );

    eprintln!("seeding {n} appointments ({})…", db.backend.as_str());
    let exams = ["IRM-GEN", "TDM-THO", "ECHO-PEL", "RX-THO", "MAMMO"];
    let mut appts = Vec::with_capacity(n);
    for i in 0..n {
        let minute = (i % 600) as u32;
        let input = crate::agenda::AppointmentInput {
            external_id: format!("B{i:07}"),
            site: "paris-nord".into(),
            exam_code: exams[i % exams.len()].into(),
            start: format!("{day}T{:02}:{:02}", 8 + minute / 60, minute % 60),
            duration_min: None,
            patient_name: format!("Patient {i}"),
            phone: Some(format!("+336{:08}", i)),
            locale: Some(if i % 10 == 0 { "en" } else { "fr" }.into()),
            channel: Some(if i % 7 == 0 { "whatsapp" } else { "sms" }.into()),
            status: None,
        };
        appts.push(
            input
                .check(&engine.settings)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?,
        );
    }
    for chunk in appts.chunks(5_000) {
        engine.write_appointments(chunk).await?;
    }
    // A running system has statistics (autovacuum, or the ANALYZE of `migrate`); a table filled
    // in seconds does not yet, and PostgreSQL then plans the batch queries as for an empty table.
    sqlx::query("ANALYZE").execute(&db.pool).await?;

    let t0 = Instant::now();
    let planned = engine.plan().await?.opened;
    let plan_secs = t0.elapsed().as_secs_f64();
    // Statistics for the 100,000 new campaigns (autovacuum would take a minute to notice them);
    // not counted in the figures.
    sqlx::query("ANALYZE").execute(&db.pool).await?;
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
    sqlx::query("ANALYZE").execute(&db.pool).await?;
    let sent: i64 = sqlx::query("SELECT COUNT(*) AS n FROM attempts WHERE state = 'sent'")
        .fetch_one(&db.pool)
        .await?
        .try_get("n")?;
    eprintln!(
        "planned {planned} campaigns in {plan_secs:.2} s; dispatched {dispatched} steps, {sent} messages sent, in {dispatch_secs:.2} s"
    );

    // Replies: half confirm, half cancel (cancel goes through the agenda release).
    clock.advance(Duration::minutes(30));
    let mut lat = Vec::with_capacity(replies);
    for i in 0..replies.min(n) {
        let idx = (i * (n / replies.min(n).max(1))).min(n - 1);
        let msg = Inbound {
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
        };
        let t = Instant::now();
        engine.handle_inbound(msg).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    let released: i64 = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'done'")
        .fetch_one(&db.pool)
        .await?
        .try_get("n")?;
    eprintln!(
        "{} replies handled, {released} agenda write-backs done",
        lat.len()
    );
    let out = serde_json::json!({
        "appointments": n,
        "backend": db.backend.as_str(),
        "provider": provider_name,
        "sends": sent,
        "sends_per_sec": (sent as f64 / dispatch_secs).round(),
        "plan_secs": (plan_secs * 100.0).round() / 100.0,
        "dispatch_secs": (dispatch_secs * 100.0).round() / 100.0,
        "replies": lat.len(),
        "reply_p50_ms": (pct(0.50) * 100.0).round() / 100.0,
        "reply_p99_ms": (pct(0.99) * 100.0).round() / 100.0,
        "peak_rss_mb": (peak_rss_mb() * 10.0).round() / 10.0,
    });
    println!("{out}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
