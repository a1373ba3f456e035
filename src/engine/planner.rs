//! The planner: opens a campaign for every booked appointment whose confirmation window has
//! opened and that has none for its current version, expires campaigns whose appointment
//! started, and carries upstream changes (moved, cancelled) to the campaigns. Idempotent (the
//! unique (appointment, version) key) and catching up by construction: it reads the agenda, not
//! a timer's history. Which state a campaign opens in is decided by `campaign::opening`.

use super::shell::Engine;
use super::transition::Decided;
use crate::domain::campaign::{self, Campaign, Event, Opening, Upstream};
use crate::domain::policy::from_unix;
use crate::domain::types::PhoneNumber;
use crate::store::Tx;
use crate::store::appointments::{self, Unplanned};
use crate::store::campaigns::{self, NewCampaign};
use crate::store::events::{self, NewEvent};
use crate::store::notes::{self, NewNote};
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};

/// Appointments read per planner page (keyset pages on (starts_at, id)).
const PAGE: i64 = 1000;
/// Started campaigns expired per planner run (the next run takes the rest).
const EXPIRE_BATCH: i64 = 5000;

#[derive(Debug, Default, Clone, Copy)]
pub struct PlanReport {
    pub opened: usize,
    pub expired: usize,
}

/// An appointment the planner opens a campaign for, with what `opening` decided.
struct Planned {
    /// The appointment's start (a note's priority depends on how near it is).
    starts_at: i64,
    new: NewCampaign,
    opening: Opening,
    /// The same-day group key of a follower whose lead opens in this same run.
    lead_key: Option<String>,
}

