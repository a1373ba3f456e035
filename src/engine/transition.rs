//! Writing what the state machine decided: the campaign's new state, its ledger row, and the
//! commands that are not sends (agenda write-backs, notes, opt-outs), in the caller's
//! transaction. A lead that closes without an answer closes its followers through the same
//! path (`Event::LeadClosed`), so their timeline has no gap.

use super::shell::Engine;
use crate::domain::campaign::{self, Command, Event, Transition};
use crate::domain::policy::from_unix;
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
    /// (returned for the caller to make after commit). `None` when the campaign changed since
    /// `c` was read (its version moved): nothing was written, the caller reads it again.
    pub(super) async fn apply(
        &self,
        tx: &mut Tx,
        c: &CampaignRow,
        event: &Event,
        now: DateTime<Utc>,
        detail: &str,
        reply: Option<ReplyRef>,
    ) -> Result<Option<Transition>> {
        let t = self.decide(c, event, now)?;
        let decided = Decided {
            campaign: c.clone(),
            kind: event.kind(),
            transition: t.clone(),
            detail: detail.to_string(),
            reply,
        };
        let stale = self
            .persist(tx, std::slice::from_ref(&decided), now)
            .await?;
        Ok(stale.is_empty().then_some(t))
    }

    /// [`Engine::apply`] to the campaign as it is now: read inside the transaction, and read
    /// again if another writer changed it between the read and the write.
    pub(super) async fn apply_current(
        &self,
        tx: &mut Tx,
        id: i64,
        event: &Event,
        now: DateTime<Utc>,
        detail: &str,
        reply: Option<ReplyRef>,
    ) -> Result<Option<Transition>> {
        for _ in 0..MAX_WRITE_RETRIES {
            let Some(c) = campaigns::by_id_in(tx, id).await? else {
                return Ok(None);
            };
            if let Some(t) = self
                .apply(tx, &c, event, now, detail, reply.clone())
                .await?
            {
                return Ok(Some(t));
            }
        }
        anyhow::bail!("campaign {id} kept changing while an event was applied")
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
    /// chunk, then their commands, then the followers of leads that closed. A transition whose
    /// campaign changed since it was decided is not written (nor its ledger row, nor its
    /// commands): its id is returned, and the newer change stands.
    pub(super) async fn persist(
        &self,
        tx: &mut Tx,
        items: &[Decided],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        let (written, stale) = write(tx, items, now).await?;
        let mut closed = Vec::new();
        for d in written {
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
        // Followers have no followers of their own: this does not recurse. Followers are read
        // inside this transaction, so none of them can be stale here.
        write(tx, &closed, now).await?;
        Ok(stale)
    }
}

/// How many times a single event is re-read and re-applied when its campaign keeps changing.
const MAX_WRITE_RETRIES: usize = 8;

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

/// Writes the transitions whose campaign is still at the version they were decided from;
/// returns those written and the ids of the stale ones.
async fn write<'a>(
    tx: &mut Tx,
    items: &'a [Decided],
    now: DateTime<Utc>,
) -> Result<(Vec<&'a Decided>, Vec<i64>)> {
    if items.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let states: Vec<StateWrite> = items
        .iter()
        .map(|d| StateWrite {
            id: d.campaign.id,
            from_version: d.campaign.version,
            state: d.transition.state,
            step: i64::from(d.transition.step),
            attempt: i64::from(d.transition.attempt),
            due_at: due_after(&d.campaign, &d.transition),
        })
        .collect();
    let ids = campaigns::write_states(tx, &states, now.timestamp()).await?;
    let (written, stale): (Vec<&Decided>, Vec<&Decided>) =
        items.iter().partition(|d| ids.contains(&d.campaign.id));
    let ledger: Vec<NewEvent> = written
        .iter()
        .map(|d| NewEvent {
            campaign_id: d.campaign.id,
            kind: d.kind,
            state: d.transition.state,
            detail: d.detail.clone(),
        })
        .collect();
    events::append(tx, now.timestamp(), &ledger).await?;
    for d in &written {
        write_commands(tx, d, now).await?;
    }
    if !stale.is_empty() {
        tracing::debug!(
            n = stale.len(),
            "transitions not written: their campaigns changed since they were decided"
        );
    }
    Ok((written, stale.into_iter().map(|d| d.campaign.id).collect()))
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
                    priority: i64::from(reason.priority_at(now, from_unix(c.starts_at))),
                    reason: reason.as_str(),
                    detail: d.reply.as_ref().map(|r| r.text.clone()).unwrap_or_default(),
                    dedup_key: format!("c{}:{}:{}:{reply_key}", c.id, reason.as_str(), d.kind),
                    open: true,
                };
                notes::insert(tx, &note, now.timestamp()).await?;
            }
            Command::RecordOptOut => {
                // A patient's STOP is a reply; otherwise the provider refused the number as
                // opted out at its end (Twilio's 21610).
                let source = if d.reply.is_some() {
                    "reply"
                } else {
                    "provider"
                };
                if let Some(phone) = &c.phone {
                    opt_outs::record(tx, phone, &c.site_id, source, now.timestamp()).await?;
                    tracing::info!(phone = %mask_phone(phone), site = %c.site_id, source, "opt-out recorded");
                }
            }
            _ => {}
        }
    }
    Ok(())
}
