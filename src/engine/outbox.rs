//! The agenda outbox: confirmations and releases written in the same transaction as the state
//! change, claimed before they are applied (so the reply path and the timer, or two workers,
//! never apply the same one twice), and retried with backoff (`policy::outbox_backoff`) until
//! the agenda accepts them; after `outbox_max_tries`, or at once on a conflict, the row fails
//! and a secretary gets a note. An answer's acknowledgement waits here for its write-back: it is
//! sent when the agenda took it, preceded by a holding message when the first try failed, and
//! replaced by "the centre will call you" when the write-back failed for good.

use super::dispatch::PendingSend;
use super::shell::{ACK_HOLD_STEP, ACK_STEP, Engine};
use crate::agenda::AgendaError;
use crate::domain::campaign::{Ack, AgendaOutcome};
use crate::domain::policy::outbox_backoff;
use crate::domain::types::Channel;
use crate::store::appointments;
use crate::store::notes::{self, NewNote};
use crate::store::outbox::{self, OutboxRow, TryOutcome};
use crate::store::{Tx, campaigns};
use anyhow::Result;
use chrono::{DateTime, Utc};

/// Write-backs applied per pass of the outbox timer.
const OUTBOX_BATCH: i64 = 500;
/// Priority of the note a failed write-back leaves (a secretary fixes the agenda by hand).
const WRITE_FAILED_PRIORITY: i64 = 2;

impl Engine {
    /// Applies every due write-back to the agenda.
    pub async fn drain_outbox(&self) -> Result<usize> {
        let now = self.now();
        let rows = outbox::claim(
            &self.db,
            None,
            now.timestamp(),
            self.outbox_claim_until(now),
            OUTBOX_BATCH,
        )
        .await?;
        self.apply_outbox_rows(rows, now).await
    }

    /// Applies at once the write-backs of a campaign and its followers (the reply path).
    pub(super) async fn drain_outbox_for(&self, campaign_id: i64) -> Result<usize> {
        let now = self.now();
        let rows = outbox::claim(
            &self.db,
            Some(campaign_id),
            now.timestamp(),
            self.outbox_claim_until(now),
            OUTBOX_BATCH,
        )
        .await?;
        self.apply_outbox_rows(rows, now).await
    }

    /// A claimed write-back is the holder's until the lease ends (a holder that died lets it go).
    fn outbox_claim_until(&self, now: DateTime<Utc>) -> i64 {
        (now + self.settings.worker.claim_lease).timestamp()
    }

    async fn apply_outbox_rows(&self, rows: Vec<OutboxRow>, now: DateTime<Utc>) -> Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut outcomes = Vec::with_capacity(rows.len());
        for r in rows {
            let agenda = self.agenda_for(&r.site_id);
            let res = if r.action == "confirm" {
                agenda
                    .confirm(r.appointment_id, r.appointment_version)
                    .await
            } else {
                agenda
                    .release(r.appointment_id, r.appointment_version)
                    .await
            };
            if res.is_ok() {
                // The local copy follows (the built-in agenda already did).
                appointments::follow_write_back(
                    &self.db,
                    r.appointment_id,
                    r.appointment_version,
                    &r.action,
                )
                .await?;
            }
            outcomes.push((r, res));
        }
        let n = outcomes.len();
        let mut tx = self.db.begin().await?;
        let (mut acks, mut kinds) = (Vec::new(), Vec::new());
        for (r, res) in outcomes {
            let tries = r.tries + 1;
            let permanent = matches!(
                res,
                Err(AgendaError::Conflict(_)) | Err(AgendaError::NotFound)
            );
            let agenda = match &res {
                Ok(()) => AgendaOutcome::Accepted,
                Err(_)
                    if permanent || tries >= i64::from(self.settings.worker.outbox_max_tries) =>
                {
                    AgendaOutcome::Failed
                }
                Err(_) => AgendaOutcome::Retrying,
            };
            if let Some((send, kind)) = self.owed_ack(&mut tx, &r, agenda, tries == 1, now).await? {
                acks.push(send);
                kinds.push(kind);
            }
            let Err(e) = res else {
                outbox::record_try(&mut tx, r.id, tries, TryOutcome::Done, now.timestamp()).await?;
                continue;
            };
            if agenda == AgendaOutcome::Failed {
                let error = e.to_string();
                let failed = TryOutcome::Failed { error: &error };
                outbox::record_try(&mut tx, r.id, tries, failed, now.timestamp()).await?;
                let note = NewNote {
                    site_id: r.site_id.clone(),
                    campaign_id: Some(r.campaign_id),
                    reply_id: None,
                    priority: WRITE_FAILED_PRIORITY,
                    reason: "agenda_write_failed",
                    detail: format!("{}: {e}", r.action),
                    dedup_key: format!("outbox{}", r.id),
                    open: true,
                };
                notes::insert(&mut tx, &note, now.timestamp()).await?;
                tracing::warn!(outbox_id = r.id, campaign_id = r.campaign_id, error = %e, "agenda write-back gave up; note written");
            } else {
                let next = now + outbox_backoff(self.settings.worker.outbox_backoff, tries);
                let error = e.to_string();
                let retry = TryOutcome::Retry {
                    next_try_at: next.timestamp(),
                    error: &error,
                };
                outbox::record_try(&mut tx, r.id, tries, retry, now.timestamp()).await?;
            }
        }
        self.record_acks(&mut tx, &mut acks, &kinds, now).await?;
        tx.commit().await?;
        self.send_acks(acks).await?;
        Ok(n)
    }

    /// The acknowledgement a write-back owes its patient now that it has an outcome (see
    /// `Ack::after_agenda`): the real one once the agenda took it, a holding message on the
    /// first failed try, "the centre will call" when it failed for good.
    async fn owed_ack(
        &self,
        tx: &mut Tx,
        r: &OutboxRow,
        agenda: AgendaOutcome,
        first_failure: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<(PendingSend, Ack)>> {
        let (Some(reply_id), Some(owed)) = (r.ack_reply_id, r.ack.as_deref().and_then(Ack::parse))
        else {
            return Ok(None);
        };
        let Some(ack) = owed.after_agenda(agenda, first_failure) else {
            return Ok(None);
        };
        let Some(c) = campaigns::by_id_in(tx, r.campaign_id).await? else {
            return Ok(None);
        };
        let channel = r
            .ack_channel
            .as_deref()
            .and_then(Channel::parse)
            .unwrap_or(Channel::Sms);
        let step = if matches!(ack, Ack::Pending { .. }) {
            ACK_HOLD_STEP
        } else {
            ACK_STEP
        };
        Ok(Some((
            self.ack_send(&c, channel, step, reply_id, ack, now)?,
            ack,
        )))
    }
}
