//! The engine handle: what every part of the shell shares (database, settings, clock,
//! providers, templates, agendas), and the loop that drives them until idle.

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
/// The step of the holding message sent when an answer's agenda write-back is slow (the real
/// acknowledgement follows under [`ACK_STEP`]).
pub const ACK_HOLD_STEP: i64 = 1001;

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

    pub(super) fn agenda_for(&self, site_id: &str) -> &dyn Agenda {
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

    /// The real time, whatever the engine's clock says: claims (a lease is about a live
    /// process) and the provider's own timestamps count in it.
    pub fn wall_now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    pub(super) fn site(&self, id: &str) -> Result<&Site> {
        self.settings
            .site(id)
            .with_context(|| format!("site '{id}' is not in the configuration"))
    }

    pub(super) fn policy(&self, name: &str) -> Result<&Policy> {
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
pub(super) fn crash_point(point: &str) {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let configured = POINT.get_or_init(|| std::env::var("RAPPEL_TEST_CRASH_POINT").ok());
    if configured.as_deref() == Some(point) {
        eprintln!("crash point {point} reached: aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "crash-points"))]
pub(super) fn crash_point(_point: &str) {}

/// The client reference of an attempt, sent to the provider and used to reconcile.
pub(super) fn attempt_key(campaign: i64, step: i64, attempt: i64) -> String {
    format!("c{campaign}-s{step}-a{attempt}")
}
