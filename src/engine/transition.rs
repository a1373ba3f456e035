//! Writing what the state machine decided: the campaign's new state, its ledger row, and the
//! commands that are not sends (agenda write-backs, notes, opt-outs), in the caller's
//! transaction. A lead that closes without an answer closes its followers through the same
//! path (`Event::LeadClosed`), so their timeline has no gap.

use super::shell::Engine;
use crate::domain::campaign::{self, Command, Event, Transition};
use crate::domain::types::mask_phone;
use crate::store::campaigns::{self, CampaignRow, StateWrite};
use crate::store::events::{self, NewEvent};
use crate::store::notes::{self, NewNote};
use crate::store::{Tx, opt_outs, outbox};
use anyhow::Result;
use chrono::{DateTime, Utc};

/// The reply a transition answers, when it answers one: its notes link it by id and carry its
/// text for the secretary.
#[derive(Debug, Clone)]
pub(super) struct ReplyRef {
    pub id: i64,
    pub text: String,
}

/// A decided transition, ready to write.
#[derive(Debug, Clone)]
pub(super) struct Decided {
    /// The campaign as it was decided from (step and attempt of the event).
    pub campaign: CampaignRow,
    pub kind: &'static str,
    pub transition: Transition,
    /// The ledger's detail (small JSON, no body, no number).
    pub detail: String,
    pub reply: Option<ReplyRef>,
}

impl Engine {
    /// Runs the state machine for one event and writes everything it decides, except sends
    /// (returned for the caller to make after commit).
    pub(super) async fn apply(
        &self,
        tx: &mut Tx,
        c: &CampaignRow,
        event: &Event,
        now: DateTime<Utc>,
        detail: &str,
        reply: Option<ReplyRef>,
    ) -> Result<Transition> {
        let t = self.decide(c, event, now)?;
        let decided = Decided {
            campaign: c.clone(),
            kind: event.kind(),
            transition: t.clone(),
            detail: detail.to_string(),
            reply,
        };
        self.persist(tx, std::slice::from_ref(&decided), now)
            .await?;
        Ok(t)
    }

    /// The pure decision for one campaign and event, with its site's policy and calendars.
    pub(super) fn decide(
        &self,
        c: &CampaignRow,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<Transition> {
        let site = self.site(&c.site_id)?;
        let policy = self.policy(&c.policy)?;
        Ok(campaign::decide(
            &c.core(),
            event,
            now,
            policy,
            &site.calendars,
        ))
    }

    /// Writes decided transitions: one statement for the campaigns and one for the ledger per
    /// chunk, then their commands, then the followers of leads that closed.
    pub(super) async fn persist(
        &self,
        tx: &mut Tx,
        items: &[Decided],
        now: DateTime<Utc>,
    ) -> Result<()> {
        write(tx, items, now).await?;
        let mut closed = Vec::new();
        for d in items {
            let (before, after) = (d.campaign.state, d.transition.state);
            if d.campaign.lead_id.is_none() && campaign::lead_closes_followers(before, after) {
                for f in campaigns::active_followers(tx, d.campaign.id).await? {
                    let event = Event::LeadClosed(after);
                    let transition = self.decide(&f, &event, now)?;
                    closed.push(Decided {
                        campaign: f,
                        kind: event.kind(),
                        transition,
                        detail: format!("{{\"lead\":{}}}", d.campaign.id),
                        reply: None,
                    });
                }
            }
        }
        // Followers have no followers of their own: this does not recurse.
        write(tx, &closed, now).await
    }
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

async fn write(tx: &mut Tx, items: &[Decided], now: DateTime<Utc>) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let states: Vec<StateWrite> = items
        .iter()
        .map(|d| StateWrite {
            id: d.campaign.id,
            state: d.transition.state,
            step: i64::from(d.transition.step),
            attempt: i64::from(d.transition.attempt),
            due_at: due_after(&d.campaign, &d.transition),
        })
        .collect();
    campaigns::write_states(tx, &states, now.timestamp()).await?;
    let ledger: Vec<NewEvent> = items
        .iter()
        .map(|d| NewEvent {
            campaign_id: d.campaign.id,
            kind: d.kind,
            state: d.transition.state,
            detail: d.detail.clone(),
        })
        .collect();
    events::append(tx, now.timestamp(), &ledger).await?;
    for d in items {
        write_commands(tx, d, now).await?;
    }
    Ok(())
}

async fn write_commands(tx: &mut Tx, d: &Decided, now: DateTime<Utc>) -> Result<()> {
    let c = &d.campaign;
    for cmd in &d.transition.commands {
        match cmd {
            Command::ConfirmInAgenda | Command::ReleaseSlot => {
                let action = if *cmd == Command::ConfirmInAgenda {
                    "confirm"
                } else {
                    "release"
                };
                outbox::enqueue(
                    tx,
                    c.id,
                    c.appointment_id,
                    c.appointment_version,
                    action,
                    now.timestamp(),
                )
                .await?;
            }
            Command::Note(reason) => {
                let reply_key = d
                    .reply
                    .as_ref()
                    .map(|r| format!("r{}", r.id))
                    .unwrap_or_default();
                let note = NewNote {
                    site_id: c.site_id.clone(),
                    campaign_id: Some(c.id),
                    reply_id: d.reply.as_ref().map(|r| r.id),
                    priority: i64::from(reason.priority()),
                    reason: reason.as_str(),
                    detail: d.reply.as_ref().map(|r| r.text.clone()).unwrap_or_default(),
                    dedup_key: format!("c{}:{}:{}:{reply_key}", c.id, reason.as_str(), d.kind),
                    open: true,
                };
                notes::insert(tx, &note, now.timestamp()).await?;
            }
            Command::RecordOptOut => {
                if let Some(phone) = &c.phone {
                    opt_outs::record(tx, phone, &c.site_id, "reply", now.timestamp()).await?;
                    tracing::info!(phone = %mask_phone(phone), site = %c.site_id, "opt-out recorded");
                }
            }
            _ => {}
        }
    }
    Ok(())
}
