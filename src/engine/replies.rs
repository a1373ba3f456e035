//! The reply path: a patient's message, button or keypad answer is understood (`domain::reply`),
//! routed to its campaign (`campaign::route_reply`), acted on through the state machine with its
//! same-day followers, acknowledged, and its agenda write-backs applied at once.

use super::dispatch::{PendingSend, failure_of, record_attempts};
use super::shell::{ACK_STEP, Engine, attempt_key};
use super::transition::ReplyRef;
use crate::config::Site;
use crate::domain::campaign::{self, Ack, Command, Event, NoteReason};
use crate::domain::policy::{ACK_RETRY_AFTER, REPLY_ROUTING_WINDOW, from_unix};
use crate::domain::reply::{self, Classification, Flag, Intent};
use crate::domain::types::{CampaignState, Channel, PhoneNumber};
use crate::provider::Outbound;
use crate::store::attempts::{self, Outcome, StoredAttempt};
use crate::store::campaigns::{self, CampaignRow};
use crate::store::notes::{self, NewNote};
use crate::store::replies::{self, NewReply};
use crate::store::{Tx, opt_outs, outbox};
use crate::templates::MessageContext;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Replies are stored up to this many characters (a 5,000-character reply is kept whole).
const MAX_REPLY_CHARS: usize = 8_000;
/// Acknowledgements recovered per pass of the recovery timer.
const ACK_RECOVERY_BATCH: i64 = 500;
/// How many times a reply is handled again when its campaign changed under it.
const MAX_REPLY_RETRIES: usize = 8;

/// What is left to do once a reply is durably recorded: its acknowledgement to send and its
/// campaign's agenda write-backs to apply.
#[derive(Debug)]
pub struct ReplyFollowUp {
    acks: Vec<PendingSend>,
    campaign_id: Option<i64>,
}

impl ReplyFollowUp {
    /// Sends the acknowledgement and applies the write-backs. A failure leaves them recorded:
    /// acknowledgement recovery and the outbox timer retry them.
    pub async fn run(self, engine: &Engine) -> Result<()> {
        engine.send_acks(self.acks).await?;
        if let Some(id) = self.campaign_id {
            engine.drain_outbox_for(id).await?;
        }
        Ok(())
    }
}

/// An inbound message from a patient (SMS or WhatsApp), as the provider or the sandbox hands it.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub provider_id: String,
    pub from: PhoneNumber,
    /// The number, short code or service the patient wrote to (it names the site when the
    /// sender has no campaign).
    pub to: Option<String>,
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
            to: None,
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

impl Engine {
    /// Handles one inbound message: classify, match the patient's campaign, act, acknowledge.
    /// Idempotent by provider id. Never logs the number or the text.
    pub async fn handle_inbound(&self, msg: Inbound) -> Result<InboundOutcome> {
        let (outcome, follow_up) = self.receive_inbound(msg).await?;
        follow_up.run(self).await?;
        Ok(outcome)
    }

    /// The durable part of handling a reply: understood, routed, acted on, its acknowledgement
    /// and write-backs recorded, in one transaction. What is left (sending the acknowledgement,
    /// applying the write-backs) is returned: a webhook answers first and runs it after; if the
    /// process dies in between, acknowledgement recovery and the outbox timer finish it.
    pub async fn receive_inbound(&self, msg: Inbound) -> Result<(InboundOutcome, ReplyFollowUp)> {
        // A batch or a status may change the campaign between our read and our write: the
        // write is guarded by the campaign's version, and then the reply is handled again.
        for _ in 0..MAX_REPLY_RETRIES {
            if let Some(done) = self.try_receive(&msg).await? {
                return Ok(done);
            }
        }
        anyhow::bail!("a reply's campaign kept changing while the reply was handled")
    }

