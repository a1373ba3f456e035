//! The dispatcher: claims due campaigns, decides each due step (with the contact budget, the
//! opt-outs and WhatsApp's 24-hour rule from `domain::contact`), records every attempt before
//! the provider is called, reconciles attempts a crash left behind, sends, and records outcomes.

use super::shell::{Engine, attempt_key, crash_point};
use super::transition::Decided;
use crate::config::Site;
use crate::domain::campaign::{Command, Event, SendFailure, Transition};
use crate::domain::contact::{self, Touch};
use crate::domain::policy::{RATE_LIMITED_RETRY, TRANSIENT_RETRY, from_unix};
use crate::domain::types::{Channel, PhoneNumber};
use crate::provider::{Accepted, Outbound, Provider, ProviderError, WhatsappTemplate};
use crate::store::attempts::{self, NewAttempt, Outcome};
use crate::store::campaigns::{self, CampaignRow};
use crate::store::{Tx, opt_outs, replies};
use crate::templates::{self, ApptView, MessageContext};
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How far back the dispatcher reads a number's touches: the budget's local day, whatever the
/// time zone.
const TOUCH_LOOKBACK: Duration = Duration::days(2);

/// A send the shell must make after its attempt is recorded.
#[derive(Debug, Clone)]
pub(super) struct PendingSend {
    pub campaign: CampaignRow,
    pub step: i64,
    pub attempt: i64,
    pub outbound: Outbound,
}

/// What the dispatcher reads about the numbers and leads of a batch.
struct History {
    touches: HashMap<String, Vec<Touch>>,
    opted_out: HashSet<(String, String)>,
    last_inbound: HashMap<String, i64>,
    follower_starts: HashMap<i64, Vec<i64>>,
}

type SendResult = Result<Accepted, ProviderError>;

impl Engine {
    /// Claims up to `limit` due campaigns for the lease; returns their ids and the claim token.
    pub async fn claim_due(&self, limit: usize) -> Result<(Vec<i64>, String)> {
        let now = self.now().timestamp();
        let until = now + self.settings.worker.claim_lease.num_seconds();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let ids = campaigns::claim_due(&self.db, now, until, &token, limit as i64).await?;
        Ok((ids, token))
    }

    /// Runs the due step of each claimed campaign: decide, record attempts, send, record outcomes.
    pub async fn run_batch(&self, ids: &[i64], token: &str) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let claimed: Vec<CampaignRow> = campaigns::claimed(&self.db, token, ids)
            .await?
            .into_iter()
            .filter(|c| c.state.is_active() && c.due_at.is_some_and(|d| d <= now.timestamp()))
            .collect();
        if claimed.is_empty() {
            return Ok(0);
        }
        let history = self.history(&claimed, now).await?;
        let (mut sends, no_send) = self.decide_steps(&claimed, history, now)?;

        // Record every attempt before any provider call; find those that already exist.
        let mut tx = self.db.begin().await?;
        self.persist(&mut tx, &no_send, now).await?;
        let existing = record_attempts(&mut tx, &mut sends, now, "request").await?;
        tx.commit().await?;
        crash_point("after_record");

        let (to_send, mut results) = self.reconcile(sends, existing).await;
        let sent = self.send_grouped(&to_send).await;
        crash_point("after_send");
        results.extend(to_send.into_iter().zip(sent));
        let n = results.len() + no_send.len();
        self.record_outcomes(results, now).await?;
        Ok(n)
    }

    async fn history(&self, batch: &[CampaignRow], now: DateTime<Utc>) -> Result<History> {
        let phones: Vec<String> = batch
            .iter()
            .filter_map(|c| c.phone.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let since = (now - TOUCH_LOOKBACK).timestamp();
        let mut touches: HashMap<String, Vec<Touch>> = HashMap::new();
        for t in attempts::requests_since(&self.db, &phones, since).await? {
            touches.entry(t.phone).or_default().push(Touch {
                channel: t.channel,
                at: t.created_at,
            });
        }
        let leads: Vec<i64> = batch.iter().map(|c| c.id).collect();
        Ok(History {
            touches,
            opted_out: opt_outs::of_phones(&self.db, &phones).await?,
            last_inbound: replies::last_inbound(&self.db, &phones).await?,
            follower_starts: campaigns::follower_starts(&self.db, &leads).await?,
        })
    }

    /// Decides each due step; a touch decided in this batch counts against the budget of the
    /// next one to the same number.
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
            let touches = history.touches.entry(phone.clone()).or_default();
            let opted_out = history
                .opted_out
                .contains(&(phone.clone(), c.site_id.clone()));
            let event =
                contact::step_due(&c.core(), policy, &site.calendars, now, touches, opted_out);
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
            touches.push(Touch {
                channel,
                at: now.timestamp(),
            });
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
        Ok((sends, no_send))
    }

    /// Outcomes and follow-ups of a batch in one transaction.
    async fn record_outcomes(
        &self,
        results: Vec<(PendingSend, SendResult)>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut decided = Vec::with_capacity(results.len());
        let mut outcomes = Vec::with_capacity(results.len());
        for (p, res) in results {
            let c = &p.campaign;
            let (event, state, provider_id, code) = match &res {
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
            let at_step = CampaignRow {
                step: p.step,
                attempt: p.attempt,
                ..c.clone()
            };
            let transition = self.decide(&at_step, &event, now)?;
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
        self.persist(&mut tx, &decided, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Attempts that were recorded before a crash: ask the provider before sending again.
    pub(super) async fn reconcile(
        &self,
        sends: Vec<PendingSend>,
        existing: HashMap<String, (String, Option<String>)>,
    ) -> (Vec<PendingSend>, Vec<(PendingSend, SendResult)>) {
        let mut to_send = Vec::new();
        let mut done = Vec::new();
        for p in sends {
            match existing.get(&p.outbound.client_ref) {
                None => to_send.push(p),
                Some((state, _)) if state == "refused" => to_send.push(p),
                Some((state, _)) if state == "sending" => {
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

/// Inserts the attempts and returns the state and provider id of those that already existed,
/// by client reference (a refused one is reopened to be tried again under the same key).
pub(super) async fn record_attempts(
    tx: &mut Tx,
    sends: &mut [PendingSend],
    now: DateTime<Utc>,
    purpose: &'static str,
) -> Result<HashMap<String, (String, Option<String>)>> {
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
    let inserted = attempts::record_many(tx, &rows, now.timestamp()).await?;
    let mut existing = HashMap::new();
    for p in sends.iter_mut() {
        if inserted.contains(&(p.campaign.id, p.step, p.attempt)) {
            continue;
        }
        let stored = attempts::get(tx, p.campaign.id, p.step, p.attempt).await?;
        // Reconciliation looks for what the provider created since the first recording.
        p.outbound.recorded_at = from_unix(stored.created_at);
        if stored.state == "refused" {
            attempts::reopen(tx, p.campaign.id, p.step, p.attempt, now.timestamp()).await?;
        }
        existing.insert(
            p.outbound.client_ref.clone(),
            (stored.state, stored.provider_id),
        );
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
