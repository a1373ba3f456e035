//! The dispatcher: claims due campaigns, decides each due step (with the contact budget, the
//! opt-outs and WhatsApp's 24-hour rule from `domain::contact`), records every attempt before
//! the provider is called, reconciles attempts a crash left behind, and sends.
//!
//! Sending takes real time (a provider paces each sender at a few messages a second), so
//! nothing here waits for a whole batch:
//! - the claim is kept alive by a heartbeat while the batch works, in wall-clock time; a batch
//!   that lost a campaign's claim does not send to it;
//! - each message is checked again at its turn, right before it is handed over: the campaign
//!   must be at the version it was decided from (no reply, status or upstream change since),
//!   and the step must still be due now (window, budget, opt-out, deadline), else it is
//!   withheld and, when the step moved, rescheduled;
//! - each outcome is committed as soon as its send returns (results that are ready together
//!   share one transaction), with a transition that is written only if the campaign did not
//!   change meanwhile; a status that arrived before the outcome is applied right after it.

use super::shell::{Engine, attempt_key, crash_point};
use super::transition::Decided;
use crate::config::Site;
use crate::domain::campaign::{Command, Event, SendFailure, Transition};
use crate::domain::contact::{self, Touch};
use crate::domain::policy::{RATE_LIMITED_RETRY, TRANSIENT_RETRY, from_unix};
use crate::domain::types::{CampaignState, Channel, PhoneNumber};
use crate::provider::{Accepted, Outbound, Provider, ProviderError, WhatsappTemplate};
use crate::store::attempts::{self, NewAttempt, Outcome, StoredAttempt};
use crate::store::campaigns::{self, CampaignRow};
use crate::store::{Tx, opt_outs, replies};
use crate::templates::{self, ApptView, MessageContext};
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// How far back the dispatcher reads a number's touches: the budget's local day, whatever the
/// time zone.
const TOUCH_LOOKBACK: Duration = Duration::days(2);

/// A send the shell must make after its attempt is recorded.
#[derive(Debug, Clone)]
pub(super) struct PendingSend {
    /// The campaign as claimed, in the state the send leaves it in (awaiting a reply).
    pub campaign: CampaignRow,
    /// Its state when it was claimed (what the check at the send instant decides from).
    pub claimed_state: CampaignState,
    pub step: i64,
    pub attempt: i64,
    pub outbound: Outbound,
}

impl PendingSend {
    fn key(&self) -> AttemptKey {
        (self.campaign.id, self.step, self.attempt)
    }
}

/// What the dispatcher reads about the numbers and leads of a batch.
struct History {
    /// Request attempts per number, with their keys.
    touches: KeyedTouches,
    opted_out: HashSet<(String, String)>,
    last_inbound: HashMap<String, i64>,
    follower_starts: HashMap<i64, Vec<i64>>,
}

type SendResult = Result<Accepted, ProviderError>;

/// An attempt's key: (campaign, step, attempt).
type AttemptKey = (i64, i64, i64);
/// Request attempts per number, each with its key.
type KeyedTouches = HashMap<String, Vec<(AttemptKey, Touch)>>;

/// What became of a recorded attempt.
#[derive(Debug)]
enum Fate {
    /// Handed to the provider (or found there after a crash) at the instant given.
    Sent(SendResult, DateTime<Utc>),
    /// Not handed over: the campaign changed, or the claim was lost. The newer change stands.
    Withheld,
    /// Not handed over: at its turn the step was no longer due as decided (outside its window,
    /// over the day's budget, opted out, past the deadline); this is what it became.
    Redecided(Transition),
}

/// The claim a batch works under, kept alive by its heartbeat.
struct Claim {
    token: String,
    lease: std::time::Duration,
    /// Campaigns still held, and until when (monotonic clock) the last renewal holds them.
    held: Mutex<(HashSet<i64>, std::time::Instant)>,
    /// Whether some claimed campaign may be left without a written transition.
    left: std::sync::atomic::AtomicBool,
}

