//! Maintenance the tools need around a run: emptying Rappel's tables on a reused database and
//! refreshing the query planner's statistics.

use super::{Backend, Db};
use anyhow::Result;

/// Empties every table Rappel owns (PostgreSQL only: the bench reuses a database there, while
/// its SQLite file is new on each run).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn truncate_all(db: &Db) -> Result<()> {
    anyhow::ensure!(
        db.backend == Backend::Postgres,
        "truncate_all is for PostgreSQL"
    );
    sqlx::raw_sql(
        "TRUNCATE appointments, campaigns, attempts, events, replies, notes, outbox, opt_outs, \
         sandbox_messages",
    )
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Refreshes the planner's statistics. A table filled in seconds has none yet (autovacuum takes
/// about a minute to notice it), and both engines then plan as for an empty table.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn analyze(db: &Db) -> Result<()> {
    sqlx::query("ANALYZE").execute(&db.pool).await?;
    Ok(())
}