    async fn try_receive(&self, msg: &Inbound) -> Result<Option<(InboundOutcome, ReplyFollowUp)>> {
        let now = self.now();
        let body: String = msg.body.chars().take(MAX_REPLY_CHARS).collect();
        let campaign = match msg.campaign_id {
            Some(id) => campaigns::by_id(&self.db, id).await?,
            None => self.campaign_for_reply(msg.from.as_e164(), now).await?,
        };
        let cls = self.understand(msg, &body, campaign.as_ref());
        let mut tx = self.db.begin().await?;
        let reply = NewReply {
            provider_id: msg.provider_id.clone(),
            campaign_id: campaign.as_ref().map(|c| c.id),
            phone: msg.from.as_e164().to_string(),
            channel: msg.channel.as_str(),
            body: body.clone(),
            intent: cls.intent.as_str(),
            confidence: f64::from(cls.confidence),
            reason: cls.reason.chars().take(200).collect(),
            received_at: now.timestamp(),
        };
        let nothing_left = ReplyFollowUp {
            acks: Vec::new(),
            campaign_id: None,
        };
        let Some(reply_id) = replies::insert(&mut tx, &reply).await? else {
            tx.rollback().await?;
            let outcome = InboundOutcome {
                duplicate: true,
                campaign_id: campaign.map(|c| c.id),
                intent: cls.intent,
                state: None,
            };
            return Ok(Some((outcome, nothing_left)));
        };
        let reply = ReplyRef {
            id: reply_id,
            text: body,
        };
        let Some(lead) = campaign else {
            self.file_unmatched(&mut tx, msg, &cls, &reply, now).await?;
            tx.commit().await?;
            let outcome = InboundOutcome {
                duplicate: false,
                campaign_id: None,
                intent: cls.intent,
                state: None,
            };
            return Ok(Some((outcome, nothing_left)));
        };
        let Some((state, acks)) = self
            .act_on_reply(&mut tx, &lead, msg, &cls, reply, now)
            .await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        tx.commit().await?;
        tracing::info!(
            campaign_id = lead.id,
            reply_id,
            intent = cls.intent.as_str(),
            state = state.as_str(),
            "reply handled"
        );
        let outcome = InboundOutcome {
            duplicate: false,
            campaign_id: Some(lead.id),
            intent: cls.intent,
            state: Some(state),
        };
        let follow_up = ReplyFollowUp {
            acks,
            campaign_id: Some(lead.id),
        };
        Ok(Some((outcome, follow_up)))
    }

