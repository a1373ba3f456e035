//! The test harness: `spawn_app(backend)` gives a fresh database (a temporary SQLite file, or a
//! new PostgreSQL database on the server named by `RAPPEL_TEST_POSTGRES_URL`), the real engine
//! on a manual clock with the sandbox provider, and the HTTP server on a random port. Helpers are
//! named after what a centre, a patient or a secretary does.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use rappel::clock::{Clock, ManualClock};
use rappel::config::{self, Layer};
use rappel::domain::calendar::resolve_local;
use rappel::domain::types::{Channel, PhoneNumber};
use rappel::engine::{Engine, Inbound, InboundOutcome};
use rappel::provider::{Sandbox, SandboxSent};
use rappel::store::Db;
use rappel::templates::Templates;
use sqlx::Row;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const PARIS: chrono_tz::Tz = chrono_tz::Europe::Paris;

pub struct TestApp {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
    pub sent: mpsc::UnboundedReceiver<SandboxSent>,
    pub db_url: String,
    _dir: tempfile::TempDir,
}

/// A database URL for a fresh, empty database of this kind.
pub async fn fresh_database(kind: Kind, dir: &std::path::Path) -> String {
    match kind {
        Kind::Sqlite => format!("sqlite://{}", dir.join("rappel.db").display()),
        Kind::Postgres => {
            let admin = std::env::var("RAPPEL_TEST_POSTGRES_URL").expect(
                "RAPPEL_TEST_POSTGRES_URL is not set: run the suite with `bash scripts/test.sh`, which starts PostgreSQL",
            );
            sqlx::any::install_default_drivers();
            let name = format!("rappel_test_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::AnyPool::connect(&admin)
                .await
                .expect("connect to test PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .expect("create test database");
            pool.close().await;
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
    }
}

/// The next Wednesday at least `days_ahead` days after 2026-11-22 (a fixed, ordinary week).
pub fn wednesday() -> NaiveDate {
    let mut d = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    while d.weekday() != Weekday::Wed {
        d += Duration::days(1);
    }
    d
}

pub fn paris(day: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    resolve_local(
        PARIS,
        day.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("time")),
    )
}

pub async fn spawn_app(kind: Kind) -> TestApp {
    spawn_app_with(kind, "").await
}

pub async fn spawn_app_with(kind: Kind, extra_config: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_url = fresh_database(kind, dir.path()).await;
    let mut layers = config::read_layers(None).expect("built-in config");
    layers.push(Layer {
        name: "test".into(),
        text: format!(
            "[database]\nurl = \"{db_url}\"\nmax_connections = 4\n[server]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{ADMIN_TOKEN}\"\n{extra_config}"
        ),
    });
    let settings = config::load_from(&layers, &[]).expect("test config");
    let db = Db::connect(&settings.database.url, 4)
        .await
        .expect("database");
    db.migrate().await.expect("migrations");
    // Monday 07:00 Paris of the test week: before any window opens.
    let clock = Arc::new(ManualClock::new(paris(
        wednesday() - Duration::days(2),
        7,
        0,
    )));
    let (tx, rx) = mpsc::unbounded_channel();
    let provider = Arc::new(Sandbox::with_listener(db.clone(), tx));
    let engine = Engine::new(
        db,
        Arc::new(settings),
        clock.clone(),
        provider,
        Arc::new(Templates::load(None).expect("templates")),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = rappel::http::router(engine.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server");
    });
    TestApp {
        engine,
        clock,
        addr,
        http: reqwest::Client::new(),
        sent: rx,
        db_url,
        _dir: dir,
    }
}

/// A Rappel built like `rappel serve` builds it (`server::build_engine`, so with the configured
/// provider and agendas), on a fresh SQLite database, the manual clock at `clock_at`, and the HTTP
/// server on a random port whose address `config(addr)` may use (webhook URLs).
pub async fn spawn_configured(
    clock_at: DateTime<Utc>,
    config: impl FnOnce(std::net::SocketAddr) -> String,
) -> TestApp {
    spawn_configured_on(Kind::Sqlite, clock_at, config).await
}

/// [`spawn_configured`] on a database of this kind.
pub async fn spawn_configured_on(
    kind: Kind,
    clock_at: DateTime<Utc>,
    config: impl FnOnce(std::net::SocketAddr) -> String,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_url = fresh_database(kind, dir.path()).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut layers = config::read_layers(None).expect("built-in config");
    layers.push(Layer {
        name: "test".into(),
        text: format!(
            "[database]\nurl = \"{db_url}\"\nmax_connections = 4\n\
             [server]\nbind = \"127.0.0.1:0\"\npublic_url = \"http://{addr}\"\nadmin_token = \"{ADMIN_TOKEN}\"\n{}",
            config(addr)
        ),
    });
    let settings = config::load_from(&layers, &[]).expect("test config");
    let clock = Arc::new(ManualClock::new(clock_at));
    let engine = rappel::app::build_engine(settings, Some(clock.clone()))
        .await
        .expect("engine");
    let router = rappel::http::router(engine.clone());
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("server");
    });
    let (_tx, rx) = mpsc::unbounded_channel();
    TestApp {
        engine,
        clock,
        addr,
        http: reqwest::Client::new(),
        sent: rx,
        db_url,
        _dir: dir,
    }
}