impl Claim {
    fn leaves_some(&self) {
        self.left.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Claim {
    /// Whether the batch may still send to this campaign: held, with at least a third of the
    /// lease left (the heartbeat renews every third).
    fn holds(&self, id: i64) -> bool {
        let held = self.held.lock().expect("claim lock");
        held.0.contains(&id) && std::time::Instant::now() + self.lease / 3 < held.1
    }

    fn renewed(&self, ids: HashSet<i64>, at: std::time::Instant) {
        *self.held.lock().expect("claim lock") = (ids, at + self.lease);
    }
}

impl Engine {
    /// Claims up to `limit` due campaigns for the lease; returns their ids and the claim token.
    pub async fn claim_due(&self, limit: usize) -> Result<(Vec<i64>, String)> {
        let now = self.now().timestamp();
        let wall = self.wall_now().timestamp();
        let until = wall + self.settings.worker.claim_lease.num_seconds();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let ids = campaigns::claim_due(&self.db, now, wall, until, &token, limit as i64).await?;
        Ok((ids, token))
    }

    /// Runs the due step of each claimed campaign: decide, record attempts, send each at its
    /// turn, record each outcome as it comes. The claim is renewed until the batch is done,
    /// then released.
    pub async fn run_batch(&self, ids: &[i64], token: &str) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let lease = self
            .settings
            .worker
            .claim_lease
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(120));
        let claim = Claim {
            token: token.to_string(),
            lease,
            held: Mutex::new((HashSet::new(), std::time::Instant::now())),
            left: std::sync::atomic::AtomicBool::new(false),
        };
        // A job delivered late, or twice, finds its claim gone and does nothing.
        self.renew(&claim).await?;
        let result = tokio::select! {
            r = self.run_claimed(ids, &claim) => r,
            never = self.heartbeat(&claim) => match never {},
        };
        // Every written transition released its campaign's claim; what is left (a campaign
        // found not due, a send withheld, a transition that lost to a newer change) is released
        // here rather than left to run out.
        if claim.left.load(std::sync::atomic::Ordering::Relaxed) {
            campaigns::release_claim(&self.db, token).await?;
        }
        result
    }

    async fn renew(&self, claim: &Claim) -> Result<()> {
        let at = std::time::Instant::now();
        let until = self.wall_now().timestamp() + claim.lease.as_secs().max(1) as i64;
        let held = campaigns::renew_claim(&self.db, &claim.token, until).await?;
        claim.renewed(held, at);
        Ok(())
    }