    /// The campaign a reply from `phone` answers (see `campaign::route_reply`).
    async fn campaign_for_reply(
        &self,
        phone: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CampaignRow>> {
        let since = (now - REPLY_ROUTING_WINDOW).timestamp();
        let mut candidates = campaigns::recent_leads_of_phone(&self.db, phone, since).await?;
        let routes: Vec<_> = candidates.iter().map(CampaignRow::route).collect();
        Ok(campaign::route_reply(&routes)
            .and_then(|id| candidates.iter().position(|c| c.id == id))
            .map(|i| candidates.swap_remove(i)))
    }

    /// The meaning of a reply: an explicit choice (button, keypad) as it is, else the
    /// classifier in the campaign's language with its site's vocabulary.
    fn understand(
        &self,
        msg: &Inbound,
        body: &str,
        campaign: Option<&CampaignRow>,
    ) -> Classification {
        let (vocab, lang) = match campaign {
            Some(c) => (
                self.settings
                    .site(&c.site_id)
                    .map(|s| s.vocabulary.clone())
                    .unwrap_or_default(),
                reply::Lang::parse(&c.locale),
            ),
            None => (Default::default(), None),
        };
        match msg.intent {
            Some(intent) => Classification {
                intent,
                confidence: 1.0,
                flags: Vec::new(),
                reason: format!("{}: explicit choice (button or keypad)", intent.as_str()),
                lang: lang.unwrap_or(reply::Lang::Fr),
            },
            None => reply::classify(body, lang, &vocab),
        }
    }

    /// A reply from a number with no campaign: filed under the site the patient wrote to, with
    /// the sender's number and the text for the secretary; an explicit STOP is honoured by
    /// every site.
    async fn file_unmatched(
        &self,
        tx: &mut Tx,
        msg: &Inbound,
        cls: &Classification,
        reply: &ReplyRef,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let site_id = msg
            .to
            .as_deref()
            .and_then(|to| self.settings.site_for_sender(to))
            .or_else(|| self.settings.sites.values().next())
            .map(|s| s.id.clone())
            .unwrap_or_default();
        if cls.intent == Intent::OptOut {
            for site in self.settings.sites.keys() {
                opt_outs::record(
                    tx,
                    msg.from.as_e164(),
                    site,
                    "reply_without_campaign",
                    now.timestamp(),
                )
                .await?;
            }
        }
        let reason = NoteReason::LateReply;
        let note = NewNote {
            site_id,
            campaign_id: None,
            reply_id: Some(reply.id),
            priority: i64::from(reason.priority()),
            reason: reason.as_str(),
            detail: format!(
                "reply from a number with no campaign: {}\n{}",
                msg.from.as_e164(),
                reply.text
            ),
            dedup_key: format!("r{}", reply.id),
            open: true,
        };
        notes::insert(tx, &note, now.timestamp()).await?;
        tracing::info!(reply_id = reply.id, from = %msg.from, intent = cls.intent.as_str(), "reply from a number with no campaign: note written");
        Ok(())
    }

    /// Applies the reply to the lead and its same-day followers (their own agenda write-backs,
    /// no second acknowledgement); records the acknowledgements to send after commit.
    async fn act_on_reply(
        &self,
        tx: &mut Tx,
        lead: &CampaignRow,
        msg: &Inbound,
        cls: &Classification,
        reply: ReplyRef,
        now: DateTime<Utc>,
    ) -> Result<Option<(CampaignState, Vec<PendingSend>)>> {
        let event = Event::Reply {
            intent: cls.intent,
            late: cls.flags.contains(&Flag::Late),
        };
        let detail = format!(
            "{{\"reply\":{},\"intent\":\"{}\",\"confidence\":{:.2}}}",
            reply.id,
            cls.intent.as_str(),
            cls.confidence
        );
        let reply_id = reply.id;
        let Some(t) = self
            .apply(tx, lead, &event, now, &detail, Some(reply.clone()))
            .await?
        else {
            return Ok(None);
        };
        campaigns::set_last_intent(tx, lead.id, cls.intent.as_str()).await?;
        for f in campaigns::followers(tx, lead.id).await? {
            self.apply_current(tx, f.id, &event, now, &detail, Some(reply.clone()))
                .await?;
        }
        let (mut acks, mut kinds) = (Vec::new(), Vec::new());
        // On a call the acknowledgement is spoken by the call script itself.
        if msg.channel != Channel::Call {
            let channel = if msg.channel == Channel::Whatsapp {
                Channel::Whatsapp
            } else {
                Channel::Sms
            };
            for cmd in &t.commands {
                let Command::Acknowledge(ack) = cmd else {
                    continue;
                };
                // A confirmation or a cancellation is told once the agenda took it: the
                // write-back carries the acknowledgement it owes (sent by the outbox).
                if ack.awaits_agenda() {
                    let action = if *ack == Ack::Cancelled {
                        "release"
                    } else {
                        "confirm"
                    };
                    if outbox::owe_ack(
                        tx,
                        lead.id,
                        action,
                        reply_id,
                        channel.as_str(),
                        ack.as_str(),
                    )
                    .await?
                    {
                        continue;
                    }
                }
                acks.push(self.ack_send(lead, channel, ACK_STEP, reply_id, *ack, now)?);
                kinds.push(*ack);
            }
        }
        self.record_acks(tx, &mut acks, &kinds, now).await?;
        Ok(Some((t.state, acks)))
    }

    /// An acknowledgement to send to the campaign's patient, as attempt `(step, reply_id)`.
    pub(super) fn ack_send(
        &self,
        c: &CampaignRow,
        channel: Channel,
        step: i64,
        reply_id: i64,
        ack: Ack,
        now: DateTime<Utc>,
    ) -> Result<PendingSend> {
        let site = self.site(&c.site_id)?;
        let to = c
            .phone
            .as_deref()
            .and_then(|p| PhoneNumber::parse(p).ok())
            .ok_or_else(|| anyhow::anyhow!("campaign {} has no usable number", c.id))?;
        Ok(PendingSend {
            campaign: c.clone(),
            claimed_state: c.state,
            step,
            attempt: reply_id,
            outbound: Outbound {
                client_ref: attempt_key(c.id, step, reply_id),
                channel,
                from: site.senders.get(&channel).cloned().unwrap_or_default(),
                to,
                body: self.render_ack(c, site, ack)?,
                recorded_at: now,
                recorded_wall: self.wall_now(),
                template: None,
            },
        })
    }

    /// Records acknowledgements as attempts, each with its kind (`kinds[i]` for `acks[i]`),
    /// before they are sent.
    pub(super) async fn record_acks(
        &self,
        tx: &mut Tx,
        acks: &mut [PendingSend],
        kinds: &[Ack],
        now: DateTime<Utc>,
    ) -> Result<()> {
        record_attempts(tx, acks, now, self.wall_now(), "ack").await?;
        for (a, kind) in acks.iter().zip(kinds) {
            attempts::set_ack(tx, a.campaign.id, a.step, a.attempt, kind.as_str()).await?;
        }
        Ok(())
    }

    fn render_ack(&self, c: &CampaignRow, site: &Site, ack: Ack) -> Result<String> {
        let ctx = MessageContext {
            late: matches!(ack, Ack::Confirmed { late: true }),
            ..MessageContext::new(site, &c.locale, from_unix(c.starts_at))
        };
        self.templates.render(&c.locale, ack.template(), &ctx)
    }

    pub(super) async fn send_acks(&self, acks: Vec<PendingSend>) -> Result<()> {
        if acks.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let results = self.send_grouped(&acks).await;
        let outcomes: Vec<Outcome> = acks
            .iter()
            .zip(results)
            .map(|(a, res)| {
                let (state, provider_id, error_code) = match &res {
                    Ok(acc) => ("sent", Some(acc.provider_id.clone()), None),
                    Err(e) => (failure_of(e, now).1, None, e.code().map(str::to_string)),
                };
                Outcome {
                    campaign_id: a.campaign.id,
                    step: a.step,
                    attempt: a.attempt,
                    state,
                    provider_id,
                    error_code,
                }
            })
            .collect();
        self.record_ack_outcomes(&outcomes, now).await
    }

    /// Records acknowledgement outcomes, then any delivery report that came back before the
    /// send's own answer.
    async fn record_ack_outcomes(&self, outcomes: &[Outcome], now: DateTime<Utc>) -> Result<()> {
        let accepted: Vec<String> = outcomes
            .iter()
            .filter_map(|o| o.provider_id.clone())
            .collect();
        let mut tx = self.db.begin().await?;
        attempts::set_outcomes(&mut tx, outcomes, now.timestamp()).await?;
        self.apply_early_statuses(&mut tx, &accepted).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Acknowledgements recorded but not confirmed sent (a crash, or a refusal): reconcile with
    /// the provider, then send what it does not have.
    pub async fn recover_acks(&self) -> Result<usize> {
        let now = self.now();
        let stale = now - self.settings.worker.claim_lease;
        let pending = attempts::pending_acks(
            &self.db,
            stale.timestamp(),
            (now - ACK_RETRY_AFTER).timestamp(),
            ACK_RECOVERY_BATCH,
        )
        .await?;
        let mut acks = Vec::new();
        for p in pending {
            let c = p.campaign;
            let Some(phone) = c.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok()) else {
                continue;
            };
            let site = self.site(&c.site_id)?;
            let intent = replies::intent_of(&self.db, p.reply_id)
                .await?
                .and_then(|i| Intent::parse(&i))
                .unwrap_or(Intent::Unclear);
            let ack = match (p.ack.as_deref().and_then(Ack::parse), intent, c.state) {
                (Some(ack), _, _) => ack,
                (None, Intent::OptOut, _) => Ack::OptOut,
                (None, _, CampaignState::Confirmed) => Ack::Confirmed { late: false },
                (None, _, CampaignState::Cancelled) => Ack::Cancelled,
                (None, _, CampaignState::RescheduleRequested) => Ack::Reschedule,
                _ => Ack::Holding,
            };
            let outbound = Outbound {
                client_ref: attempt_key(c.id, p.ack_step, p.reply_id),
                channel: p.ack_channel,
                from: site
                    .senders
                    .get(&p.ack_channel)
                    .cloned()
                    .unwrap_or_default(),
                to: phone,
                body: self.render_ack(&c, site, ack)?,
                recorded_at: from_unix(p.recorded_at),
                recorded_wall: from_unix(p.recorded_wall.unwrap_or(p.recorded_at)),
                template: None,
            };
            acks.push(PendingSend {
                claimed_state: c.state,
                campaign: c,
                step: p.ack_step,
                attempt: p.reply_id,
                outbound,
            });
        }
        let existing: HashMap<_, _> = acks
            .iter()
            .map(|a| {
                let pending = StoredAttempt {
                    state: "sending".to_string(),
                    provider_id: None,
                    created_at: a.outbound.recorded_at.timestamp(),
                    recorded_wall: Some(a.outbound.recorded_wall.timestamp()),
                };
                (a.outbound.client_ref.clone(), pending)
            })
            .collect();
        let n = acks.len();
        let (to_send, found) = self.reconcile(acks, existing).await;
        let outcomes: Vec<Outcome> = found
            .iter()
            .filter_map(|(a, res)| {
                res.as_ref().ok().map(|acc| Outcome {
                    campaign_id: a.campaign.id,
                    step: a.step,
                    attempt: a.attempt,
                    state: "sent",
                    provider_id: Some(acc.provider_id.clone()),
                    error_code: None,
                })
            })
            .collect();
        self.record_ack_outcomes(&outcomes, now).await?;
        self.send_acks(to_send).await?;
        Ok(n)
    }
}
