//! The shell around the pure core: it reads rows, asks `campaign::decide`, and carries out the
//! commands — in the database, through the provider, and through the agenda outbox.
//!
//! Guarantees, and how each is kept:
//! - **No double send.** An attempt row is committed under (campaign, step, attempt) before the
//!   provider is called. A claimed step that finds its attempt already `sending` (a crash
//!   between the two) asks the provider (`find`) instead of sending again.
//! - **No lost step.** A step is `campaigns.due_at`. The dispatcher claims due campaigns with a
//!   lease and a token; a claim that is not finished when the lease runs out (crash, lost queue
//!   job) is claimed again. Jobs are only a way to hand batches to workers.
//! - **Never lose a release.** Confirmations and releases are outbox rows written in the same
//!   transaction as the state change, applied at once and retried with backoff until done; after
//!   `outbox_max_tries` a secretary gets a note.
//! - **Idempotent replies.** A reply is keyed by the provider's message id; a replay changes
//!   nothing.
//!
//! Throughput comes from batches: one claim, one load, one transaction for the attempts, one
//! provider round, one transaction for outcomes and the ledger, per batch of up to 500 campaigns.

use crate::agenda::{Agenda, AgendaError, BuiltinAgenda};
use crate::clock::Clock;
use crate::config::{Settings, Site};
use crate::domain::campaign::{
    self, Ack, Campaign, Command, Event, NoteReason, SendFailure, Transition, Upstream,
};
use crate::domain::policy::from_unix;
use crate::domain::reply::{self, Classification, Flag, Intent};
use crate::domain::types::{CampaignState, Channel, PhoneNumber, mask_phone};
use crate::provider::{Accepted, Outbound, Provider, ProviderError, WhatsappTemplate};
use crate::store::{Backend, Db, Tx, opt_text, placeholders};
use crate::templates::{self, ApptView, MessageContext, Templates};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Step number used for acknowledgement attempts (their attempt number is the reply id).
pub const ACK_STEP: i64 = 1000;
/// Replies are stored up to this many characters (a 5,000-character reply is kept whole).
const MAX_REPLY_CHARS: usize = 8_000;

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
    pub site_agendas: HashMap<String, Arc<crate::fhir::FhirAgenda>>,
}

/// One campaign with what the dispatcher and the reply path need of its appointment.
#[derive(Debug, Clone)]
pub struct CampaignRow {
    pub id: i64,
    pub appointment_id: i64,
    pub appointment_version: i64,
    pub site_id: String,
    pub policy: String,
    pub phone: Option<String>,
    pub lead_id: Option<i64>,
    pub state: CampaignState,
    pub step: i64,
    pub attempt: i64,
    pub due_at: Option<i64>,
    pub starts_at: i64,
    pub exam_code: String,
    pub locale: String,
    pub channel_pref: Channel,
}

const CAMPAIGN_COLUMNS: &str = "c.id, c.appointment_id, c.appointment_version, c.site_id, c.policy, c.phone, \
     c.lead_id, c.state, c.step, c.attempt, c.due_at, a.starts_at, a.exam_code, a.locale, a.channel_pref";

impl CampaignRow {
    fn from_row(r: &AnyRow) -> Result<CampaignRow> {
        let state: String = r.try_get("state")?;
        let pref: String = r.try_get("channel_pref")?;
        Ok(CampaignRow {
            id: r.try_get("id")?,
            appointment_id: r.try_get("appointment_id")?,
            appointment_version: r.try_get("appointment_version")?,
            site_id: r.try_get("site_id")?,
            policy: r.try_get("policy")?,
            phone: opt_text(r, "phone"),
            lead_id: r.try_get::<Option<i64>, _>("lead_id")?,
            state: CampaignState::parse(&state)
                .with_context(|| format!("unknown campaign state '{state}'"))?,
            step: r.try_get("step")?,
            attempt: r.try_get("attempt")?,
            due_at: r.try_get::<Option<i64>, _>("due_at")?,
            starts_at: r.try_get("starts_at")?,
            exam_code: r.try_get("exam_code")?,
            locale: r.try_get("locale")?,
            channel_pref: Channel::parse(&pref).unwrap_or(Channel::Sms),
        })
    }

    fn mobile(&self) -> bool {
        self.phone
            .as_deref()
            .and_then(|p| PhoneNumber::parse(p).ok())
            .is_some_and(|p| p.is_mobile())
    }

    fn core(&self) -> Campaign {
        Campaign {
            state: self.state,
            step: self.step.max(0) as u32,
            attempt: self.attempt.max(0) as u32,
            appointment_start: from_unix(self.starts_at),
            preferred: self.channel_pref,
            mobile: self.mobile(),
        }
    }
}

/// An inbound message from a patient (SMS or WhatsApp), as the provider or the sandbox hands it.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub provider_id: String,
    pub from: PhoneNumber,
    pub channel: Channel,
    pub body: String,
    /// A WhatsApp quick-reply button or a keypad choice: the intent is known, not guessed.
    pub intent: Option<Intent>,
    /// The campaign the reply belongs to when the channel says so (a call's TwiML session).
    pub campaign_id: Option<i64>,
}