    /// Renews the claim every third of the lease, in real time, for as long as it is polled.
    async fn heartbeat(&self, claim: &Claim) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(claim.lease / 3).await;
            if let Err(e) = self.renew(claim).await {
                // Not renewed: the claim runs out, and the batch stops sending when it does.
                tracing::warn!(error = %format!("{e:#}"), "could not renew a batch's claim");
            }
        }
    }

    async fn run_claimed(&self, ids: &[i64], claim: &Claim) -> Result<usize> {
        let now = self.now();
        let rows = campaigns::claimed(&self.db, &claim.token, ids).await?;
        let n_rows = rows.len();
        let claimed: Vec<CampaignRow> = rows
            .into_iter()
            .filter(|c| c.state.is_active() && c.due_at.is_some_and(|d| d <= now.timestamp()))
            .collect();
        if claimed.len() < n_rows {
            claim.leaves_some();
        }
        if claimed.is_empty() {
            return Ok(0);
        }
        let history = self.history(&claimed, now).await?;
        let (mut sends, no_send) = self.decide_steps(&claimed, history, now)?;

        // Record every attempt before any provider call; find those that already exist.
        let mut tx = self.db.begin().await?;
        if !self.persist(&mut tx, &no_send, now).await?.is_empty() {
            claim.leaves_some();
        }
        let existing =
            record_attempts(&mut tx, &mut sends, now, self.wall_now(), "request").await?;
        tx.commit().await?;
        crash_point("after_record");

        let n = sends.len() + no_send.len();
        let (to_send, found) = self.reconcile(sends, existing).await;
        let found = found
            .into_iter()
            .map(|(p, r)| {
                let at = self.send_instant(&p, &r);
                (p, Fate::Sent(r, at))
            })
            .collect();
        if self.record_fates(found).await? {
            claim.leaves_some();
        }
        self.send_each(to_send, claim).await?;
        Ok(n)
    }

    /// When a send found at the provider after a crash went out, on the engine's clock: the
    /// provider's creation time when it gave one (within the attempt's life), else the instant
    /// the attempt was recorded. The next step is scheduled from there, not from the recovery.
    fn send_instant(&self, p: &PendingSend, r: &SendResult) -> DateTime<Utc> {
        let now = self.now();
        let recorded = p.outbound.recorded_at.min(now);
        match r {
            Ok(Accepted {
                created_at: Some(at),
                ..
            }) => (now - (self.wall_now() - *at)).clamp(recorded, now),
            _ => recorded,
        }
    }

    async fn history(&self, batch: &[CampaignRow], now: DateTime<Utc>) -> Result<History> {
        let phones: Vec<String> = batch
            .iter()
            .filter_map(|c| c.phone.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let leads: Vec<i64> = batch.iter().map(|c| c.id).collect();
        Ok(History {
            touches: self.touches(&phones, now).await?,
            opted_out: opt_outs::of_phones(&self.db, &phones).await?,
            last_inbound: replies::last_inbound(&self.db, &phones).await?,
            follower_starts: campaigns::follower_starts(&self.db, &leads).await?,
        })
    }

    /// Request attempts to these numbers within the budget's reach, by number, with their keys.
    async fn touches(&self, phones: &[String], now: DateTime<Utc>) -> Result<KeyedTouches> {
        let since = (now - TOUCH_LOOKBACK).timestamp();
        let mut touches: HashMap<String, Vec<_>> = HashMap::new();
        for t in attempts::requests_since(&self.db, phones, since).await? {
            touches.entry(t.phone).or_default().push((
                (t.campaign_id, t.step, t.attempt),
                Touch {
                    channel: t.channel,
                    at: t.created_at,
                },
            ));
        }
        Ok(touches)
    }

    /// Decides each due step; a touch decided in this batch counts against the budget of the
    /// next one to the same number. A campaign's own attempt for this very step (recorded
    /// before a crash) is not a touch of its own budget.
    fn decide_steps(
        &self,
        batch: &[CampaignRow],
        mut history: History,
        now: DateTime<Utc>,
    ) -> Result<(Vec<PendingSend>, Vec<Decided>)> {
        let mut sends = Vec::new();
        let mut no_send = Vec::new();
        for c in batch {
            let site = self.site(&c.site_id)?;
            let policy = self.policy(&c.policy)?;
            let phone = c.phone.clone().unwrap_or_default();
            let own = (c.id, c.step, c.attempt);
            let keyed = history.touches.entry(phone.clone()).or_default();
            let touches: Vec<Touch> = keyed
                .iter()
                .filter(|(k, _)| *k != own)
                .map(|(_, t)| *t)
                .collect();
            let opted_out = history
                .opted_out
                .contains(&(phone.clone(), c.site_id.clone()));
            let event =
                contact::step_due(&c.core(), policy, &site.calendars, now, &touches, opted_out);
            let t = self.decide(c, &event, now)?;
            let Some((channel, template, step, attempt)) = send_of(&t) else {
                no_send.push(Decided {
                    campaign: c.clone(),
                    kind: event.kind(),
                    transition: t,
                    detail: String::new(),
                    reply: None,
                });
                continue;
            };
            keyed.push((
                own,
                Touch {
                    channel,
                    at: now.timestamp(),
                },
            ));
            let to = PhoneNumber::parse(&phone)
                .map_err(|e| anyhow::anyhow!("campaign {}: stored phone {e}", c.id))?;
            let followers = history.follower_starts.get(&c.id);
            let body = self.render_request(c, site, &template, channel, followers)?;
            let wa_template = match (channel, site.whatsapp_templates.get(&c.locale)) {
                (Channel::Whatsapp, Some(sid))
                    if contact::whatsapp_needs_template(
                        history.last_inbound.get(&phone).copied(),
                        now,
                    ) =>
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
            sends.push(PendingSend {
                campaign: CampaignRow {
                    state: t.state,
                    ..c.clone()
                },
                claimed_state: c.state,
                step: i64::from(step),
                attempt: i64::from(attempt),
                outbound: Outbound {
                    client_ref: attempt_key(c.id, i64::from(step), i64::from(attempt)),
                    channel,
                    from: site.senders.get(&channel).cloned().unwrap_or_default(),
                    to,
                    body,
                    recorded_at: now,
                    recorded_wall: self.wall_now(),
                    template: wa_template,
                },
            });
        }
        Ok((sends, no_send))
    }

    /// Hands each message to its provider at its turn, checked right before; records each
    /// outcome as soon as it is known.
    async fn send_each(&self, sends: Vec<PendingSend>, claim: &Claim) -> Result<()> {
        if sends.is_empty() {
            return Ok(());
        }
        let (done, mut results) = mpsc::unbounded_channel::<(PendingSend, Fate)>();
        let producer = async move {
            let mut groups: Vec<(Arc<dyn Provider>, Vec<PendingSend>)> = Vec::new();
            for p in sends {
                let prov = self.provider_for(&p.campaign.site_id).clone();
                match groups.iter_mut().find(|(g, _)| Arc::ptr_eq(g, &prov)) {
                    Some((_, v)) => v.push(p),
                    None => groups.push((prov, vec![p])),
                }
            }
            let lanes = groups.into_iter().map(|(prov, group)| {
                let done = done.clone();
                async move {
                    if prov.sends_at_once() {
                        self.send_at_once(prov, group, claim, &done).await
                    } else {
                        self.send_at_turns(prov, group, claim, &done).await
                    }
                }
            });
            futures::future::join_all(lanes)
                .await
                .into_iter()
                .collect::<Result<Vec<()>>>()
        };
        let committer = async {
            while let Some(first) = results.recv().await {
                let mut ready = vec![first];
                while let Ok(more) = results.try_recv() {
                    ready.push(more);
                }
                if self.record_fates(ready).await? {
                    claim.leaves_some();
                }
            }
            Ok::<(), anyhow::Error>(())
        };
        let (sent, recorded) = tokio::join!(producer, committer);
        sent?;
        recorded
    }

    /// A provider that takes a batch at once (the sandbox): one check, one hand-over.
    async fn send_at_once(
        &self,
        prov: Arc<dyn Provider>,
        group: Vec<PendingSend>,
        claim: &Claim,
        done: &mpsc::UnboundedSender<(PendingSend, Fate)>,
    ) -> Result<()> {
        // The hand-over follows the decision within milliseconds: what can have changed is the
        // campaign (a reply, another worker), not the window or the day's budget.
        let (go, held) = self.check_unchanged(group, claim).await?;
        for h in held {
            let _ = done.send(h);
        }
        let batch: Vec<Outbound> = go.iter().map(|p| p.outbound.clone()).collect();
        let results = prov.send_batch(&batch).await;
        crash_point("after_send");
        let at = self.now();
        for (p, r) in go.into_iter().zip(results) {
            let _ = done.send((p, Fate::Sent(r, at)));
        }
        Ok(())
    }

    /// A paced provider: each sender's messages in order, each checked when its turn comes,
    /// then sent while the next one waits for its turn.
    async fn send_at_turns(
        &self,
        prov: Arc<dyn Provider>,
        group: Vec<PendingSend>,
        claim: &Claim,
        done: &mpsc::UnboundedSender<(PendingSend, Fate)>,
    ) -> Result<()> {
        let mut lanes: HashMap<String, Vec<PendingSend>> = HashMap::new();
        for p in group {
            lanes.entry(p.outbound.from.clone()).or_default().push(p);
        }
        let lanes = lanes.into_iter().map(|(from, lane)| {
            let prov = prov.clone();
            async move {
                let mut in_flight = tokio::task::JoinSet::new();
                for p in lane {
                    prov.wait_turn(&from).await;
                    let (go, held) = self.check_at_send(vec![p], claim).await?;
                    for h in held {
                        let _ = done.send(h);
                    }
                    for p in go {
                        let (prov, done, engine) = (prov.clone(), done.clone(), self.clone());
                        in_flight.spawn(async move {
                            let r = prov.send_now(&p.outbound).await;
                            crash_point("after_send");
                            let _ = done.send((p, Fate::Sent(r, engine.now())));
                        });
                    }
                }
                while in_flight.join_next().await.is_some() {}
                Ok::<(), anyhow::Error>(())
            }
        });
        futures::future::join_all(lanes)
            .await
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
        Ok(())
    }

    /// The check at the instant of sending: the claim still held, the campaign unchanged since
    /// the decision, and the step still due as decided (window, budget with the touches made
    /// meanwhile, opt-out, deadline). Returns what may go, and the fate of what may not.
    async fn check_at_send(
        &self,
        items: Vec<PendingSend>,
        claim: &Claim,
    ) -> Result<(Vec<PendingSend>, Vec<(PendingSend, Fate)>)> {
        let now = self.now();
        let (items, mut held) = self.check_unchanged(items, claim).await?;
        if items.is_empty() {
            return Ok((items, held));
        }
        let phones: Vec<String> = items
            .iter()
            .map(|p| p.outbound.to.as_e164().to_string())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let touches = self.touches(&phones, now).await?;
        let opted = opt_outs::of_phones(&self.db, &phones).await?;
        let mut go = Vec::new();
        for p in items {
            let c = CampaignRow {
                state: p.claimed_state,
                ..p.campaign.clone()
            };
            let phone = p.outbound.to.as_e164().to_string();
            let others: Vec<Touch> = touches
                .get(&phone)
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k != p.key())
                .map(|(_, t)| *t)
                .collect();
            let site = self.site(&c.site_id)?;
            let policy = self.policy(&c.policy)?;
            let opted_out = opted.contains(&(phone, c.site_id.clone()));
            let event =
                contact::step_due(&c.core(), policy, &site.calendars, now, &others, opted_out);
            let t = self.decide(&c, &event, now)?;
            let same = send_of(&t).is_some_and(|(ch, _, step, attempt)| {
                ch == p.outbound.channel
                    && i64::from(step) == p.step
                    && i64::from(attempt) == p.attempt
            });
            if same {
                go.push(p);
            } else {
                tracing::info!(
                    campaign_id = c.id,
                    step = p.step,
                    attempt = p.attempt,
                    "step no longer due as decided at its turn: withheld"
                );
                held.push((p, Fate::Redecided(t)));
            }
        }
        Ok((go, held))
    }

    /// The part of the check that concerns the campaign: still claimed by this batch (with a
    /// third of the lease left) and at the version its step was decided from.
    async fn check_unchanged(
        &self,
        items: Vec<PendingSend>,
        claim: &Claim,
    ) -> Result<(Vec<PendingSend>, Vec<(PendingSend, Fate)>)> {
        let wall = self.wall_now().timestamp();
        let margin = (claim.lease / 3).as_secs() as i64;
        let ids: Vec<i64> = items.iter().map(|p| p.campaign.id).collect();
        let states: HashMap<i64, campaigns::ClaimState> = campaigns::claim_states(&self.db, &ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let (go, held): (Vec<_>, Vec<_>) = items.into_iter().partition(|p| {
            claim.holds(p.campaign.id)
                && states.get(&p.campaign.id).is_some_and(|s| {
                    s.version == p.campaign.version
                        && s.claim_token.as_deref() == Some(claim.token.as_str())
                        && s.claimed_until.is_some_and(|u| u > wall + margin)
                })
        });
        Ok((go, held.into_iter().map(|p| (p, Fate::Withheld)).collect()))
    }

    /// Outcomes and follow-ups of sends that are done, in one transaction: each attempt's
    /// outcome, the campaign's transition (written only if the campaign did not change since
    /// the decision), then any status that reached the attempt before its outcome.
    /// Returns whether a campaign was left without a written transition (withheld, or changed
    /// meanwhile): its claim is then released by the batch.
    async fn record_fates(&self, fates: Vec<(PendingSend, Fate)>) -> Result<bool> {
        if fates.is_empty() {
            return Ok(false);
        }
        let now = self.now();
        let mut decided = Vec::with_capacity(fates.len());
        let mut outcomes = Vec::with_capacity(fates.len());
        let mut withheld = Vec::new();
        let mut decided_withheld = 0;
        let mut accepted = Vec::new();
        for (p, fate) in fates {
            let c = &p.campaign;
            let (event, at, res) = match fate {
                Fate::Withheld => {
                    withheld.push(p.key());
                    continue;
                }
                Fate::Redecided(transition) => {
                    withheld.push(p.key());
                    decided_withheld += 1;
                    decided.push(Decided {
                        campaign: CampaignRow {
                            state: p.claimed_state,
                            ..c.clone()
                        },
                        kind: "step_due",
                        transition,
                        detail: String::new(),
                        reply: None,
                    });
                    continue;
                }
                Fate::Sent(res, at) => match &res {
                    Ok(a) => {
                        accepted.push(a.provider_id.clone());
                        (Event::Sent, at, res)
                    }
                    Err(e) => {
                        let (failure, _) = failure_of(e, at);
                        tracing::info!(campaign_id = c.id, step = p.step, attempt = p.attempt, error = %e, to = %p.outbound.to, "send failed");
                        (Event::SendFailed(failure), at, res)
                    }
                },
            };
            let (state, provider_id, code) = match &res {
                Ok(a) => ("sent", Some(a.provider_id.clone()), None),
                Err(e) => (failure_of(e, at).1, None, e.code().map(str::to_string)),
            };
            let at_step = CampaignRow {
                step: p.step,
                attempt: p.attempt,
                ..c.clone()
            };
            let transition = self.decide(&at_step, &event, at)?;
            let code_detail = code
                .as_ref()
                .map(|c| format!(",\"code\":\"{c}\""))
                .unwrap_or_default();
            let detail = format!(
                "{{\"step\":{},\"attempt\":{},\"channel\":\"{}\"{code_detail}}}",
                p.step, p.attempt, p.outbound.channel
            );
            outcomes.push(Outcome {
                campaign_id: c.id,
                step: p.step,
                attempt: p.attempt,
                state,
                provider_id,
                error_code: code,
            });
            decided.push(Decided {
                campaign: at_step,
                kind: event.kind(),
                transition,
                detail,
                reply: None,
            });
        }
        let mut tx = self.db.begin().await?;
        attempts::set_outcomes(&mut tx, &outcomes, now.timestamp()).await?;
        attempts::withdraw(&mut tx, &withheld, now.timestamp()).await?;
        let stale = self.persist(&mut tx, &decided, now).await?;
        if !stale.is_empty() {
            tracing::info!(
                n = stale.len(),
                "send outcomes recorded; their campaigns changed meanwhile (a reply or a status): the newer change stands"
            );
        }
        self.apply_early_statuses(&mut tx, &accepted).await?;
        tx.commit().await?;
        Ok(!stale.is_empty() || withheld.len() > decided_withheld)
    }

    /// Attempts that were recorded before a crash: ask the provider before sending again.
    pub(super) async fn reconcile(
        &self,
        sends: Vec<PendingSend>,
        existing: HashMap<String, StoredAttempt>,
    ) -> (Vec<PendingSend>, Vec<(PendingSend, SendResult)>) {
        let mut to_send = Vec::new();
        let mut done = Vec::new();
        for p in sends {
            match existing.get(&p.outbound.client_ref) {
                None => to_send.push(p),
                Some(s) if s.state == "refused" => to_send.push(p),
                // A status callback named this attempt and its provider id: it exists.
                Some(s) if s.state == "sending" && s.provider_id.is_some() => {
                    let id = s.provider_id.clone().unwrap_or_default();
                    done.push((p, Ok(Accepted::new(id))));
                }
                Some(s) if s.state == "sending" => {
                    match self
                        .provider_for(&p.campaign.site_id)
                        .find(&p.outbound)
                        .await
                    {
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
                Some(s) => {
                    let id = s.provider_id.clone().unwrap_or_default();
                    done.push((p, Ok(Accepted::new(id))));
                }
            }
        }
        (to_send, done)
    }

    /// Sends each message through its site's provider at its turn, results in the input order
    /// (acknowledgements: they answer a reply and are not checked against the campaign).
    pub(super) async fn send_grouped(&self, sends: &[PendingSend]) -> Vec<SendResult> {
        let mut groups: Vec<(&Arc<dyn Provider>, Vec<usize>)> = Vec::new();
        for (i, p) in sends.iter().enumerate() {
            let prov = self.provider_for(&p.campaign.site_id);
            match groups.iter_mut().find(|(g, _)| Arc::ptr_eq(g, prov)) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((prov, vec![i])),
            }
        }
        let mut out: Vec<Option<SendResult>> = (0..sends.len()).map(|_| None).collect();
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
        let mut ctx = MessageContext::new(site, &c.locale, from_unix(c.starts_at));
        ctx.appointments.push(ApptView {
            date: ctx.date.clone(),
            time: ctx.time.clone(),
        });
        for f in followers.into_iter().flatten() {
            let (date, time) = templates::date_time(site, &c.locale, from_unix(*f));
            ctx.appointments.push(ApptView { date, time });
        }
        ctx.appointments.sort_by(|a, b| a.time.cmp(&b.time));
        if site.show_preparation && channel != Channel::Call {
            ctx.preparation = self
                .settings
                .exams
                .get(&c.exam_code)
                .map(|e| templates::preparation(e, &c.locale))
                .unwrap_or_default();
        }
        self.templates.render(&c.locale, template, &ctx)
    }
}

/// The send a transition asks for, if any.
fn send_of(t: &Transition) -> Option<(Channel, String, u32, u32)> {
    t.commands.iter().find_map(|cmd| match cmd {
        Command::Send {
            channel,
            template,
            step,
            attempt,
        } => Some((*channel, template.clone(), *step, *attempt)),
        _ => None,
    })
}

/// Inserts the attempts and returns those that already existed, by client reference (a
/// refused or withdrawn one is reopened to be tried again under the same key).
pub(super) async fn record_attempts(
    tx: &mut Tx,
    sends: &mut [PendingSend],
    now: DateTime<Utc>,
    wall: DateTime<Utc>,
    purpose: &'static str,
) -> Result<HashMap<String, StoredAttempt>> {
    let rows: Vec<NewAttempt> = sends
        .iter()
        .map(|p| NewAttempt {
            campaign_id: p.campaign.id,
            step: p.step,
            attempt: p.attempt,
            channel: p.outbound.channel,
            purpose,
            phone: p.outbound.to.as_e164().to_string(),
        })
        .collect();
    let inserted = attempts::record_many(tx, &rows, now.timestamp(), wall.timestamp()).await?;
    let mut existing = HashMap::new();
    for p in sends.iter_mut() {
        if inserted.contains(&p.key()) {
            continue;
        }
        let stored = attempts::get(tx, p.campaign.id, p.step, p.attempt).await?;
        if stored.state == "refused" {
            attempts::reopen(
                tx,
                p.campaign.id,
                p.step,
                p.attempt,
                now.timestamp(),
                wall.timestamp(),
            )
            .await?;
        } else {
            // Reconciliation looks for what the provider created since the first recording.
            p.outbound.recorded_at = from_unix(stored.created_at);
            if let Some(w) = stored.recorded_wall {
                p.outbound.recorded_wall = from_unix(w);
            }
        }
        existing.insert(p.outbound.client_ref.clone(), stored);
    }
    Ok(existing)
}

/// What a provider error means for the campaign, and the attempt's stored state: `refused`
/// means the provider certainly did not create it (the same key may be tried again).
pub(super) fn failure_of(e: &ProviderError, now: DateTime<Utc>) -> (SendFailure, &'static str) {
    match e {
        ProviderError::Transient { retry_after, .. } => (
            SendFailure::Transient {
                retry_at: now + retry_after.unwrap_or(TRANSIENT_RETRY),
            },
            "refused",
        ),
        ProviderError::RateLimited { retry_after } => (
            SendFailure::Transient {
                retry_at: now + retry_after.unwrap_or(RATE_LIMITED_RETRY),
            },
            "refused",
        ),
        ProviderError::ChannelUnavailable { .. } => (SendFailure::ChannelUnavailable, "failed"),
        ProviderError::InvalidNumber { .. } => (SendFailure::InvalidNumber, "failed"),
        ProviderError::OptedOut { .. } => (SendFailure::OptedOut, "failed"),
        ProviderError::Configuration { .. } => (SendFailure::Configuration, "refused"),
    }
}
