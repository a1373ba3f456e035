//! Start-up and the long-running roles: the HTTP server (webhooks, admin API, health) and the
//! worker (planner, sweeper, step jobs, agenda outbox), as sibling tasks under one cancellation
//! token. `rappel serve` runs both, `rappel worker` only the worker; on PostgreSQL several of
//! each share the work.
//!
//! The queue (apalis) carries step batches from the sweeper to the workers; it is dispatch only.
//! What is due lives in `campaigns.due_at` with a claim lease, so apalis 1.0's behaviours we
//! design around cannot lose or repeat a step: a failed job is finished, not retried (the lease
//! brings the campaigns back); each process registers its worker under a fresh name (a restarted
//! worker under the same name strands its jobs on PostgreSQL); SQLite workers poll every 200 ms
//! and PostgreSQL ones are woken by LISTEN/NOTIFY (an idle worker otherwise waits for its 30 s
//! heartbeat); the planner runs once at start-up and then on apalis-cron ticks, and it re-reads the
//! agenda each time (apalis-cron itself does not catch up after downtime); a job delivered twice
//! finds its claim token gone and does nothing.

use crate::clock::{Clock, SimulatedClock, SystemClock};
use crate::config::{ProviderKind, Settings};
use crate::domain::policy::from_unix;
use crate::engine::Engine;
use crate::provider::twilio::TwilioClient;
use crate::provider::{Provider, Sandbox};
use crate::store::clock as clock_store;
use crate::store::{Backend, Db};
use crate::templates::Templates;
use anyhow::{Context, Result};
use apalis::prelude::*;
use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Builds the engine from validated settings: database (migrated), clock, provider, templates.
pub async fn build_engine(settings: Settings, clock: Option<Arc<dyn Clock>>) -> Result<Engine> {
    let db = Db::connect(&settings.database.url, settings.database.max_connections).await?;
    db.migrate().await?;
    let clock: Arc<dyn Clock> = match (clock, settings.clock.start) {
        (Some(clock), _) => clock,
        (None, Some(start)) => {
            Arc::new(shared_simulated_clock(&db, start, settings.clock.speed).await?)
        }
        (None, None) => Arc::new(SystemClock),
    };
    let sandbox: Arc<dyn Provider> = Arc::new(Sandbox::new(db.clone()));
    let twilio: Option<Arc<dyn Provider>> = match &settings.twilio {
        Some(t) => Some(Arc::new(TwilioClient::new(t.clone())?)),
        None => None,
    };
    let pick = |kind: ProviderKind| match kind {
        ProviderKind::Sandbox => sandbox.clone(),
        ProviderKind::Twilio => twilio.clone().unwrap_or_else(|| sandbox.clone()),
    };
    let provider = pick(settings.provider);
    let site_providers = settings
        .sites
        .values()
        .filter_map(|s| {
            s.provider
                .filter(|p| *p != settings.provider)
                .map(|p| (s.id.clone(), pick(p)))
        })
        .collect();
    let templates = Arc::new(Templates::load(settings.templates_dir.as_deref())?);
    let mut engine = Engine::new(db, Arc::new(settings), clock, provider, templates);
    engine.site_providers = site_providers;
    engine.with_fhir_agendas()
}

/// The deployment's simulated clock: the first process stores where it starts, every later one
/// (serve, worker, import) reads that back, so they all agree on "now". A different `start` or
/// `speed` in a later process's configuration is reported and the stored one kept.
async fn shared_simulated_clock(
    db: &Db,
    start: DateTime<Utc>,
    speed: f64,
) -> Result<SimulatedClock> {
    let proposed = clock_store::Anchor {
        sim_start: start.timestamp(),
        wall_start_ms: Utc::now().timestamp_millis(),
        speed,
    };
    let held = clock_store::anchor(db, proposed).await?;
    if held.sim_start != proposed.sim_start || held.speed != proposed.speed {
        tracing::warn!(
            configured_start = %start,
            stored_start = %from_unix(held.sim_start),
            stored_speed = held.speed,
            "the database holds this deployment's simulated clock: its start and speed are used"
        );
    }
    let began = Utc
        .timestamp_millis_opt(held.wall_start_ms)
        .single()
        .unwrap_or_else(Utc::now);
    Ok(SimulatedClock::anchored(
        from_unix(held.sim_start),
        began,
        held.speed,
    ))
}

/// A batch of claimed campaigns handed to a worker through the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepBatch {
    pub ids: Vec<i64>,
    pub token: String,
}

async fn run_step_batch(job: StepBatch, engine: Data<Engine>) -> Result<(), BoxDynError> {
    if let Err(e) = engine.run_batch(&job.ids, &job.token).await {
        // Not returned as an error: apalis would re-run it at once with no backoff. The claim
        // lease brings these campaigns back after `claim_lease_secs`.
        tracing::error!(error = %format!("{e:#}"), campaigns = job.ids.len(), "step batch failed; the lease will retry it");
    }
    Ok(())
}

