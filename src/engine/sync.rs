//! Bringing the local copy of the agenda in line: imports (CSV, JSON, admin API) and FHIR
//! window reads are written here, and every upstream change (moved, cancelled by the centre)
//! reaches the campaigns through the state machine in the same transaction.

use super::shell::Engine;
use crate::agenda::fhir::{self, FhirClient};
use crate::agenda::{Appointment, ImportReport};
use crate::config::Site;
use crate::domain::campaign::Upstream;
use crate::store::{Tx, appointments};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct SyncReport {
    pub read: usize,
    pub unknown_exams: usize,
    pub closed_upstream: usize,
    pub import: ImportReport,
}

impl Engine {
    /// Reads every FHIR site's window into the local copy. A site whose server is down is
    /// skipped (logged) and read again at the next tick.
    pub async fn sync_agendas(&self) -> usize {
        let mut changed = 0;
        for (site_id, agenda) in &self.site_agendas {
            let Some(site) = self.settings.site(site_id) else {
                continue;
            };
            match self.sync_fhir_site(site, &agenda.client).await {
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

    /// Reads a FHIR site's window and brings the local copy in line (see `agenda::fhir`).
    pub async fn sync_fhir_site(&self, site: &Site, client: &FhirClient) -> Result<SyncReport> {
        let now = self.now();
        let read = fhir::read_window(&self.settings, site, client, now)
            .await
            .with_context(|| format!("reading the FHIR agenda of site {}", site.id))?;
        let mut report = SyncReport {
            read: read.appointments.len(),
            unknown_exams: read.unknown_exams,
            ..SyncReport::default()
        };
        report.import = self.write_appointments(&read.appointments).await?;
        // What is no longer booked upstream in the window closes its campaign. Only what is
        // still ahead: an appointment that started may be `arrived` or `fulfilled`.
        let listed = appointments::listed_in_window(
            &self.db,
            &site.id,
            read.start.max(now.timestamp()),
            read.end,
        )
        .await?;
        let gone: Vec<i64> = listed
            .into_iter()
            .filter(|(_, external_id)| !read.seen.contains(external_id))
            .map(|(id, _)| id)
            .collect();
        if !gone.is_empty() {
            let mut tx = self.db.begin().await?;
            for id in &gone {
                appointments::mark_cancelled(&mut tx, *id, now.timestamp()).await?;
                self.apply_upstream(&mut tx, *id, Upstream::Cancelled, now)
                    .await?;
            }
            tx.commit().await?;
            report.closed_upstream = gone.len();
        }
        Ok(report)
    }

    /// Writes checked appointments in one transaction and moves the campaigns of changed ones.
    pub async fn write_appointments(&self, appts: &[Appointment]) -> Result<ImportReport> {
        let now = self.now();
        let mut report = ImportReport::default();
        let mut tx = self.db.begin().await?;
        for a in appts {
            self.upsert(&mut tx, a, now, &mut report).await?;
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Inserts a new appointment, or rewrites a known one: a changed start, exam or phone bumps
    /// its version (its campaign is superseded and a new one opens); a row marked cancelled
    /// closes its campaign as `cancelled_upstream`. A status the patient set through Rappel is
    /// not undone by re-reading the same unchanged row.
    async fn upsert(
        &self,
        tx: &mut Tx,
        a: &Appointment,
        now: DateTime<Utc>,
        report: &mut ImportReport,
    ) -> Result<()> {
        let status = if a.cancelled { "cancelled" } else { "booked" };
        let Some(old) = appointments::by_external_id(tx, &a.site_id, &a.external_id).await? else {
            appointments::insert(tx, a, status, now.timestamp()).await?;
            report.created += 1;
            return Ok(());
        };
        let phone = a.phone.as_ref().map(|p| p.as_e164().to_string());
        let moved = old.starts_at != a.starts_at.timestamp()
            || old.exam_code != a.exam_code
            || old.phone != phone;
        let new_status = if a.cancelled || moved {
            status
        } else {
            old.status.as_str()
        };
        let version = if moved { old.version + 1 } else { old.version };
        appointments::update(tx, old.id, a, new_status, version, now.timestamp()).await?;
        if a.cancelled && old.status != "cancelled" {
            self.apply_upstream(tx, old.id, Upstream::Cancelled, now)
                .await?;
            report.cancelled += 1;
        } else if moved {
            self.apply_upstream(tx, old.id, Upstream::Superseded, now)
                .await?;
            report.moved += 1;
        } else {
            report.unchanged += 1;
        }
        Ok(())
    }
}