/// Where a test peer started by `scripts/test.sh` listens.
pub fn peer(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the suite with `bash scripts/test.sh`, which starts the test peers")
    })
}

pub fn csv_row(id: &str, site: &str, exam: &str, start: &str, phone: &str, extra: &str) -> String {
    format!("{id},{site},{exam},{start},,Patient {id},{phone},fr,sms{extra}\n")
}

pub const CSV_HEADER: &str =
    "external_id,site,exam_code,start,duration_min,patient_name,phone,locale,channel\n";

impl TestApp {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The centre imports its agenda (CSV), as `rappel import` does.
    pub async fn import(&self, csv: &str) -> rappel::agenda::ImportReport {
        let appts = rappel::agenda::import::parse_import(
            "test.csv",
            csv.as_bytes(),
            &self.engine.settings,
            self.now(),
        )
        .expect("valid import")
        .appointments;
        self.engine.write_appointments(&appts).await.expect("write")
    }

    /// One appointment on the test Wednesday at `h:m` Paris, for a mobile number.
    pub async fn book(&self, id: &str, h: u32, m: u32, phone: &str) {
        let start = format!("{}T{h:02}:{m:02}", wednesday());
        self.import(&format!(
            "{CSV_HEADER}{}",
            csv_row(id, "paris-nord", "RX-THO", &start, phone, "")
        ))
        .await;
    }

    pub async fn run(&self) -> usize {
        self.engine.run_until_idle().await.expect("run until idle")
    }

    /// Moves the clock to `at` and runs the worker until idle.
    pub async fn at(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        self.run().await;
    }

    /// Jumps from due step to due step until `until`, running the worker at each.
    pub async fn run_until(&self, until: DateTime<Utc>) {
        self.run().await;
        // Like the server: the planner looks at least hourly, steps run when due.
        loop {
            let planner = self.now() + Duration::hours(1);
            let next = match self.engine.next_due().await.expect("next due") {
                Some(due) if due > self.now() => due.min(planner),
                _ => planner,
            };
            if next > until {
                break;
            }
            self.clock.set(next);
            self.run().await;
        }
        self.clock.set(until);
        self.run().await;
    }

    /// The patient answers by SMS.
    pub async fn patient_replies(&self, phone: &str, body: &str) -> InboundOutcome {
        self.patient_replies_with_id(
            phone,
            body,
            &format!("SMIN{}", uuid::Uuid::new_v4().simple()),
        )
        .await
    }

    pub async fn patient_replies_with_id(
        &self,
        phone: &str,
        body: &str,
        id: &str,
    ) -> InboundOutcome {
        self.engine
            .handle_inbound(Inbound {
                to: None,
                provider_id: id.to_string(),
                from: PhoneNumber::parse(phone).expect("phone"),
                channel: Channel::Sms,
                body: body.to_string(),
                intent: None,
                campaign_id: None,
            })
            .await
            .expect("inbound handled")
    }

    /// Everything the sandbox accepted since the last call: (channel, client_ref, to).
    pub fn drain_sent(&mut self) -> Vec<SandboxSent> {
        let mut out = Vec::new();
        while let Ok(s) = self.sent.try_recv() {
            out.push(s);
        }
        out
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query(sql)
            .fetch_one(&self.engine.db.pool)
            .await
            .expect("query")
            .try_get::<i64, _>(0)
            .expect("scalar")
    }

    pub async fn campaign_state(&self, external_id: &str) -> String {
        sqlx::query(
            "SELECT c.state FROM campaigns c JOIN appointments a ON a.id = c.appointment_id \
             WHERE a.external_id = $1 ORDER BY c.id DESC LIMIT 1",
        )
        .bind(external_id.to_string())
        .fetch_one(&self.engine.db.pool)
        .await
        .expect("campaign")
        .try_get("state")
        .expect("state")
    }

    pub async fn appointment_status(&self, external_id: &str) -> String {
        sqlx::query("SELECT status FROM appointments WHERE external_id = $1")
            .bind(external_id.to_string())
            .fetch_one(&self.engine.db.pool)
            .await
            .expect("appointment")
            .try_get("status")
            .expect("status")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request")
    }

    /// `GET path` on the admin API, as JSON.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        self.admin_get(path)
            .await
            .json()
            .await
            .expect("JSON answer")
    }

    pub async fn admin_post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request")
    }
}

/// `rappel import FILE` on a fresh SQLite database in `dir`, the built-in configuration.
pub fn rappel_import(dir: &std::path::Path, file_name: &str, bytes: &[u8]) -> std::process::Output {
    let file = dir.join(file_name);
    std::fs::write(&file, bytes).unwrap();
    let db = format!("sqlite://{}", dir.join("r.db").display());
    std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .args(["import", file.to_str().unwrap()])
        .env(
            "RAPPEL_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("RAPPEL__DATABASE__URL", &db)
        .output()
        .unwrap()
}
