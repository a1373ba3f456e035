//! `appointments`: the local copy of the agenda (imported, or read from a FHIR server with the
//! resource kept for conditional write-backs). A changed start, exam or phone bumps `version`.

use super::{Db, Tx};
use crate::domain::types::Appointment;
use crate::domain::types::Channel;
use anyhow::Result;
use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

/// A booked appointment inside the planning horizon, as the planner reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Unplanned {
    pub id: i64,
    pub site_id: String,
    pub exam_code: String,
    pub starts_at: i64,
    pub phone: Option<String>,
    pub version: i64,
    #[sqlx(try_from = "String")]
    pub channel_pref: Channel,
}

/// Booked appointments starting before `horizon` whose current version has no campaign, after
/// the keyset position (`after_start`, `after_id`), in (starts_at, id) order.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn unplanned_page(
    db: &Db,
    horizon: i64,
    after_start: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Unplanned>> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.site_id, a.exam_code, a.starts_at, a.phone, a.version, a.channel_pref \
         FROM appointments a \
         WHERE a.status = 'booked' AND a.starts_at <= $1 \
           AND (a.starts_at > $2 OR (a.starts_at = $2 AND a.id > $3)) \
           AND NOT EXISTS (SELECT 1 FROM campaigns c \
                           WHERE c.appointment_id = a.id AND c.appointment_version = a.version) \
         ORDER BY a.starts_at, a.id LIMIT $4",
    )
    .bind(horizon)
    .bind(after_start)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// The local copy follows a write-back the agenda accepted (`confirm` or `release`).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn follow_write_back(db: &Db, id: i64, version: i64, action: &str) -> Result<()> {
    let statement = if action == "confirm" {
        "UPDATE appointments SET status = 'confirmed' WHERE id = $1 AND version = $2 \
         AND status = 'booked'"
    } else {
        "UPDATE appointments SET status = 'cancelled' WHERE id = $1 AND version = $2 \
         AND status IN ('booked', 'confirmed')"
    };
    sqlx::query(statement)
        .bind(id)
        .bind(version)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Status and version of an appointment.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn status_of(db: &Db, id: i64) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, version FROM appointments WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// Sets the status of an appointment's version (the built-in agenda's write-back).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn set_status(
    db: &Db,
    id: i64,
    version: i64,
    status: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointments SET status = $1, updated_at = $2 WHERE id = $3 AND version = $4",
    )
    .bind(status.to_string())
    .bind(now)
    .bind(id)
    .bind(version)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The kept copy of a FHIR appointment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SourceCopy {
    pub external_id: String,
    pub starts_at: i64,
    pub version: i64,
    pub source: Option<String>,
    pub source_version: Option<String>,
}

#[tracing::instrument(level = "debug", skip(db))]
pub async fn source_copy(db: &Db, id: i64) -> Result<Option<SourceCopy>, sqlx::Error> {
    sqlx::query_as(
        "SELECT external_id, starts_at, version, source, source_version FROM appointments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// Keeps the server's latest copy of the resource and its version.
#[tracing::instrument(level = "debug", skip(db, source))]
pub async fn keep_source(
    db: &Db,
    id: i64,
    source: &str,
    source_version: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE appointments SET source = $1, source_version = $2 WHERE id = $3")
        .bind(source.to_string())
        .bind(source_version.to_string())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// What an import compares a new row with.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Existing {
    pub id: i64,
    pub starts_at: i64,
    pub exam_code: String,
    pub phone: Option<String>,
    pub status: String,
    pub version: i64,
}

#[tracing::instrument(level = "debug", skip(tx))]
pub async fn by_external_id(
    tx: &mut Tx,
    site_id: &str,
    external_id: &str,
) -> Result<Option<Existing>> {
    Ok(sqlx::query_as(
        "SELECT id, starts_at, exam_code, phone, status, version FROM appointments \
         WHERE site_id = $1 AND external_id = $2",
    )
    .bind(site_id.to_string())
    .bind(external_id.to_string())
    .fetch_optional(&mut **tx)
    .await?)
}

/// Binds the fields an import writes, as `$1`…`$10`: exam, start, duration, name, phone,
/// locale, channel, status, kept FHIR copy and its version.
fn bind_fields<'q>(
    q: Query<'q, Any, AnyArguments>,
    a: &Appointment,
    status: &str,
) -> Query<'q, Any, AnyArguments> {
    q.bind(a.exam_code.clone())
        .bind(a.starts_at.timestamp())
        .bind(i64::from(a.duration_min))
        .bind(a.patient_name.clone())
        .bind(a.phone.as_ref().map(|p| p.as_e164().to_string()))
        .bind(a.locale.clone())
        .bind(a.channel.as_str())
        .bind(status.to_string())
        .bind(a.source.as_ref().map(|s| s.0.clone()))
        .bind(a.source.as_ref().map(|s| s.1.clone()))
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn insert(tx: &mut Tx, a: &Appointment, status: &str, now: i64) -> Result<()> {
    let q = sqlx::query(
        "INSERT INTO appointments (exam_code, starts_at, duration_min, patient_name, phone, locale, \
           channel_pref, status, source, source_version, site_id, external_id, version, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13)",
    );
    bind_fields(q, a, status)
        .bind(a.site_id.clone())
        .bind(a.external_id.clone())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Rewrites an appointment from a newer read; the kept FHIR copy is refreshed when the read
/// carries one (an import row carries none and keeps what is there).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn update(
    tx: &mut Tx,
    id: i64,
    a: &Appointment,
    status: &str,
    version: i64,
    now: i64,
) -> Result<()> {
    let q = sqlx::query(
        "UPDATE appointments SET exam_code = $1, starts_at = $2, duration_min = $3, \
           patient_name = $4, phone = $5, locale = $6, channel_pref = $7, status = $8, \
           source = COALESCE($9, source), source_version = COALESCE($10, source_version), \
           version = $11, updated_at = $12 WHERE id = $13",
    );
    bind_fields(q, a, status)
        .bind(version)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Appointments of a site read from a server (`source` kept) in `[from, to)` and not
/// cancelled: (id, external id).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn listed_in_window(
    db: &Db,
    site_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, external_id FROM appointments WHERE site_id = $1 AND starts_at >= $2 \
         AND starts_at < $3 AND status <> 'cancelled' AND source IS NOT NULL",
    )
    .bind(site_id.to_string())
    .bind(from)
    .bind(to)
    .fetch_all(&db.pool)
    .await?)
}

/// The centre cancelled it upstream.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn mark_cancelled(tx: &mut Tx, id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE appointments SET status = 'cancelled', updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