impl Engine {
    /// Opens due campaigns and expires started ones (see the module doc).
    pub async fn plan(&self) -> Result<PlanReport> {
        self.sync_agendas().await;
        let now = self.now();
        let horizon = now + Duration::days(i64::from(self.settings.horizon_days) + 1);
        let mut report = PlanReport::default();
        let (mut after_start, mut after_id) = (now.timestamp(), i64::MAX);
        loop {
            let rows = appointments::unplanned_page(
                &self.db,
                horizon.timestamp(),
                after_start,
                after_id,
                PAGE,
            )
            .await?;
            let Some(last) = rows.last() else { break };
            (after_start, after_id) = (last.starts_at, last.id);
            report.opened += self.open_campaigns(&rows, now).await?;
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        report.expired = self.expire_started(now).await?;
        Ok(report)
    }

    /// Decides how each appointment's campaign opens (leads first: a same-day follower needs
    /// its lead's id), then writes them, their ledger rows and their notes in one transaction.
    async fn open_campaigns(&self, rows: &[Unplanned], now: DateTime<Utc>) -> Result<usize> {
        let due: Vec<&Unplanned> = rows.iter().filter(|r| self.window_open(r, now)).collect();
        if due.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = due.iter().filter_map(|r| self.group_key(r)).collect();
        let waiting_leads = campaigns::scheduled_leads(&self.db, &keys).await?;
        let mut in_run: HashSet<String> = HashSet::new();
        let (mut leads, mut followers) = (Vec::new(), Vec::new());
        for r in due {
            let planned = self.decide_opening(r, &waiting_leads, &in_run, now)?;
            if let (Opening::Lead(t), Some(k)) = (&planned.opening, &planned.new.group_key)
                && t.state == crate::domain::types::CampaignState::Scheduled
            {
                in_run.insert(k.clone());
            }
            match planned.opening {
                Opening::Follower => followers.push(planned),
                _ => leads.push(planned),
            }
        }
        let mut tx = self.db.begin().await?;
        let lead_rows: Vec<NewCampaign> = leads.iter().map(|p| p.new.clone()).collect();
        let inserted = campaigns::insert_many(&mut tx, &lead_rows, now.timestamp()).await?;
        let mut lead_ids: HashMap<&str, i64> = HashMap::new();
        for p in &leads {
            if let (Some(id), Some(k)) = (inserted.get(&p.new.appointment_id), &p.new.group_key)
                && p.opening.state() == crate::domain::types::CampaignState::Scheduled
            {
                lead_ids.insert(k, *id);
            }
        }
        for f in &mut followers {
            if f.new.lead_id.is_none() {
                f.new.lead_id = f.lead_key.as_deref().and_then(|k| lead_ids.get(k)).copied();
            }
        }
        let follower_rows: Vec<NewCampaign> = followers.iter().map(|p| p.new.clone()).collect();
        let mut opened: Vec<(i64, &Planned)> = Vec::new();
        let inserted_followers =
            campaigns::insert_many(&mut tx, &follower_rows, now.timestamp()).await?;
        for p in &leads {
            if let Some(id) = inserted.get(&p.new.appointment_id) {
                opened.push((*id, p));
            }
        }
        for p in &followers {
            if let Some(id) = inserted_followers.get(&p.new.appointment_id) {
                opened.push((*id, p));
            }
        }
        record_openings(&mut tx, &opened, now).await?;
        tx.commit().await?;
        Ok(opened.len())
    }

    /// Whether the policy's confirmation window of this appointment has opened (a site missing
    /// from the configuration is skipped and logged).
    fn window_open(&self, r: &Unplanned, now: DateTime<Utc>) -> bool {
        let Some(site) = self.settings.site(&r.site_id) else {
            tracing::warn!(site = %r.site_id, "appointment of a site missing from the configuration; skipped");
            return false;
        };
        let policy = self.settings.policy_for(site, &r.exam_code);
        now >= policy.opens_at(site.tz, from_unix(r.starts_at))
    }

    /// Same patient, same site, same local day: one message for the group.
    fn group_key(&self, r: &Unplanned) -> Option<String> {
        let site = self.settings.site(&r.site_id)?;
        let phone = r.phone.as_ref()?;
        Some(format!(
            "{}|{phone}|{}",
            r.site_id,
            site.calendars.local_day(from_unix(r.starts_at))
        ))
    }

    fn decide_opening(
        &self,
        r: &Unplanned,
        waiting_leads: &HashMap<String, i64>,
        in_run: &HashSet<String>,
        now: DateTime<Utc>,
    ) -> Result<Planned> {
        let site = self.site(&r.site_id)?;
        let policy = self.settings.policy_for(site, &r.exam_code);
        let group_key = self.group_key(r);
        let waiting = group_key
            .as_ref()
            .and_then(|k| waiting_leads.get(k))
            .copied();
        let joins_lead =
            waiting.is_some() || group_key.as_ref().is_some_and(|k| in_run.contains(k));
        let core = Campaign {
            state: crate::domain::types::CampaignState::Scheduled,
            step: 0,
            attempt: 0,
            appointment_start: from_unix(r.starts_at),
            preferred: r.channel_pref,
            mobile: r
                .phone
                .as_deref()
                .and_then(|p| PhoneNumber::parse(p).ok())
                .is_some_and(|p| p.is_mobile()),
        };
        let opening = campaign::opening(
            &core,
            r.phone.is_some(),
            joins_lead,
            now,
            policy,
            &site.calendars,
        );
        let follower = opening == Opening::Follower;
        Ok(Planned {
            starts_at: r.starts_at,
            new: NewCampaign {
                appointment_id: r.id,
                appointment_version: r.version,
                site_id: r.site_id.clone(),
                policy: policy.name.clone(),
                phone: r.phone.clone(),
                group_key: group_key.clone(),
                lead_id: if follower { waiting } else { None },
                state: opening.state(),
                step: i64::from(opening.first_step()),
                due_at: opening.due().map(|d| d.timestamp()),
            },
            lead_key: if follower { group_key } else { None },
            opening,
        })
    }

    async fn expire_started(&self, now: DateTime<Utc>) -> Result<usize> {
        let started = campaigns::started(&self.db, now.timestamp(), EXPIRE_BATCH).await?;
        if started.is_empty() {
            return Ok(0);
        }
        let event = Event::Upstream(Upstream::Started);
        let mut decided = Vec::with_capacity(started.len());
        for c in started {
            let transition = self.decide(&c, &event, now)?;
            decided.push(Decided {
                campaign: c,
                kind: event.kind(),
                transition,
                detail: String::new(),
                reply: None,
            });
        }
        let mut tx = self.db.begin().await?;
        self.persist(&mut tx, &decided, now).await?;
        tx.commit().await?;
        Ok(decided.len())
    }

    /// Applies an upstream change (moved, cancelled by the centre) to the open campaigns of an
    /// appointment, inside the import's transaction. A lead's followers are promoted to leads.
    pub async fn apply_upstream(
        &self,
        tx: &mut Tx,
        appointment_id: i64,
        change: Upstream,
        now: DateTime<Utc>,
    ) -> Result<()> {
        for c in campaigns::open_of_appointment(tx, appointment_id).await? {
            self.apply_current(tx, c.id, &Event::Upstream(change), now, "", None)
                .await?;
            if c.lead_id.is_none() {
                self.promote_followers(tx, c.id, now).await?;
            }
        }
        Ok(())
    }

    /// The earliest active follower of a lead that went away becomes the lead (and is opened
    /// as one); the others follow it.
    async fn promote_followers(&self, tx: &mut Tx, lead_id: i64, now: DateTime<Utc>) -> Result<()> {
        let mut new_lead: Option<i64> = None;
        for f in campaigns::active_followers(tx, lead_id).await? {
            match new_lead {
                None => {
                    campaigns::set_lead(tx, f.id, None).await?;
                    self.apply_current(tx, f.id, &Event::Opened, now, "", None)
                        .await?;
                    new_lead = Some(f.id);
                }
                Some(l) => campaigns::set_lead(tx, f.id, Some(l)).await?,
            }
        }
        Ok(())
    }
}

/// Ledger rows and notes of newly opened campaigns.
async fn record_openings(
    tx: &mut Tx,
    opened: &[(i64, &Planned)],
    now: DateTime<Utc>,
) -> Result<()> {
    let ledger: Vec<NewEvent> = opened
        .iter()
        .map(|(id, p)| NewEvent {
            campaign_id: *id,
            kind: "opened",
            state: p.opening.state(),
            detail: p
                .new
                .lead_id
                .map(|l| format!("{{\"lead\":{l}}}"))
                .unwrap_or_default(),
        })
        .collect();
    events::append(tx, now.timestamp(), &ledger).await?;
    for (id, p) in opened {
        if let Some(reason) = p.opening.note() {
            let note = NewNote {
                site_id: p.new.site_id.clone(),
                campaign_id: Some(*id),
                reply_id: None,
                priority: i64::from(reason.priority_at(now, from_unix(p.starts_at))),
                reason: reason.as_str(),
                detail: String::new(),
                dedup_key: format!("c{id}:{}", reason.as_str()),
                open: true,
            };
            notes::insert(tx, &note, now.timestamp()).await?;
        }
    }
    Ok(())
}
