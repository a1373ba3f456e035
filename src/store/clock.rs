//! `clock_anchor`: where a deployment's simulated clock started, so that every process (serve,
//! worker, import) reads the same simulated "now".

use super::Db;
use anyhow::Result;

/// A simulated clock's start: the simulated instant (Unix seconds), the wall-clock instant it
/// was taken at (Unix milliseconds), and its speed.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct Anchor {
    pub sim_start: i64,
    pub wall_start_ms: i64,
    pub speed: f64,
}

/// Stores `proposed` unless an anchor is already there; returns the one that holds.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn anchor(db: &Db, proposed: Anchor) -> Result<Anchor> {
    sqlx::query(
        "INSERT INTO clock_anchor (id, sim_start, wall_start_ms, speed) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(proposed.sim_start)
    .bind(proposed.wall_start_ms)
    .bind(proposed.speed)
    .execute(&db.pool)
    .await?;
    Ok(
        sqlx::query_as("SELECT sim_start, wall_start_ms, speed FROM clock_anchor WHERE id = 1")
            .fetch_one(&db.pool)
            .await?,
    )
}