async fn plan_tick(_tick: apalis_cron::Tick, engine: Data<Engine>) -> Result<(), BoxDynError> {
    match engine.plan().await {
        Ok(r) if r.opened + r.expired > 0 => {
            tracing::info!(opened = r.opened, expired = r.expired, "planner")
        }
        Ok(_) => {}
        // Not returned: the next tick plans again, and a failed cron task is not retried usefully.
        Err(err) => tracing::error!(error = %format!("{err:#}"), "planner failed"),
    }
    Ok(())
}

/// The cron expression (with seconds) for a planner interval: 1–60 s dividing a minute, or whole
/// minutes dividing an hour (checked by the configuration).
pub fn planner_schedule(every: Duration) -> Result<cron::Schedule> {
    use std::str::FromStr;
    let secs = every.as_secs().max(1);
    let expr = if secs < 60 {
        format!("*/{secs} * * * * *")
    } else if secs == 60 {
        "0 * * * * *".to_string()
    } else {
        format!("0 */{} * * * *", secs / 60)
    };
    cron::Schedule::from_str(&expr).with_context(|| format!("planner schedule '{expr}'"))
}

/// Which parts run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub http: bool,
    pub worker: bool,
}

/// Binds the HTTP server's socket. Done before anything touches the database, so that a busy
/// port stops `rappel serve` before it creates or migrates one.
pub async fn listen(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "cannot listen on {addr}: the address is already in use (another rappel serve, \
                 or change server.bind / RAPPEL__SERVER__BIND)"
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot listen on {addr}"))
        }
    })
}

/// Runs until `shutdown` is cancelled (Ctrl-C or SIGTERM in the CLI). The HTTP role serves on
/// `listener` (from [`listen`]); it is required when `roles.http` is set.
pub async fn run(
    engine: Engine,
    listener: Option<TcpListener>,
    roles: Roles,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut tasks = JoinSet::new();
    if roles.http {
        let listener = listener.context("the HTTP role needs a bound listener (app::listen)")?;
        tracing::info!(addr = %listener.local_addr()?, "http server listening");
        let app = crate::http::router(engine.clone());
        let token = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .context("http server")
        });
    }
    if roles.worker {
        for (site, caps) in engine.agenda_capabilities() {
            tracing::info!(site, ?caps, "agenda connector");
        }
        spawn_worker(&mut tasks, engine.clone(), shutdown.clone()).await?;
    }
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                shutdown.cancel();
                return Err(e);
            }
            Err(e) => {
                shutdown.cancel();
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// How the sweeper hands a step batch to the queue.
type Push = Arc<dyn Fn(StepBatch) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Resolves when the process shuts down: the signal apalis workers run until.
type Stop = BoxFuture<'static, Result<(), std::io::Error>>;

/// The apalis queue that carries step batches, on both engines.
const QUEUE: &str = "rappel-steps";

/// Starts the worker role: the step queue and its consumer, the planner, the sweeper and the
/// agenda outbox, each a task of `tasks` that ends when `shutdown` is cancelled.
async fn spawn_worker(
    tasks: &mut JoinSet<Result<()>>,
    engine: Engine,
    shutdown: CancellationToken,
) -> Result<()> {
    // Fresh per process start: a worker restarted under the same name strands its jobs
    // (PostgreSQL).
    let worker_name = format!("rappel-{}", uuid::Uuid::new_v4().simple());
    let push = start_queue(tasks, &engine, &shutdown, &worker_name).await?;
    tracing::info!(worker = %worker_name, backend = engine.db.backend.as_str(), "worker started");
    start_planner(tasks, &engine, &shutdown, &worker_name).await?;
    spawn_sweeper(tasks, engine.clone(), shutdown.clone(), push);
    spawn_outbox(tasks, engine, shutdown);
    Ok(())
}

/// Opens the queue on the engine's database (applying its migrations), starts the step-batch
/// consumer named `worker_name`, and returns how the sweeper pushes into the queue. SQLite has
/// no notifications, so its consumer polls every 200 ms; PostgreSQL's is woken by LISTEN/NOTIFY.
async fn start_queue(
    tasks: &mut JoinSet<Result<()>>,
    engine: &Engine,
    shutdown: &CancellationToken,
    worker_name: &str,
) -> Result<Push> {
    let url = engine.db.url().expose_secret().to_string();
    let builder = WorkerBuilder::new(worker_name.to_string());
    Ok(match engine.db.backend {
        Backend::Sqlite => {
            let pool = apalis_sqlite::SqlitePool::connect(&url).await?;
            migrate_queue(apalis_sqlite::SqliteStorage::migrations(), &pool).await?;
            let config = apalis_sqlite::Config::default().queue(QUEUE);
            let storage = apalis_sqlite::SqliteStorage::<StepBatch>::new(&pool).with_config(config);
            let consumer = builder
                .backend(
                    storage
                        .clone()
                        .poll_with_interval(Duration::from_millis(200)),
                )
                .data(engine.clone())
                .build(run_step_batch);
            serve_queue(tasks, shutdown, storage, |stop| consumer.run_until(stop))
        }
        Backend::Postgres => {
            let pool = apalis_postgres::PgPool::connect(&url).await?;
            migrate_queue(apalis_postgres::PostgresStorage::migrations(), &pool).await?;
            let config = apalis_postgres::Config::default().queue(QUEUE);
            let storage =
                apalis_postgres::PostgresStorage::<StepBatch>::new(&pool).with_config(config);
            let consumer = builder
                .backend(storage.clone().with_pubsub())
                .data(engine.clone())
                .build(run_step_batch);
            serve_queue(tasks, shutdown, storage, |stop| consumer.run_until(stop))
        }
    })
}

/// Applies the queue's own migrations. They share sqlx's ledger table with Rappel's, so each
/// side ignores the other's versions.
async fn migrate_queue<'a, A>(mut migrator: sqlx::migrate::Migrator, pool: A) -> Result<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    migrator.set_ignore_missing(true);
    migrator.run(pool).await.context("queue migrations")
}

