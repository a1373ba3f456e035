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
use crate::engine::Engine;
use crate::provider::twilio::TwilioClient;
use crate::provider::{Provider, Sandbox};
use crate::store::{Backend, Db};
use crate::templates::Templates;
use anyhow::{Context, Result};
use apalis::prelude::*;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Builds the engine from validated settings: database (migrated), clock, provider, templates.
pub async fn build_engine(settings: Settings, clock: Option<Arc<dyn Clock>>) -> Result<Engine> {
    let db = Db::connect(&settings.database.url, settings.database.max_connections).await?;
    db.migrate().await?;
    let clock: Arc<dyn Clock> = clock.unwrap_or_else(|| match settings.clock.start {
        Some(start) => Arc::new(SimulatedClock::new(start, settings.clock.speed)),
        None => Arc::new(SystemClock),
    });
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

/// Runs until `shutdown` is cancelled (Ctrl-C or SIGTERM in the CLI).
pub async fn run(engine: Engine, roles: Roles, shutdown: CancellationToken) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    if roles.http {
        let listener = tokio::net::TcpListener::bind(engine.settings.server.bind)
            .await
            .with_context(|| format!("cannot listen on {}", engine.settings.server.bind))?;
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

async fn spawn_worker(
    tasks: &mut tokio::task::JoinSet<Result<()>>,
    engine: Engine,
    shutdown: CancellationToken,
) -> Result<()> {
    let worker_name = format!("rappel-{}", uuid::Uuid::new_v4().simple());
    let url = engine.db.url().expose_secret().to_string();
    let queue = "rappel-steps";
    // The sweeper pushes into `push`; the apalis worker consumes. Both speak the same storage.
    let push: Arc<
        dyn Fn(StepBatch) -> futures::future::BoxFuture<'static, Result<()>> + Send + Sync,
    > = match engine.db.backend {
        Backend::Sqlite => {
            let pool = apalis_sqlite::SqlitePool::connect(&url).await?;
            let mut m = apalis_sqlite::SqliteStorage::migrations();
            m.set_ignore_missing(true);
            m.run(&pool).await.context("queue migrations")?;
            let config = apalis_sqlite::Config::default().queue(queue);
            let storage = apalis_sqlite::SqliteStorage::<StepBatch>::new(&pool).with_config(config);
            let consumer = storage
                .clone()
                .poll_with_interval(Duration::from_millis(200));
            let worker = WorkerBuilder::new(worker_name.clone())
                .backend(consumer)
                .data(engine.clone())
                .build(run_step_batch);
            let token = shutdown.clone();
            tasks.spawn(async move {
                worker
                    .run_until(async move {
                        token.cancelled().await;
                        Ok::<(), std::io::Error>(())
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("queue worker: {e}"))
            });
            Arc::new(move |job| {
                let mut s = storage.clone();
                Box::pin(async move {
                    s.push(job)
                        .await
                        .map_err(|e| anyhow::anyhow!("queue push: {e}"))?;
                    Ok(())
                })
            })
        }
        Backend::Postgres => {
            let pool = apalis_postgres::PgPool::connect(&url).await?;
            let mut m = apalis_postgres::PostgresStorage::migrations();
            m.set_ignore_missing(true);
            m.run(&pool).await.context("queue migrations")?;
            let config = apalis_postgres::Config::default().queue(queue);
            let storage =
                apalis_postgres::PostgresStorage::<StepBatch>::new(&pool).with_config(config);
            let consumer = storage.clone().with_pubsub();
            let worker = WorkerBuilder::new(worker_name.clone())
                .backend(consumer)
                .data(engine.clone())
                .build(run_step_batch);
            let token = shutdown.clone();
            tasks.spawn(async move {
                worker
                    .run_until(async move {
                        token.cancelled().await;
                        Ok::<(), std::io::Error>(())
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("queue worker: {e}"))
            });
            Arc::new(move |job| {
                let mut s = storage.clone();
                Box::pin(async move {
                    s.push(job)
                        .await
                        .map_err(|e| anyhow::anyhow!("queue push: {e}"))?;
                    Ok(())
                })
            })
        }
    };
    tracing::info!(worker = %worker_name, backend = engine.db.backend.as_str(), "worker started");

    // Planner: once now (catch-up after downtime: it reads the agenda, not a timer's history),
    // then on apalis-cron ticks. Several processes planning at once is harmless (unique key).
    match engine.plan().await {
        Ok(r) => tracing::info!(opened = r.opened, expired = r.expired, "planner caught up"),
        Err(err) => tracing::error!(error = %format!("{err:#}"), "planner failed"),
    }
    let schedule = planner_schedule(engine.settings.worker.planner_interval)?;
    let planner = WorkerBuilder::new(format!("{worker_name}-planner"))
        .backend(apalis_cron::CronScheduler::new(schedule))
        .data(engine.clone())
        .build(plan_tick);
    let token = shutdown.clone();
    tasks.spawn(async move {
        planner
            .run_until(async move {
                token.cancelled().await;
                Ok::<(), std::io::Error>(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("planner: {e}"))
    });

    // Sweeper: claims due campaigns in batches and queues them.
    let (e, token) = (engine.clone(), shutdown.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(e.settings.worker.sweep_interval);
        loop {
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                _ = tick.tick() => {
                    loop {
                        match e.claim_due(e.settings.worker.batch_size).await {
                            Ok((ids, _)) if ids.is_empty() => break,
                            Ok((ids, token)) => {
                                let full = ids.len() == e.settings.worker.batch_size;
                                if let Err(err) = push(StepBatch { ids, token }).await {
                                    tracing::error!(error = %format!("{err:#}"), "could not queue a step batch; the lease will retry it");
                                    break;
                                }
                                if !full { break; }
                            }
                            Err(err) => {
                                tracing::error!(error = %format!("{err:#}"), "sweeper failed");
                                break;
                            }
                        }
                    }
                }
            }
        }
    });

    // Agenda outbox and acknowledgement recovery.
    let (e, token) = (engine, shutdown);
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(e.settings.worker.outbox_interval);
        loop {
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                _ = tick.tick() => {
                    if let Err(err) = e.drain_outbox().await {
                        tracing::error!(error = %format!("{err:#}"), "outbox failed");
                    }
                    if let Err(err) = e.recover_acks().await {
                        tracing::error!(error = %format!("{err:#}"), "acknowledgement recovery failed");
                    }
                }
            }
        }
    });
    Ok(())
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