impl Inbound {
    /// A text reply whose meaning the classifier decides.
    pub fn text(
        provider_id: impl Into<String>,
        from: PhoneNumber,
        channel: Channel,
        body: impl Into<String>,
    ) -> Inbound {
        Inbound {
            provider_id: provider_id.into(),
            from,
            channel,
            body: body.into(),
            intent: None,
            campaign_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InboundOutcome {
    pub duplicate: bool,
    pub campaign_id: Option<i64>,
    pub intent: Intent,
    pub state: Option<CampaignState>,
}

/// A send the shell must make after its transaction commits.
#[derive(Debug, Clone)]
struct PendingSend {
    campaign: CampaignRow,
    step: i64,
    attempt: i64,
    outbound: Outbound,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct PlanReport {
    pub opened: usize,
    pub expired: usize,
}

impl Engine {
    pub fn new(
        db: Db,
        settings: Arc<Settings>,
        clock: Arc<dyn Clock>,
        provider: Arc<dyn Provider>,
        templates: Arc<Templates>,
    ) -> Engine {
        let agenda: Arc<dyn Agenda> = Arc::new(BuiltinAgenda::new(db.clone()));
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
                    Arc::new(crate::fhir::FhirAgenda::new(f.clone(), self.db.clone())?),
                );
            }
        }
        Ok(self)
    }

    /// What each site's agenda connector can do (logged at start-up).
    pub fn agenda_capabilities(&self) -> Vec<(String, crate::agenda::Capabilities)> {
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

    /// Reads every FHIR site's window into the local copy. A site whose server is down is
    /// skipped (logged) and read again at the next tick.
    pub async fn sync_agendas(&self) -> usize {
        let mut changed = 0;
        for (site_id, agenda) in &self.site_agendas {
            let Some(site) = self.settings.site(site_id) else {
                continue;
            };
            match crate::fhir::sync_site(self, site, &agenda.client).await {
                Ok(r) => {
                    changed +=
                        r.import.created + r.import.moved + r.import.cancelled + r.closed_upstream
                }
                Err(e) => {
                    tracing::warn!(site = %site_id, error = %format!("{e:#}"), "FHIR agenda unavailable; will read it again")
                }
            }
        }
        changed
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

    // -----------------------------------------------------------------------------------------
    // Planner

    /// Opens a campaign for every booked appointment whose confirmation window has opened and
    /// that has none for its current version, and expires campaigns whose appointment started.
    /// Idempotent (the unique (appointment, version) key) and catching up by construction: it
    /// reads the agenda, not a timer's history.
    pub async fn plan(&self) -> Result<PlanReport> {
        self.sync_agendas().await;
        let now = self.now();
        let horizon = now + Duration::days(i64::from(self.settings.horizon_days) + 1);
        let mut report = PlanReport::default();
        // Keyset pages on (starts_at, id): the starts_at index serves every page.
        let (mut after_start, mut after_id) = (now.timestamp(), i64::MAX);
        loop {
            let rows = sqlx::query(
                "SELECT a.id, a.site_id, a.exam_code, a.starts_at, a.phone, a.version, a.channel_pref \
                 FROM appointments a \
                 WHERE a.status = 'booked' AND a.starts_at <= $1 \
                   AND (a.starts_at > $2 OR (a.starts_at = $2 AND a.id > $3)) \
                   AND NOT EXISTS (SELECT 1 FROM campaigns c \
                                   WHERE c.appointment_id = a.id AND c.appointment_version = a.version) \
                 ORDER BY a.starts_at, a.id LIMIT 1000",
            )
            .bind(horizon.timestamp())
            .bind(after_start)
            .bind(after_id)
            .fetch_all(&self.db.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after_start = last.try_get("starts_at")?;
            after_id = last.try_get("id")?;
            report.opened += self.open_campaigns(&rows, now).await?;
            if rows.len() < 1000 {
                break;
            }
        }
        report.expired = self.expire_started(now).await?;
        Ok(report)
    }

    async fn open_campaigns(&self, rows: &[AnyRow], now: DateTime<Utc>) -> Result<usize> {
        struct Candidate {
            appointment_id: i64,
            version: i64,
            site_id: String,
            policy: String,
            phone: Option<String>,
            group_key: Option<String>,
            starts_at: i64,
            channel_pref: Channel,
        }
        let mut candidates = Vec::new();
        for r in rows {
            let site_id: String = r.try_get("site_id")?;
            let Some(site) = self.settings.site(&site_id) else {
                tracing::warn!(site = %site_id, "appointment of a site missing from the configuration; skipped");
                continue;
            };
            let exam: String = r.try_get("exam_code")?;
            let policy = self.settings.policy_for(site, &exam);
            let starts_at: i64 = r.try_get("starts_at")?;
            if now < policy.opens_at(site.tz, from_unix(starts_at)) {
                continue;
            }
            let phone = opt_text(r, "phone");
            let group_key = phone.as_ref().map(|p| {
                format!(
                    "{site_id}|{p}|{}",
                    site.calendars.local_day(from_unix(starts_at))
                )
            });
            candidates.push(Candidate {
                appointment_id: r.try_get("id")?,
                version: r.try_get("version")?,
                site_id,
                policy: policy.name.clone(),
                phone,
                group_key,
                starts_at,
                channel_pref: Channel::parse(&r.try_get::<String, _>("channel_pref")?)
                    .unwrap_or(Channel::Sms),
            });
        }
        if candidates.is_empty() {
            return Ok(0);
        }
        // Existing leads of the same patient and day that have not sent yet: join their message.
        let keys: Vec<&String> = candidates
            .iter()
            .filter_map(|c| c.group_key.as_ref())
            .collect();
        let mut leads: HashMap<String, (i64, i64)> = HashMap::new();
        for chunk in keys.chunks(500) {
            let sql = format!(
                "SELECT c.id, c.group_key, a.starts_at FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
                 WHERE c.lead_id IS NULL AND c.state = 'scheduled' AND c.group_key IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in chunk {
                q = q.bind((*k).clone());
            }
            for r in q.fetch_all(&self.db.pool).await? {
                leads.insert(
                    r.try_get("group_key")?,
                    (r.try_get("id")?, r.try_get("starts_at")?),
                );
            }
        }
        // Leads first (their ids are needed by same-day followers), then followers; each group
        // is one multi-row insert per chunk, and the ledger rows one more.
        struct NewCampaign {
            c: Candidate,
            state: CampaignState,
            due_at: Option<i64>,
            lead_key: Option<String>,
            lead_id: Option<i64>,
            note: bool,
        }
        let mut in_batch: HashSet<String> = HashSet::new();
        let mut leads_new = Vec::new();
        let mut followers = Vec::new();
        for c in candidates {
            let site = self.site(&c.site_id)?;
            let existing = c
                .group_key
                .as_ref()
                .and_then(|k| leads.get(k))
                .map(|(id, _)| *id);
            if c.phone.is_none() {
                leads_new.push(NewCampaign {
                    c,
                    state: CampaignState::InvalidContact,
                    due_at: None,
                    lead_key: None,
                    lead_id: None,
                    note: true,
                });
            } else if existing.is_some()
                || c.group_key.as_ref().is_some_and(|k| in_batch.contains(k))
            {
                let lead_key = c.group_key.clone();
                followers.push(NewCampaign {
                    c,
                    state: CampaignState::Scheduled,
                    due_at: None,
                    lead_key,
                    lead_id: existing,
                    note: false,
                });
            } else {
                let policy = &self.settings.policies[&c.policy];
                let mobile = c
                    .phone
                    .as_deref()
                    .and_then(|p| PhoneNumber::parse(p).ok())
                    .is_some_and(|p| p.is_mobile());
                let core = Campaign {
                    state: CampaignState::Scheduled,
                    step: 0,
                    attempt: 0,
                    appointment_start: from_unix(c.starts_at),
                    preferred: c.channel_pref,
                    mobile,
                };
                let t = campaign::decide(&core, &Event::Opened, now, policy, &site.calendars);
                let due = t.commands.iter().find_map(|cmd| match cmd {
                    Command::Schedule { at, .. } => Some(at.timestamp()),
                    _ => None,
                });
                if t.state == CampaignState::Scheduled
                    && let Some(k) = &c.group_key
                {
                    in_batch.insert(k.clone());
                }
                let note = t.state == CampaignState::Unreachable;
                leads_new.push(NewCampaign {
                    c,
                    state: t.state,
                    due_at: due,
                    lead_key: None,
                    lead_id: None,
                    note,
                });
            }
        }
        fn values_of(n: &NewCampaign) -> CampaignValues<'_> {
            let c = &n.c;
            (
                c.appointment_id,
                c.version,
                &c.site_id,
                &c.policy,
                &c.phone,
                &c.group_key,
                n.lead_id,
                n.state,
                n.due_at,
            )
        }
        let mut tx = self.db.begin().await?;
        let mut opened: Vec<(i64, &NewCampaign)> = Vec::new();
        let mut lead_ids: HashMap<String, i64> = HashMap::new();
        let inserted = insert_campaigns(&mut tx, &leads_new, now, values_of).await?;
        for n in &leads_new {
            if let Some(id) = inserted.get(&n.c.appointment_id) {
                if n.state == CampaignState::Scheduled
                    && let Some(k) = &n.c.group_key
                {
                    lead_ids.insert(k.clone(), *id);
                }
                opened.push((*id, n));
            }
        }
        for f in &mut followers {
            if f.lead_id.is_none() {
                f.lead_id = f.lead_key.as_ref().and_then(|k| lead_ids.get(k)).copied();
            }
        }
        let inserted = insert_campaigns(&mut tx, &followers, now, values_of).await?;
        for n in &followers {
            if let Some(id) = inserted.get(&n.c.appointment_id) {
                opened.push((*id, n));
            }
        }
        for chunk in opened.chunks(500) {
            let values = (0..chunk.len())
                .map(|i| {
                    format!(
                        "(${}, $1, 'opened', {})",
                        i * 3 + 2,
                        placeholders(i * 3 + 3, 2)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO events (campaign_id, at, kind, state, detail) VALUES {values}"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.timestamp());
            for (id, n) in chunk {
                let detail = n
                    .lead_id
                    .map(|l| format!("{{\"lead\":{l}}}"))
                    .unwrap_or_default();
                q = q.bind(*id).bind(n.state.as_str()).bind(detail);
            }
            q.execute(&mut *tx).await?;
        }
        for (id, n) in &opened {
            if n.note {
                let reason = if n.c.phone.is_none() {
                    NoteReason::InvalidContact
                } else {
                    NoteReason::Unreachable
                };
                insert_note(
                    &mut tx,
                    &n.c.site_id,
                    Some(*id),
                    None,
                    reason,
                    "",
                    now,
                    &format!("c{id}:{}", reason.as_str()),
                )
                .await?;
            }
        }
        let opened = opened.len();
        tx.commit().await?;
        Ok(opened)
    }

    async fn expire_started(&self, now: DateTime<Utc>) -> Result<usize> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
             WHERE c.state IN ('scheduled', 'awaiting_reply') AND a.starts_at <= $1 LIMIT 5000"
        )))
        .bind(now.timestamp())
        .fetch_all(&self.db.pool)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db.begin().await?;
        for r in &rows {
            let c = CampaignRow::from_row(r)?;
            self.apply(&mut tx, &c, &Event::Upstream(Upstream::Started), now, "")
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Applies an upstream change (moved, cancelled by the centre) to the active campaigns of an
    /// appointment, inside the import's transaction. A lead's followers are promoted to leads.
    pub async fn apply_upstream(
        &self,
        tx: &mut Tx,
        appointment_id: i64,
        change: Upstream,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
             WHERE c.appointment_id = $1 AND c.state NOT IN ('expired', 'cancelled_upstream')"
        )))
        .bind(appointment_id)
        .fetch_all(&mut **tx)
        .await?;
        for r in &rows {
            let c = CampaignRow::from_row(r)?;
            self.apply(tx, &c, &Event::Upstream(change), now, "")
                .await?;
            if c.lead_id.is_none() {
                self.promote_followers(tx, c.id, now).await?;
            }
        }
        Ok(())
    }

    async fn promote_followers(&self, tx: &mut Tx, lead_id: i64, now: DateTime<Utc>) -> Result<()> {
        let followers = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
             WHERE c.lead_id = $1 AND c.state IN ('scheduled', 'awaiting_reply') ORDER BY a.starts_at"
        )))
        .bind(lead_id)
        .fetch_all(&mut **tx)
        .await?;
        let mut new_lead: Option<i64> = None;
        for r in &followers {
            let f = CampaignRow::from_row(r)?;
            match new_lead {
                None => {
                    sqlx::query("UPDATE campaigns SET lead_id = NULL WHERE id = $1")
                        .bind(f.id)
                        .execute(&mut **tx)
                        .await?;
                    self.apply(
                        tx,
                        &CampaignRow {
                            lead_id: None,
                            ..f.clone()
                        },
                        &Event::Opened,
                        now,
                        "",
                    )
                    .await?;
                    new_lead = Some(f.id);
                }
                Some(l) => {
                    sqlx::query("UPDATE campaigns SET lead_id = $1 WHERE id = $2")
                        .bind(l)
                        .bind(f.id)
                        .execute(&mut **tx)
                        .await?;
                }
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Applying a transition

    /// Runs the state machine for one event and writes everything it decides, except sends
    /// (returned for the caller to make after commit; acknowledgements are recorded as attempts
    /// here so that a crash before sending is recovered).
    async fn apply(
        &self,
        tx: &mut Tx,
        c: &CampaignRow,
        event: &Event,
        now: DateTime<Utc>,
        detail: &str,
    ) -> Result<Transition> {
        let site = self.site(&c.site_id)?;
        let policy = self
            .settings
            .policies
            .get(&c.policy)
            .with_context(|| format!("policy '{}' is not in the configuration", c.policy))?;
        let t = campaign::decide(&c.core(), event, now, policy, &site.calendars);
        self.persist(tx, c, event.kind(), &t, now, detail).await?;
        Ok(t)
    }

    async fn persist(
        &self,
        tx: &mut Tx,
        c: &CampaignRow,
        kind: &str,
        t: &Transition,
        now: DateTime<Utc>,
        detail: &str,
    ) -> Result<()> {
        let due = Self::due_after(c, t);
        sqlx::query(
            "UPDATE campaigns SET state = $1, step = $2, attempt = $3, due_at = $4, claimed_until = NULL, \
             claim_token = NULL, updated_at = $5 WHERE id = $6",
        )
        .bind(t.state.as_str())
        .bind(i64::from(t.step))
        .bind(i64::from(t.attempt))
        .bind(due)
        .bind(now.timestamp())
        .bind(c.id)
        .execute(&mut **tx)
        .await?;
        ledger(tx, c.id, now, kind, t.state, detail).await?;
        self.persist_commands(tx, c, kind, t, now, detail).await
    }

    /// The due instant a transition leaves on the campaign.
    fn due_after(c: &CampaignRow, t: &Transition) -> Option<i64> {
        let mut due = c.due_at;
        for cmd in &t.commands {
            match cmd {
                Command::Schedule { at, .. } => due = Some(at.timestamp()),
                Command::Unschedule => due = None,
                _ => {}
            }
        }
        if t.state.is_active() { due } else { None }
    }

    /// Writes many transitions at once (the dispatcher's outcomes): one statement for the
    /// campaigns, one for the ledger, per chunk; commands row by row (rare on this path).
    async fn persist_many(
        &self,
        tx: &mut Tx,
        items: &[(CampaignRow, &'static str, Transition, String)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        for chunk in items.chunks(300) {
            let values = (0..chunk.len())
                .map(|i| format!("({})", placeholders(i * 5 + 2, 5)))
                .collect::<Vec<_>>()
                .join(", ");
            // VALUES columns are column1… on both engines.
            let sql = format!(
                "UPDATE campaigns SET state = v.column2, step = v.column3, attempt = v.column4, due_at = v.column5, \
                 claimed_until = NULL, claim_token = NULL, updated_at = $1 FROM (VALUES {values}) AS v \
                 WHERE campaigns.id = v.column1"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.timestamp());
            for (c, _, t, _) in chunk {
                q = q
                    .bind(c.id)
                    .bind(t.state.as_str())
                    .bind(i64::from(t.step))
                    .bind(i64::from(t.attempt))
                    .bind(Self::due_after(c, t));
            }
            q.execute(&mut **tx).await?;
            let values = (0..chunk.len())
                .map(|i| format!("(${}, $1, {})", i * 4 + 2, placeholders(i * 4 + 3, 3)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO events (campaign_id, at, kind, state, detail) VALUES {values}"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.timestamp());
            for (c, kind, t, detail) in chunk {
                q = q
                    .bind(c.id)
                    .bind(*kind)
                    .bind(t.state.as_str())
                    .bind(detail.clone());
            }
            q.execute(&mut **tx).await?;
        }
        for (c, kind, t, detail) in items {
            self.persist_commands(tx, c, kind, t, now, detail).await?;
        }
        Ok(())
    }

    async fn persist_commands(
        &self,
        tx: &mut Tx,
        c: &CampaignRow,
        kind: &str,
        t: &Transition,
        now: DateTime<Utc>,
        detail: &str,
    ) -> Result<()> {
        for cmd in &t.commands {
            match cmd {
                Command::ConfirmInAgenda | Command::ReleaseSlot => {
                    let action = if *cmd == Command::ConfirmInAgenda {
                        "confirm"
                    } else {
                        "release"
                    };
                    sqlx::query(
                        "INSERT INTO outbox (campaign_id, appointment_id, appointment_version, action, state, tries, \
                           next_try_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
                         ON CONFLICT (campaign_id, action) DO NOTHING",
                    )
                    .bind(c.id)
                    .bind(c.appointment_id)
                    .bind(c.appointment_version)
                    .bind(action)
                    .bind(now.timestamp())
                    .execute(&mut **tx)
                    .await?;
                }
                Command::Note(reason) => {
                    let key = format!(
                        "c{}:{}:{}:{}",
                        c.id,
                        reason.as_str(),
                        kind,
                        detail_key(detail)
                    );
                    insert_note(tx, &c.site_id, Some(c.id), None, *reason, "", now, &key).await?;
                }
                Command::RecordOptOut => {
                    if let Some(phone) = &c.phone {
                        record_opt_out(tx, phone, &c.site_id, "reply", now).await?;
                    }
                }
                _ => {}
            }
        }
        // A lead that closes without a reply takes its followers with it.
        if c.lead_id.is_none()
            && !t.state.is_active()
            && c.state.is_active()
            && matches!(
                t.state,
                CampaignState::Unreachable
                    | CampaignState::InvalidContact
                    | CampaignState::OptedOut
            )
        {
            sqlx::query(
                "UPDATE campaigns SET state = $1, due_at = NULL, updated_at = $2 \
                 WHERE lead_id = $3 AND state IN ('scheduled', 'awaiting_reply')",
            )
            .bind(t.state.as_str())
            .bind(now.timestamp())
            .bind(c.id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Dispatcher

    /// Claims up to `limit` due campaigns for `lease`; returns their ids and the claim token.
    pub async fn claim_due(&self, limit: usize) -> Result<(Vec<i64>, String)> {
        let now = self.now().timestamp();
        let until = now + self.settings.worker.claim_lease.num_seconds();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lock = match self.db.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE campaigns SET claimed_until = $1, claim_token = $2 WHERE id IN (\
               SELECT id FROM campaigns WHERE due_at IS NOT NULL AND due_at <= $3 \
               AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY due_at LIMIT $4{lock}) \
             RETURNING id"
        );
        let mut tx = self.db.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(until)
            .bind(token.clone())
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let ids = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((ids, token))
    }

    /// Runs the due step of each claimed campaign: decide, record attempts, send, record outcomes.
    pub async fn run_batch(&self, ids: &[i64], token: &str) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
             WHERE c.claim_token = $1 AND c.id IN ({})",
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(token.to_string());
        for id in ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.db.pool).await?;
        let campaigns: Vec<CampaignRow> = rows
            .iter()
            .map(CampaignRow::from_row)
            .collect::<Result<_>>()?;
        let campaigns: Vec<CampaignRow> = campaigns
            .into_iter()
            .filter(|c| c.state.is_active() && c.due_at.is_some_and(|d| d <= now.timestamp()))
            .collect();
        if campaigns.is_empty() {
            return Ok(0);
        }
        let phones: Vec<String> = campaigns
            .iter()
            .filter_map(|c| c.phone.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let touches = self.touches_since(&phones, now - Duration::days(2)).await?;
        let opted = self.opted_out(&phones).await?;
        let last_inbound = self.last_inbound(&phones).await?;
        let followers = self
            .followers_of(&campaigns.iter().map(|c| c.id).collect::<Vec<_>>())
            .await?;

        // Decide each due step; count touches made in this batch against the budget too.
        let mut extra: HashMap<(String, bool), Vec<i64>> = HashMap::new();
        let mut sends: Vec<PendingSend> = Vec::new();
        let mut no_send: Vec<(CampaignRow, Transition)> = Vec::new();
        for c in &campaigns {
            let site = self.site(&c.site_id)?;
            let policy = &self.settings.policies[&c.policy];
            let phone = c.phone.clone().unwrap_or_default();
            let (day_start, day_end) = site.calendars.local_day_bounds(now);
            let count = |message: bool| -> u32 {
                let stored = touches
                    .get(&phone)
                    .map(|v| {
                        v.iter()
                            .filter(|(ch, at)| {
                                ch.is_message() == message
                                    && *at >= day_start.timestamp()
                                    && *at < day_end.timestamp()
                            })
                            .count()
                    })
                    .unwrap_or(0);
                let batch = extra.get(&(phone.clone(), message)).map_or(0, Vec::len);
                (stored + batch) as u32
            };
            let step_channel = policy
                .steps
                .get(c.step as usize)
                .and_then(|s| s.channel.resolve(c.channel_pref, c.mobile()));
            let budget_ok =
                step_channel.is_none_or(|ch| policy.budget.allows(ch, count(true), count(false)));
            let opted_out = opted.contains(&(phone.clone(), c.site_id.clone()));
            let event = Event::StepDue {
                budget_ok,
                opted_out,
            };
            let t = campaign::decide(&c.core(), &event, now, policy, &site.calendars);
            let send = t.commands.iter().find_map(|cmd| match cmd {
                Command::Send {
                    channel,
                    template,
                    step,
                    attempt,
                } => Some((*channel, template.clone(), *step, *attempt)),
                _ => None,
            });
            match send {
                Some((channel, template, step, attempt)) => {
                    let to = PhoneNumber::parse(&phone)
                        .map_err(|e| anyhow::anyhow!("campaign {}: stored phone {e}", c.id))?;
                    let body =
                        self.render_request(c, site, &template, channel, followers.get(&c.id))?;
                    // WhatsApp: free text only within 24 h of the patient's last message; a
                    // conversation is opened with the site's approved template.
                    let wa_template = match (channel, site.whatsapp_templates.get(&c.locale)) {
                        (Channel::Whatsapp, Some(sid))
                            if last_inbound
                                .get(&phone)
                                .is_none_or(|t| *t < (now - Duration::hours(24)).timestamp()) =>
                        {
                            let (date, time) =
                                templates::date_time(site, &c.locale, from_unix(c.starts_at));
                            Some(WhatsappTemplate {
                                content_sid: sid.clone(),
                                variables: serde_json::json!({"1": site.name, "2": date, "3": time}),
                            })
                        }
                        _ => None,
                    };
                    extra
                        .entry((phone.clone(), channel.is_message()))
                        .or_default()
                        .push(c.id);
                    sends.push(PendingSend {
                        campaign: CampaignRow {
                            state: t.state,
                            ..c.clone()
                        },
                        step: i64::from(step),
                        attempt: i64::from(attempt),
                        outbound: Outbound {
                            client_ref: attempt_key(c.id, i64::from(step), i64::from(attempt)),
                            channel,
                            from: site.senders.get(&channel).cloned().unwrap_or_default(),
                            to,
                            body,
                            recorded_at: now,
                            template: wa_template,
                        },
                    });
                }
                None => no_send.push((c.clone(), t)),
            }
        }

        // Record every attempt before any provider call; find those that already exist.
        let mut tx = self.db.begin().await?;
        for (c, t) in &no_send {
            self.persist(&mut tx, c, "step_due", t, now, "").await?;
        }
        let existing = record_attempts(&mut tx, &mut sends, now, "request").await?;
        tx.commit().await?;
        crash_point("after_record");

        let (to_send, mut results) = self.reconcile(sends, existing).await;
        let sent = self.send_grouped(&to_send).await;
        crash_point("after_send");
        results.extend(to_send.into_iter().zip(sent));

        // Outcomes and follow-ups in one transaction.
        let mut tx = self.db.begin().await?;
        let mut writes = Vec::with_capacity(results.len());
        let mut attempt_rows = Vec::with_capacity(results.len());
        for (p, res) in &results {
            let c = &p.campaign;
            let site = self.site(&c.site_id)?;
            let policy = &self.settings.policies[&c.policy];
            let core = Campaign {
                step: p.step as u32,
                attempt: p.attempt as u32,
                ..c.core()
            };
            let (event, state, provider_id, code) = match res {
                Ok(a) => (Event::Sent, "sent", Some(a.provider_id.clone()), None),
                Err(e) => {
                    let (failure, state) = failure_of(e, now);
                    tracing::info!(campaign_id = c.id, step = p.step, attempt = p.attempt, error = %e, to = %p.outbound.to, "send failed");
                    (
                        Event::SendFailed(failure),
                        state,
                        None,
                        e.code().map(str::to_string),
                    )
                }
            };
            let t = campaign::decide(&core, &event, now, policy, &site.calendars);
            let detail = format!(
                "{{\"step\":{},\"attempt\":{},\"channel\":\"{}\"{}}}",
                p.step,
                p.attempt,
                p.outbound.channel,
                code.as_ref()
                    .map(|c| format!(",\"code\":\"{c}\""))
                    .unwrap_or_default()
            );
            attempt_rows.push((c.id, p.step, p.attempt, state, provider_id, code));
            let row = CampaignRow {
                step: p.step,
                attempt: p.attempt,
                ..c.clone()
            };
            writes.push((row, event.kind(), t, detail));
        }
        update_attempts(&mut tx, &attempt_rows, now).await?;
        self.persist_many(&mut tx, &writes, now).await?;
        tx.commit().await?;
        Ok(results.len() + no_send.len())
    }

    /// Attempts that were recorded before a crash: ask the provider before sending again.
    async fn reconcile(
        &self,
        sends: Vec<PendingSend>,
        existing: HashMap<String, (String, Option<String>)>,
    ) -> (
        Vec<PendingSend>,
        Vec<(PendingSend, Result<Accepted, ProviderError>)>,
    ) {
        let mut to_send = Vec::new();
        let mut done = Vec::new();
        for p in sends {
            match existing.get(&p.outbound.client_ref) {
                None => to_send.push(p),
                Some((state, _)) if state == "refused" => to_send.push(p),
                Some((state, _)) if state == "sending" => {
                    match self.provider.find(&p.outbound).await {
                        Ok(Some(a)) => {
                            tracing::info!(
                                campaign_id = p.campaign.id,
                                step = p.step,
                                attempt = p.attempt,
                                "attempt found at the provider after a crash: not sent again"
                            );
                            done.push((p, Ok(a)));
                        }
                        Ok(None) => to_send.push(p),
                        Err(e) => done.push((p, Err(e))),
                    }
                }
                Some((_, provider_id)) => {
                    let a = Accepted {
                        provider_id: provider_id.clone().unwrap_or_default(),
                    };
                    done.push((p, Ok(a)));
                }
            }
        }
        (to_send, done)
    }

    /// Sends each message through its site's provider, results in the input order.
    async fn send_grouped(&self, sends: &[PendingSend]) -> Vec<Result<Accepted, ProviderError>> {
        let mut groups: Vec<(&Arc<dyn Provider>, Vec<usize>)> = Vec::new();
        for (i, p) in sends.iter().enumerate() {
            let prov = self.provider_for(&p.campaign.site_id);
            match groups.iter_mut().find(|(g, _)| Arc::ptr_eq(g, prov)) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((prov, vec![i])),
            }
        }
        let mut out: Vec<Option<Result<Accepted, ProviderError>>> =
            (0..sends.len()).map(|_| None).collect();
        for (prov, idx) in groups {
            let batch: Vec<Outbound> = idx.iter().map(|i| sends[*i].outbound.clone()).collect();
            for (i, r) in idx.into_iter().zip(prov.send_batch(&batch).await) {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or(Err(ProviderError::Transient {
                    code: None,
                    retry_after: None,
                }))
            })
            .collect()
    }

    fn render_request(
        &self,
        c: &CampaignRow,
        site: &Site,
        template: &str,
        channel: Channel,
        followers: Option<&Vec<i64>>,
    ) -> Result<String> {
        let start = from_unix(c.starts_at);
        let (date, time) = templates::date_time(site, &c.locale, start);
        let mut appointments = vec![ApptView {
            date: date.clone(),
            time: time.clone(),
        }];
        for f in followers.into_iter().flatten() {
            let (d, t) = templates::date_time(site, &c.locale, from_unix(*f));
            appointments.push(ApptView { date: d, time: t });
        }
        appointments.sort_by(|a, b| a.time.cmp(&b.time));
        let preparation = if site.show_preparation && channel != Channel::Call {
            self.settings
                .exams
                .get(&c.exam_code)
                .map(|e| templates::preparation(e, &c.locale))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let ctx = MessageContext {
            centre: site.name.clone(),
            centre_phone: site
                .phone
                .as_ref()
                .map(|p| p.as_e164().to_string())
                .unwrap_or_default(),
            date,
            time,
            appointments,
            preparation,
            late: false,
        };
        self.templates.render(&c.locale, template, &ctx)
    }

    /// Rows of `sql` for a set of phone numbers, 500 at a time. `sql` gets the placeholder list
    /// (`$2, $3, …`); `$1` is `since`.
    async fn rows_by_phone(
        &self,
        sql: impl Fn(&str) -> String,
        since: i64,
        phones: &[String],
    ) -> Result<Vec<AnyRow>> {
        let mut out = Vec::new();
        for chunk in phones.chunks(500) {
            let mut q =
                sqlx::query(sqlx::AssertSqlSafe(sql(&placeholders(2, chunk.len())))).bind(since);
            for p in chunk {
                q = q.bind(p.clone());
            }
            out.extend(q.fetch_all(&self.db.pool).await?);
        }
        Ok(out)
    }

    async fn touches_since(
        &self,
        phones: &[String],
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, Vec<(Channel, i64)>>> {
        let rows = self
            .rows_by_phone(
                |ph| {
                    format!(
                        "SELECT phone, channel, created_at FROM attempts WHERE purpose = 'request' AND created_at >= $1 \
                         AND state <> 'refused' AND phone IN ({ph})"
                    )
                },
                since.timestamp(),
                phones,
            )
            .await?;
        let mut out: HashMap<String, Vec<(Channel, i64)>> = HashMap::new();
        for r in rows {
            let ch: String = r.try_get("channel")?;
            out.entry(r.try_get("phone")?).or_default().push((
                Channel::parse(&ch).unwrap_or(Channel::Sms),
                r.try_get("created_at")?,
            ));
        }
        Ok(out)
    }

    async fn opted_out(&self, phones: &[String]) -> Result<HashSet<(String, String)>> {
        let rows = self
            .rows_by_phone(
                |ph| format!("SELECT phone, site_id FROM opt_outs WHERE created_at >= $1 AND phone IN ({ph})"),
                i64::MIN,
                phones,
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("phone")?, r.try_get("site_id")?)))
            .collect()
    }

    /// When each number last wrote to us (Unix seconds).
    async fn last_inbound(&self, phones: &[String]) -> Result<HashMap<String, i64>> {
        let rows = self
            .rows_by_phone(
                |ph| {
                    format!(
                        "SELECT phone, MAX(received_at) AS t FROM replies WHERE received_at >= $1 \
                         AND phone IN ({ph}) GROUP BY phone"
                    )
                },
                i64::MIN,
                phones,
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("phone")?, r.try_get::<i64, _>("t")?)))
            .collect()
    }

    /// Start instants of the active followers of each lead.
    async fn followers_of(&self, leads: &[i64]) -> Result<HashMap<i64, Vec<i64>>> {
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        for chunk in leads.chunks(500) {
            let sql = format!(
                "SELECT c.lead_id, a.starts_at FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
                 WHERE c.state IN ('scheduled', 'awaiting_reply') AND c.lead_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.db.pool).await? {
                out.entry(r.try_get("lead_id")?)
                    .or_default()
                    .push(r.try_get("starts_at")?);
            }
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // Replies

    /// Handles one inbound message: classify, match the patient's campaign, act, acknowledge.
    /// Idempotent by provider id. Never logs the number or the text.
    pub async fn handle_inbound(&self, msg: Inbound) -> Result<InboundOutcome> {
        let now = self.now();
        let body: String = msg.body.chars().take(MAX_REPLY_CHARS).collect();
        let campaign = match msg.campaign_id {
            Some(id) => self.campaign_by_id(id).await?,
            None => self.campaign_for_reply(msg.from.as_e164()).await?,
        };
        let (vocab, lang) = match &campaign {
            Some(c) => (
                self.settings
                    .site(&c.site_id)
                    .map(|s| s.vocabulary.clone())
                    .unwrap_or_default(),
                reply::Lang::parse(&c.locale),
            ),
            None => (Default::default(), None),
        };
        let cls: Classification = match msg.intent {
            Some(intent) => Classification {
                intent,
                confidence: 1.0,
                flags: Vec::new(),
                reason: format!("{}: explicit choice (button or keypad)", intent.as_str()),
                lang: lang.unwrap_or(reply::Lang::Fr),
            },
            None => reply::classify(&body, lang, &vocab),
        };
        let late = cls.flags.contains(&Flag::Late);
        let mut tx = self.db.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO replies (provider_id, campaign_id, phone, channel, body, intent, confidence, reason, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (provider_id) DO NOTHING RETURNING id",
        )
        .bind(msg.provider_id.clone())
        .bind(campaign.as_ref().map(|c| c.id))
        .bind(msg.from.as_e164().to_string())
        .bind(msg.channel.as_str())
        .bind(body.clone())
        .bind(cls.intent.as_str())
        .bind(f64::from(cls.confidence))
        .bind(cls.reason.chars().take(200).collect::<String>())
        .bind(now.timestamp())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(inserted) = inserted else {
            tx.rollback().await?;
            return Ok(InboundOutcome {
                duplicate: true,
                campaign_id: campaign.map(|c| c.id),
                intent: cls.intent,
                state: None,
            });
        };
        let reply_id: i64 = inserted.try_get("id")?;
        let Some(lead) = campaign else {
            // Nobody to match: a secretary reads it; an explicit STOP is honoured everywhere.
            let site_id = self
                .settings
                .sites
                .keys()
                .next()
                .cloned()
                .unwrap_or_default();
            if cls.intent == Intent::OptOut {
                for site in self.settings.sites.keys() {
                    record_opt_out(
                        &mut tx,
                        msg.from.as_e164(),
                        site,
                        "reply_without_campaign",
                        now,
                    )
                    .await?;
                }
            }
            insert_note(
                &mut tx,
                &site_id,
                None,
                Some(reply_id),
                NoteReason::LateReply,
                "reply from a number with no campaign",
                now,
                &format!("r{reply_id}"),
            )
            .await?;
            tx.commit().await?;
            tracing::info!(reply_id, from = %msg.from, intent = cls.intent.as_str(), "reply from a number with no campaign: note written");
            return Ok(InboundOutcome {
                duplicate: false,
                campaign_id: None,
                intent: cls.intent,
                state: None,
            });
        };
        let event = Event::Reply {
            intent: cls.intent,
            late,
        };
        let detail = format!(
            "{{\"reply\":{reply_id},\"intent\":\"{}\",\"confidence\":{:.2}}}",
            cls.intent.as_str(),
            cls.confidence
        );
        let t = self.apply(&mut tx, &lead, &event, now, &detail).await?;
        sqlx::query("UPDATE campaigns SET last_intent = $1 WHERE id = $2")
            .bind(cls.intent.as_str())
            .bind(lead.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE notes SET reply_id = $1, detail = $2 WHERE campaign_id = $3 AND reply_id IS NULL AND created_at = $4")
            .bind(reply_id)
            .bind(body.clone())
            .bind(lead.id)
            .bind(now.timestamp())
            .execute(&mut *tx)
            .await?;
        // Same-day followers share the answer (their own agenda write-backs, no second ack).
        let followers = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns c JOIN appointments a ON a.id = c.appointment_id WHERE c.lead_id = $1"
        )))
        .bind(lead.id)
        .fetch_all(&mut *tx)
        .await?;
        for r in &followers {
            let f = CampaignRow::from_row(r)?;
            self.apply(&mut tx, &f, &event, now, &detail).await?;
        }
        let mut acks = Vec::new();
        for cmd in &t.commands {
            // On a call the acknowledgement is spoken by the call script itself.
            if msg.channel == Channel::Call {
                break;
            }
            if let Command::Acknowledge(ack) = cmd {
                let site = self.site(&lead.site_id)?;
                let body = self.render_ack(&lead, site, *ack)?;
                let channel = if msg.channel == Channel::Whatsapp {
                    Channel::Whatsapp
                } else {
                    Channel::Sms
                };
                acks.push(PendingSend {
                    campaign: lead.clone(),
                    step: ACK_STEP,
                    attempt: reply_id,
                    outbound: Outbound {
                        client_ref: attempt_key(lead.id, ACK_STEP, reply_id),
                        channel,
                        from: site.senders.get(&channel).cloned().unwrap_or_default(),
                        to: msg.from.clone(),
                        body,
                        recorded_at: now,
                        template: None,
                    },
                });
            }
        }
        record_attempts(&mut tx, &mut acks, now, "ack").await?;
        tx.commit().await?;
        tracing::info!(
            campaign_id = lead.id,
            reply_id,
            intent = cls.intent.as_str(),
            state = t.state.as_str(),
            "reply handled"
        );
        self.send_acks(acks).await?;
        self.drain_outbox_for(lead.id).await?;
        Ok(InboundOutcome {
            duplicate: false,
            campaign_id: Some(lead.id),
            intent: cls.intent,
            state: Some(t.state),
        })
    }

    fn render_ack(&self, c: &CampaignRow, site: &Site, ack: Ack) -> Result<String> {
        let (date, time) = templates::date_time(site, &c.locale, from_unix(c.starts_at));
        let ctx = MessageContext {
            centre: site.name.clone(),
            centre_phone: site
                .phone
                .as_ref()
                .map(|p| p.as_e164().to_string())
                .unwrap_or_default(),
            date,
            time,
            appointments: vec![],
            preparation: String::new(),
            late: matches!(ack, Ack::Confirmed { late: true }),
        };
        self.templates.render(&c.locale, ack.template(), &ctx)
    }

    async fn send_acks(&self, acks: Vec<PendingSend>) -> Result<()> {
        if acks.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let results = self.send_grouped(&acks).await;
        let mut tx = self.db.begin().await?;
        for (a, res) in acks.iter().zip(results) {
            let (state, id, code) = match &res {
                Ok(acc) => ("sent", Some(acc.provider_id.clone()), None),
                Err(e) => (failure_of(e, now).1, None, e.code().map(str::to_string)),
            };
            update_attempt(
                &mut tx,
                a.campaign.id,
                a.step,
                a.attempt,
                state,
                id.as_deref(),
                code.as_deref(),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Acknowledgements recorded but not confirmed sent (a crash, or a refusal): reconcile with
    /// the provider, then send what it does not have.
    pub async fn recover_acks(&self) -> Result<usize> {
        let now = self.now();
        let stale = now - self.settings.worker.claim_lease;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.step, t.attempt, t.channel, t.created_at, {CAMPAIGN_COLUMNS} FROM attempts t \
             JOIN campaigns c ON c.id = t.campaign_id JOIN appointments a ON a.id = c.appointment_id \
             WHERE t.purpose = 'ack' AND ((t.state = 'sending' AND t.updated_at < $1) OR (t.state = 'refused' AND t.updated_at < $2)) \
             LIMIT 500"
        )))
        .bind(stale.timestamp())
        .bind((now - Duration::minutes(5)).timestamp())
        .fetch_all(&self.db.pool)
        .await?;
        let mut acks = Vec::new();
        for r in &rows {
            let c = CampaignRow::from_row(r)?;
            let reply_id: i64 = r.try_get("attempt")?;
            let body = sqlx::query("SELECT intent FROM replies WHERE id = $1")
                .bind(reply_id)
                .fetch_optional(&self.db.pool)
                .await?;
            let Some(phone) = c.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok()) else {
                continue;
            };
            let site = self.site(&c.site_id)?;
            let intent = body
                .and_then(|b| b.try_get::<String, _>("intent").ok())
                .and_then(|i| Intent::parse(&i))
                .unwrap_or(Intent::Unclear);
            let ack = match (intent, c.state) {
                (Intent::OptOut, _) => Ack::OptOut,
                (_, CampaignState::Confirmed) => Ack::Confirmed { late: false },
                (_, CampaignState::Cancelled) => Ack::Cancelled,
                (_, CampaignState::RescheduleRequested) => Ack::Reschedule,
                _ => Ack::Holding,
            };
            let channel =
                Channel::parse(&r.try_get::<String, _>("channel")?).unwrap_or(Channel::Sms);
            let outbound = Outbound {
                client_ref: attempt_key(c.id, ACK_STEP, reply_id),
                channel,
                from: site.senders.get(&channel).cloned().unwrap_or_default(),
                to: phone,
                body: self.render_ack(&c, site, ack)?,
                recorded_at: from_unix(r.try_get("created_at")?),
                template: None,
            };
            acks.push(PendingSend {
                campaign: c,
                step: ACK_STEP,
                attempt: reply_id,
                outbound,
            });
        }
        let mut existing = HashMap::new();
        for a in &acks {
            existing.insert(a.outbound.client_ref.clone(), ("sending".to_string(), None));
        }
        let n = acks.len();
        let (to_send, found) = self.reconcile(acks, existing).await;
        let mut tx = self.db.begin().await?;
        for (a, res) in &found {
            if let Ok(acc) = res {
                update_attempt(
                    &mut tx,
                    a.campaign.id,
                    a.step,
                    a.attempt,
                    "sent",
                    Some(&acc.provider_id),
                    None,
                    now,
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.send_acks(to_send).await?;
        Ok(n)
    }

    pub async fn campaign_by_id(&self, id: i64) -> Result<Option<CampaignRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns c JOIN appointments a ON a.id = c.appointment_id WHERE c.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        row.as_ref().map(CampaignRow::from_row).transpose()
    }

    async fn campaign_for_reply(&self, phone: &str) -> Result<Option<CampaignRow>> {
        // The patient's open conversation first; else the latest campaign of the last 7 days
        // (a second reply after a confirm or a cancel).
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
             WHERE c.phone = $1 AND c.lead_id IS NULL AND c.updated_at >= $2 \
             ORDER BY CASE WHEN c.state = 'awaiting_reply' THEN 0 WHEN c.state = 'scheduled' THEN 2 ELSE 1 END, \
                      c.updated_at DESC, c.id DESC LIMIT 1"
        )))
        .bind(phone.to_string())
        .bind((self.now() - Duration::days(7)).timestamp())
        .fetch_optional(&self.db.pool)
        .await?;
        row.as_ref().map(CampaignRow::from_row).transpose()
    }

    // -----------------------------------------------------------------------------------------
    // Call outcomes and delivery statuses

    /// Records a provider status for an attempt (by provider id) and feeds `event`, if any, to
    /// its campaign. Statuses only move forward: a late or replayed callback changes nothing.
    pub async fn attempt_event(
        &self,
        provider_id: &str,
        event: Option<Event>,
        status: &str,
        error_code: Option<&str>,
    ) -> Result<bool> {
        let now = self.now();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.state AS attempt_state, t.step AS attempt_step, t.purpose, {CAMPAIGN_COLUMNS} \
             FROM attempts t JOIN campaigns c ON c.id = t.campaign_id JOIN appointments a ON a.id = c.appointment_id \
             WHERE t.provider_id = $1"
        )))
        .bind(provider_id.to_string())
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let c = CampaignRow::from_row(&row)?;
        let current: String = row.try_get("attempt_state")?;
        if !delivery_advances(&current, status) {
            return Ok(true);
        }
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query(
            "UPDATE attempts SET state = $1, error_code = COALESCE($2, error_code), updated_at = $3 \
             WHERE provider_id = $4 AND state = $5",
        )
        .bind(status.to_string())
        .bind(error_code.filter(|c| !c.is_empty()).map(str::to_string))
        .bind(now.timestamp())
        .bind(provider_id.to_string())
        .bind(current)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let step: i64 = row.try_get("attempt_step")?;
        let purpose: String = row.try_get("purpose")?;
        // Only the latest request moves the campaign; a late status of an older touch is recorded.
        if let Some(event) = event
            && moved == 1
            && purpose == "request"
            && (step == c.step || step + 1 == c.step)
        {
            let detail = format!(
                "{{\"status\":\"{status}\"{}}}",
                error_code
                    .filter(|c| !c.is_empty())
                    .map(|c| format!(",\"code\":\"{c}\""))
                    .unwrap_or_default()
            );
            let at_step = CampaignRow { step, ..c.clone() };
            self.apply(&mut tx, &at_step, &event, now, &detail).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    // -----------------------------------------------------------------------------------------
    // Agenda outbox

    /// Applies due outbox rows to the agenda; failures back off exponentially (base
    /// `outbox_backoff`, doubled per try, capped at one hour); after `outbox_max_tries` the row
    /// is `failed` and a secretary gets a note.
    pub async fn drain_outbox(&self) -> Result<usize> {
        let now = self.now();
        let rows = sqlx::query(
            "SELECT o.id, o.campaign_id, o.appointment_id, o.appointment_version, o.action, o.tries, c.site_id \
             FROM outbox o JOIN campaigns c ON c.id = o.campaign_id \
             WHERE o.state = 'pending' AND o.next_try_at <= $1 ORDER BY o.next_try_at LIMIT 500",
        )
        .bind(now.timestamp())
        .fetch_all(&self.db.pool)
        .await?;
        self.apply_outbox_rows(&rows, now).await
    }

    async fn drain_outbox_for(&self, campaign_id: i64) -> Result<usize> {
        let now = self.now();
        let rows = sqlx::query(
            "SELECT o.id, o.campaign_id, o.appointment_id, o.appointment_version, o.action, o.tries, c.site_id \
             FROM outbox o JOIN campaigns c ON c.id = o.campaign_id \
             WHERE o.state = 'pending' AND (o.campaign_id = $1 OR c.lead_id = $1)",
        )
        .bind(campaign_id)
        .fetch_all(&self.db.pool)
        .await?;
        self.apply_outbox_rows(&rows, now).await
    }

    async fn apply_outbox_rows(&self, rows: &[AnyRow], now: DateTime<Utc>) -> Result<usize> {
        let mut outcomes = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let appointment_id: i64 = r.try_get("appointment_id")?;
            let version: i64 = r.try_get("appointment_version")?;
            let action: String = r.try_get("action")?;
            let site_id: String = r.try_get("site_id")?;
            let agenda = self.agenda_for(&site_id);
            let res = if action == "confirm" {
                agenda.confirm(appointment_id, version).await
            } else {
                agenda.release(appointment_id, version).await
            };
            if res.is_ok() {
                // The local copy follows (the built-in agenda already did).
                let (to, from) = if action == "confirm" {
                    ("confirmed", "booked")
                } else {
                    ("cancelled", "booked', 'confirmed")
                };
                let sql = format!(
                    "UPDATE appointments SET status = '{to}' WHERE id = $1 AND version = $2 AND status IN ('{from}')"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(appointment_id)
                    .bind(version)
                    .execute(&self.db.pool)
                    .await?;
            }
            outcomes.push((id, r, res));
        }
        if outcomes.is_empty() {
            return Ok(0);
        }
        let w = &self.settings.worker;
        let mut tx = self.db.begin().await?;
        for (id, r, res) in &outcomes {
            let tries: i64 = r.try_get("tries")?;
            match res {
                Ok(()) => {
                    sqlx::query("UPDATE outbox SET state = 'done', tries = $1, done_at = $2, last_error = NULL WHERE id = $3 AND state = 'pending'")
                        .bind(tries + 1)
                        .bind(now.timestamp())
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                }
                Err(e) => {
                    let tries = tries + 1;
                    let permanent = matches!(e, AgendaError::Conflict(_) | AgendaError::NotFound);
                    if permanent || tries >= i64::from(w.outbox_max_tries) {
                        sqlx::query("UPDATE outbox SET state = 'failed', tries = $1, last_error = $2 WHERE id = $3")
                            .bind(tries)
                            .bind(e.to_string())
                            .bind(*id)
                            .execute(&mut *tx)
                            .await?;
                        let site_id: String = r.try_get("site_id")?;
                        let campaign_id: i64 = r.try_get("campaign_id")?;
                        sqlx::query(
                            "INSERT INTO notes (site_id, campaign_id, priority, reason, detail, state, created_at, dedup_key) \
                             VALUES ($1, $2, 2, 'agenda_write_failed', $3, 'open', $4, $5) ON CONFLICT (dedup_key) DO NOTHING",
                        )
                        .bind(site_id)
                        .bind(campaign_id)
                        .bind(format!("{}: {e}", r.try_get::<String, _>("action")?))
                        .bind(now.timestamp())
                        .bind(format!("outbox{id}"))
                        .execute(&mut *tx)
                        .await?;
                        tracing::warn!(outbox_id = id, campaign_id, error = %e, "agenda write-back gave up; note written");
                    } else {
                        let backoff = (w.outbox_backoff * (1i32 << (tries.min(12) - 1) as i32))
                            .min(Duration::hours(1));
                        sqlx::query("UPDATE outbox SET tries = $1, next_try_at = $2, last_error = $3 WHERE id = $4")
                            .bind(tries)
                            .bind((now + backoff).timestamp())
                            .bind(e.to_string())
                            .bind(*id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(outcomes.len())
    }

    // -----------------------------------------------------------------------------------------
    // Driving

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
        let r = sqlx::query(
            "SELECT MIN(t) AS t FROM (SELECT MIN(due_at) AS t FROM campaigns WHERE due_at IS NOT NULL \
             UNION ALL SELECT MIN(next_try_at) AS t FROM outbox WHERE state = 'pending') x",
        )
        .fetch_one(&self.db.pool)
        .await?;
        Ok(r.try_get::<Option<i64>, _>("t")?.map(from_unix))
    }
}

/// Fault injection for the crash tests: `RAPPEL_TEST_CRASH_POINT=after_record|after_send`
/// aborts the process at that instant of the first batch that reaches it, as a power cut or a
/// `kill -9` would. Unset in production.
fn crash_point(point: &str) {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let configured = POINT.get_or_init(|| std::env::var("RAPPEL_TEST_CRASH_POINT").ok());
    if configured.as_deref() == Some(point) {
        eprintln!("crash point {point} reached: aborting");
        std::process::abort();
    }
}

fn attempt_key(campaign: i64, step: i64, attempt: i64) -> String {
    format!("c{campaign}-s{step}-a{attempt}")
}

/// What a provider error means for the campaign, and the attempt's stored state: `refused`
/// means the provider certainly did not create it (the same key may be tried again).
fn failure_of(e: &ProviderError, now: DateTime<Utc>) -> (SendFailure, &'static str) {
    match e {
        ProviderError::Transient { retry_after, .. } => (
            SendFailure::Transient {
                retry_at: now + retry_after.unwrap_or(Duration::minutes(5)),
            },
            "refused",
        ),
        ProviderError::RateLimited { retry_after } => (
            SendFailure::Transient {
                retry_at: now + retry_after.unwrap_or(Duration::minutes(1)),
            },
            "refused",
        ),
        ProviderError::ChannelUnavailable { .. } => (SendFailure::ChannelUnavailable, "failed"),
        ProviderError::InvalidNumber { .. } => (SendFailure::InvalidNumber, "failed"),
        ProviderError::OptedOut { .. } => (SendFailure::OptedOut, "failed"),
        ProviderError::Configuration { .. } => (SendFailure::Configuration, "refused"),
    }
}

/// Delivery statuses only move forward: a late `sent` never undoes `delivered`.
pub fn delivery_advances(current: &str, next: &str) -> bool {
    fn rank(s: &str) -> u8 {
        match s {
            "sending" | "refused" => 0,
            "sent" => 1,
            "delivered" | "undelivered" | "failed" => 2,
            "read" => 3,
            _ => 0,
        }
    }
    rank(next) > rank(current)
}

type CampaignValues<'a> = (
    i64,
    i64,
    &'a String,
    &'a String,
    &'a Option<String>,
    &'a Option<String>,
    Option<i64>,
    CampaignState,
    Option<i64>,
);

/// Inserts new campaigns (ON CONFLICT DO NOTHING: re-planning is harmless); returns the new id
/// per appointment id.
async fn insert_campaigns<'a, T>(
    tx: &mut Tx,
    rows: &'a [T],
    now: DateTime<Utc>,
    values: impl Fn(&'a T) -> CampaignValues<'a>,
) -> Result<HashMap<i64, i64>> {
    let mut out = HashMap::new();
    for chunk in rows.chunks(200) {
        let sql_values = (0..chunk.len())
            .map(|i| format!("({}, 0, 0, $1, $1)", placeholders(i * 9 + 2, 9)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO campaigns (appointment_id, appointment_version, site_id, policy, phone, group_key, \
               lead_id, state, due_at, step, attempt, created_at, updated_at) VALUES {sql_values} \
             ON CONFLICT (appointment_id, appointment_version) DO NOTHING RETURNING id, appointment_id"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.timestamp());
        for r in chunk {
            let (appt, version, site, policy, phone, key, lead, state, due) = values(r);
            q = q
                .bind(appt)
                .bind(version)
                .bind(site.clone())
                .bind(policy.clone())
                .bind(phone.clone())
                .bind(key.clone())
                .bind(lead)
                .bind(state.as_str())
                .bind(due);
        }
        for r in q.fetch_all(&mut **tx).await? {
            out.insert(
                r.try_get::<i64, _>("appointment_id")?,
                r.try_get::<i64, _>("id")?,
            );
        }
    }
    Ok(out)
}

/// Inserts the attempts (ON CONFLICT DO NOTHING) and returns the state and provider id of those
/// that already existed, by client reference.
async fn record_attempts(
    tx: &mut Tx,
    sends: &mut [PendingSend],
    now: DateTime<Utc>,
    purpose: &str,
) -> Result<HashMap<String, (String, Option<String>)>> {
    let mut existing = HashMap::new();
    for chunk in sends.chunks_mut(400) {
        let values = (0..chunk.len())
            .map(|i| format!("({}, 'sending', $1, $1)", placeholders(i * 6 + 2, 6)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO attempts (campaign_id, step, attempt, channel, purpose, phone, state, created_at, updated_at) \
             VALUES {values} ON CONFLICT (campaign_id, step, attempt) DO NOTHING RETURNING campaign_id, step, attempt"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.timestamp());
        for p in chunk.iter() {
            q = q
                .bind(p.campaign.id)
                .bind(p.step)
                .bind(p.attempt)
                .bind(p.outbound.channel.as_str())
                .bind(purpose.to_string())
                .bind(p.outbound.to.as_e164().to_string());
        }
        let inserted: HashSet<(i64, i64, i64)> = q
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("campaign_id")?,
                    r.try_get("step")?,
                    r.try_get("attempt")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?;
        for p in chunk.iter_mut() {
            if inserted.contains(&(p.campaign.id, p.step, p.attempt)) {
                continue;
            }
            let r = sqlx::query("SELECT state, provider_id, created_at FROM attempts WHERE campaign_id = $1 AND step = $2 AND attempt = $3")
                .bind(p.campaign.id)
                .bind(p.step)
                .bind(p.attempt)
                .fetch_one(&mut **tx)
                .await?;
            let state: String = r.try_get("state")?;
            // Reconciliation looks for what the provider created since the first recording.
            p.outbound.recorded_at = from_unix(r.try_get("created_at")?);
            if state == "refused" {
                sqlx::query("UPDATE attempts SET state = 'sending', updated_at = $1 WHERE campaign_id = $2 AND step = $3 AND attempt = $4")
                    .bind(now.timestamp())
                    .bind(p.campaign.id)
                    .bind(p.step)
                    .bind(p.attempt)
                    .execute(&mut **tx)
                    .await?;
            }
            existing.insert(
                p.outbound.client_ref.clone(),
                (state, opt_text(&r, "provider_id")),
            );
        }
    }
    Ok(existing)
}

type AttemptOutcome = (i64, i64, i64, &'static str, Option<String>, Option<String>);

/// Records the outcome of many attempts in one statement per chunk.
async fn update_attempts(tx: &mut Tx, rows: &[AttemptOutcome], now: DateTime<Utc>) -> Result<()> {
    for chunk in rows.chunks(300) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * 6 + 2, 6)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE attempts SET state = v.column4, provider_id = COALESCE(v.column5, attempts.provider_id), \
             error_code = v.column6, updated_at = $1 FROM (VALUES {values}) AS v \
             WHERE attempts.campaign_id = v.column1 AND attempts.step = v.column2 AND attempts.attempt = v.column3"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.timestamp());
        for (c, step, attempt, state, provider_id, code) in chunk {
            q = q
                .bind(*c)
                .bind(*step)
                .bind(*attempt)
                .bind(*state)
                .bind(provider_id.clone())
                .bind(code.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn update_attempt(
    tx: &mut Tx,
    campaign: i64,
    step: i64,
    attempt: i64,
    state: &str,
    provider_id: Option<&str>,
    code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE attempts SET state = $1, provider_id = COALESCE($2, provider_id), error_code = $3, updated_at = $4 \
         WHERE campaign_id = $5 AND step = $6 AND attempt = $7",
    )
    .bind(state.to_string())
    .bind(provider_id.map(str::to_string))
    .bind(code.map(str::to_string))
    .bind(now.timestamp())
    .bind(campaign)
    .bind(step)
    .bind(attempt)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn ledger(
    tx: &mut Tx,
    campaign: i64,
    at: DateTime<Utc>,
    kind: &str,
    state: CampaignState,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (campaign_id, at, kind, state, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(campaign)
    .bind(at.timestamp())
    .bind(kind.to_string())
    .bind(state.as_str())
    .bind(detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_note(
    tx: &mut Tx,
    site_id: &str,
    campaign: Option<i64>,
    reply: Option<i64>,
    reason: NoteReason,
    detail: &str,
    now: DateTime<Utc>,
    dedup: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO notes (site_id, campaign_id, reply_id, priority, reason, detail, state, created_at, dedup_key) \
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8) ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(site_id.to_string())
    .bind(campaign)
    .bind(reply)
    .bind(i64::from(reason.priority()))
    .bind(reason.as_str())
    .bind(detail.to_string())
    .bind(now.timestamp())
    .bind(dedup.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_opt_out(
    tx: &mut Tx,
    phone: &str,
    site: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO opt_outs (phone, site_id, source, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (phone, site_id) DO NOTHING",
    )
    .bind(phone.to_string())
    .bind(site.to_string())
    .bind(source.to_string())
    .bind(now.timestamp())
    .execute(&mut **tx)
    .await?;
    tracing::info!(phone = %mask_phone(phone), site, "opt-out recorded");
    Ok(())
}

/// A short stable key from an event detail (the reply id when there is one).
fn detail_key(detail: &str) -> String {
    detail
        .split("\"reply\":")
        .nth(1)
        .and_then(|s| s.split([',', '}']).next())
        .map(|s| format!("r{s}"))
        .unwrap_or_default()
}

/// Counts for the summary and the admin API.
pub async fn state_counts(db: &Db) -> Result<BTreeMap<String, i64>> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM campaigns GROUP BY state")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
        .collect()
}
