//! The database: one portable pool over SQLite (embedded default, one file in WAL mode) or
//! PostgreSQL (several workers), and the migrations of both.
//!
//! Rappel's own queries go through sqlx's `Any` driver: instants are i64 Unix seconds and states
//! are text, so one SQL text serves both engines (`$1` placeholders work on both). Where the
//! engines differ (how a write transaction begins, the migrations' column types) the code says
//! so here. SQLite has one writer: write transactions begin `IMMEDIATE` so that two writers queue
//! on the busy timeout instead of failing on a lock upgrade.

pub mod admin;
pub mod appointments;
pub mod attempts;
pub mod calls;
pub mod campaigns;
pub mod clock;
pub mod events;
pub mod maintenance;
pub mod notes;
pub mod opt_outs;
pub mod outbox;
pub mod replies;
pub mod sandbox;
pub mod sql;
pub mod stats;

use anyhow::{Context, Result};
use secrecy::{ExposeSecret, SecretString};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    url: SecretString,
}

pub type Tx = Transaction<'static, Any>;

/// Backend of a database URL, without printing it (it may hold a password).
pub fn backend_of(url: &str) -> Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        anyhow::bail!("database.url must start with sqlite: or postgres:")
    }
}

/// A SQLite URL that creates the file when missing.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

impl Db {
    pub async fn connect(url: &SecretString, max_connections: u32) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let raw = url.expose_secret();
        let backend = backend_of(raw)?;
        let connect_url = match backend {
            Backend::Sqlite => sqlite_url(raw),
            Backend::Postgres => raw.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL + NORMAL: about 16,500 single-row commits/s on 2 cores; durable
                        // across process crashes (not power loss of the last commits).
                        sqlx::raw_sql(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                             PRAGMA busy_timeout=15000; PRAGMA foreign_keys=ON;",
                        )
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .with_context(|| format!("cannot open the {} database", backend.as_str()))?;
        Ok(Db {
            pool,
            backend,
            url: SecretString::from(connect_url),
        })
    }

    /// The URL actually used (with SQLite's `mode=rwc`), for the queue's own pool.
    pub fn url(&self) -> &SecretString {
        &self.url
    }

    /// Applies Rappel's migrations (same names for both engines). The queue's migrations share
    /// sqlx's ledger table, so each side ignores the other's versions.
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.set_ignore_missing(true);
        migrator
            .run(&self.pool)
            .await
            .context("applying Rappel's migrations")?;
        if self.backend == Backend::Sqlite {
            // Without statistics SQLite plans the queue's ack through the wrong index
            // (about 120 jobs/s instead of about 7,000).
            sqlx::query("ANALYZE").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self) -> Result<Tx> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }
}

/// Reads an optional text column.
pub fn opt_text(row: &AnyRow, col: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(col).ok().flatten()
}