/// Runs the queue's consumer (`run_consumer`, given the shutdown signal) as a task, and returns
/// how to push step batches into `storage`, the same queue.
fn serve_queue<S, K, F, E>(
    tasks: &mut JoinSet<Result<()>>,
    shutdown: &CancellationToken,
    storage: S,
    run_consumer: impl FnOnce(Stop) -> F,
) -> Push
where
    S: TaskSink<StepBatch, K> + Clone + Send + Sync + 'static,
    K: 'static,
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    spawn_until_cancelled(tasks, shutdown, "queue worker", run_consumer);
    Arc::new(move |job| {
        let mut storage = storage.clone();
        Box::pin(async move {
            storage
                .push(job)
                .await
                .map_err(|e| anyhow::anyhow!("queue push: {e}"))
        })
    })
}

/// Spawns `run` (an apalis worker's `run_until`, given the shutdown signal) as a task of `tasks`;
/// its error is reported as `what`.
fn spawn_until_cancelled<F, E>(
    tasks: &mut JoinSet<Result<()>>,
    shutdown: &CancellationToken,
    what: &'static str,
    run: impl FnOnce(Stop) -> F,
) where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let token = shutdown.clone();
    let running = run(Box::pin(async move {
        token.cancelled().await;
        Ok(())
    }));
    tasks.spawn(async move { running.await.map_err(|e| anyhow::anyhow!("{what}: {e}")) });
}

/// Plans once now (catch-up after downtime: it reads the agenda, not a timer's history), then
/// on apalis-cron ticks. Several processes planning at once is harmless (unique key).
async fn start_planner(
    tasks: &mut JoinSet<Result<()>>,
    engine: &Engine,
    shutdown: &CancellationToken,
    worker_name: &str,
) -> Result<()> {
    match engine.plan().await {
        Ok(r) => tracing::info!(opened = r.opened, expired = r.expired, "planner caught up"),
        Err(err) => tracing::error!(error = %format!("{err:#}"), "planner failed"),
    }
    let schedule = planner_schedule(engine.settings.worker.planner_interval)?;
    let planner = WorkerBuilder::new(format!("{worker_name}-planner"))
        .backend(apalis_cron::CronScheduler::new(schedule))
        .data(engine.clone())
        .build(plan_tick);
    spawn_until_cancelled(tasks, shutdown, "planner", |stop| planner.run_until(stop));
    Ok(())
}

/// Sweeper: on each tick, claims due campaigns in batches and queues them, until a batch comes
/// back short.
fn spawn_sweeper(
    tasks: &mut JoinSet<Result<()>>,
    engine: Engine,
    shutdown: CancellationToken,
    push: Push,
) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(engine.settings.worker.sweep_interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => sweep(&engine, &push).await,
            }
        }
    });
}

/// One sweep: claims and queues full batches until a short (or empty) one. An error is logged
/// and ends the sweep; the claim lease brings the campaigns back.
async fn sweep(engine: &Engine, push: &Push) {
    let batch_size = engine.settings.worker.batch_size;
    loop {
        match engine.claim_due(batch_size).await {
            Ok((ids, _)) if ids.is_empty() => break,
            Ok((ids, token)) => {
                let full = ids.len() == batch_size;
                if let Err(err) = push(StepBatch { ids, token }).await {
                    tracing::error!(error = %format!("{err:#}"), "could not queue a step batch; the lease will retry it");
                    break;
                }
                if !full {
                    break;
                }
            }
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "sweeper failed");
                break;
            }
        }
    }
}

/// Agenda outbox and acknowledgement recovery, on each tick.
fn spawn_outbox(tasks: &mut JoinSet<Result<()>>, engine: Engine, shutdown: CancellationToken) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(engine.settings.worker.outbox_interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {
                    if let Err(err) = engine.drain_outbox().await {
                        tracing::error!(error = %format!("{err:#}"), "outbox failed");
                    }
                    if let Err(err) = engine.recover_acks().await {
                        tracing::error!(error = %format!("{err:#}"), "acknowledgement recovery failed");
                    }
                }
            }
        }
    });
}

/// Cancels `token` on Ctrl-C or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        token.cancel();
    });
}
