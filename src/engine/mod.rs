//! The shell around the pure core: it reads rows through [`crate::store`], asks
//! `campaign::decide` (and the other pure rules of [`crate::domain`]), and carries out the
//! commands — in the database, through the provider, and through the agenda outbox. No SQL text
//! lives here.
//!
//! The flow, one file each: [`planner`] opens campaigns from the agenda → [`dispatch`] runs
//! due steps through the provider → [`replies`] and [`statuses`] take what comes back →
//! [`outbox`] writes outcomes to the agenda; [`sync`] brings the agenda's changes in, and
//! [`transition`] writes any decided transition with its ledger row and commands.
//!
//! Guarantees, and how each is kept:
//! - **No double send.** An attempt row is committed under (campaign, step, attempt) before the
//!   provider is called. A claimed step that finds its attempt already `sending` (a crash
//!   between the two) asks the provider (`find`) instead of sending again.
//! - **No lost step.** A step is `campaigns.due_at`. The dispatcher claims due campaigns with a
//!   lease and a token; a claim that is not finished when the lease runs out (crash, lost queue
//!   job) is claimed again. Jobs are only a way to hand batches to workers.
//! - **Never lose a release.** Confirmations and releases are outbox rows written in the same
//!   transaction as the state change, claimed, applied, and retried with backoff until done;
//!   after `outbox_max_tries` a secretary gets a note.
//! - **Idempotent replies.** A reply is keyed by the provider's message id; a replay changes
//!   nothing.

mod dispatch;
mod outbox;
mod planner;
mod replies;
mod statuses;
mod sync;
mod transition;

pub use planner::PlanReport;
pub use replies::{Inbound, InboundOutcome};
pub use statuses::delivery_advances;
pub use sync::SyncReport;

use crate::agenda::fhir::FhirAgenda;
use crate::agenda::{Agenda, BuiltinAgenda, Capabilities};
use crate::clock::Clock;
use crate::config::{Settings, Site};
use crate::domain::policy::{Policy, from_unix};
use crate::provider::Provider;
use crate::store::{Db, campaigns};
use crate::templates::Templates;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// Step number used for acknowledgement attempts (their attempt number is the reply id).
pub const ACK_STEP: i64 = 1000;

#[derive(Clone)]
pub struct Engine {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub clock: Arc<dyn Clock>,
    pub provider: Arc<dyn Provider>,
    pub templates: Arc<Templates>,
    pub agenda: Arc<dyn Agenda>,
    /// Sites whose provider differs from the default one.
    pub site_providers: HashMap<String, Arc<dyn Provider>>,
    /// Sites whose agenda is a FHIR server (else the built-in agenda).
    pub site_agendas: HashMap<String, Arc<FhirAgenda>>,
}

impl Engine {
    pub fn new(
        db: Db,
        settings: Arc<Settings>,
        clock: Arc<dyn Clock>,
        provider: Arc<dyn Provider>,
        templates: Arc<Templates>,
    ) -> Engine {
        let agenda: Arc<dyn Agenda> = Arc::new(BuiltinAgenda::new(db.clone(), clock.clone()));
        Engine {
            db,
            settings,
            clock,
            provider,
            templates,
            agenda,
            site_providers: HashMap::new(),
            site_agendas: HashMap::new(),
        }
    }

    /// Connects the FHIR agendas of the sites that have one.
    pub fn with_fhir_agendas(mut self) -> Result<Engine> {
        for site in self.settings.sites.values() {
            if let Some(f) = &site.fhir {
                self.site_agendas.insert(
                    site.id.clone(),
                    Arc::new(FhirAgenda::new(f.clone(), self.db.clone())?),
                );
            }
        }
        Ok(self)
    }

    /// What each site's agenda connector can do (logged at start-up).
    pub fn agenda_capabilities(&self) -> Vec<(String, Capabilities)> {
        self.settings
            .sites
            .keys()
            .map(|id| (id.clone(), self.agenda_for(id).capabilities()))
            .collect()
    }

    fn agenda_for(&self, site_id: &str) -> &dyn Agenda {
        match self.site_agendas.get(site_id) {
            Some(a) => a.as_ref(),
            None => self.agenda.as_ref(),
        }
    }

    /// The provider that serves a site.
    pub fn provider_for(&self, site_id: &str) -> &Arc<dyn Provider> {
        self.site_providers.get(site_id).unwrap_or(&self.provider)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn site(&self, id: &str) -> Result<&Site> {
        self.settings
            .site(id)
            .with_context(|| format!("site '{id}' is not in the configuration"))
    }

    fn policy(&self, name: &str) -> Result<&Policy> {
        self.settings
            .policies
            .get(name)
            .with_context(|| format!("policy '{name}' is not in the configuration"))
    }

    pub async fn campaign_by_id(&self, id: i64) -> Result<Option<campaigns::CampaignRow>> {
        campaigns::by_id(&self.db, id).await
    }

    /// Plans, dispatches every due step, drains the outbox and recovers acknowledgements until
    /// nothing is left to do at the current instant. Tests, the demo and the bench use it; the
    /// server runs the same pieces on timers and through the queue.
    pub async fn run_until_idle(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let mut n = self.plan().await?.opened;
            loop {
                let (ids, token) = self.claim_due(self.settings.worker.batch_size).await?;
                if ids.is_empty() {
                    break;
                }
                n += self.run_batch(&ids, &token).await?;
            }
            n += self.drain_outbox().await?;
            n += self.recover_acks().await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// The earliest instant at which something will be due (a step or an outbox retry).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(campaigns::next_due(&self.db).await?.map(from_unix))
    }
}

/// Fault injection for the crash tests, compiled only with the `crash-points` feature (never in
/// the shipped binary): `RAPPEL_TEST_CRASH_POINT=after_record|after_send` aborts the process at
/// that instant of the first batch that reaches it, as a power cut or a `kill -9` would.
#[cfg(feature = "crash-points")]
fn crash_point(point: &str) {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let configured = POINT.get_or_init(|| std::env::var("RAPPEL_TEST_CRASH_POINT").ok());
    if configured.as_deref() == Some(point) {
        eprintln!("crash point {point} reached: aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "crash-points"))]
fn crash_point(_point: &str) {}

/// The client reference of an attempt, sent to the provider and used to reconcile.
fn attempt_key(campaign: i64, step: i64, attempt: i64) -> String {
    format!("c{campaign}-s{step}-a{attempt}")
}
