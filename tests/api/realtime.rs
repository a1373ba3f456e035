//! Dispatch when sending takes real time: `rappel serve` (and on PostgreSQL a second
//! `rappel worker`) run as real processes against Twilio's spec (Prism) in front of a fake
//! provider that answers late, with jitter, sends status callbacks before its answers, out of
//! order and twice. The claim lease (2 s) is far shorter than a batch (40 messages at 4 a second
//! per sender). Every check is made on the provider's side too: what it was asked, what it
//! created, what it reported.

use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Child;

const WA_TEMPLATE: &str = "HX0123456789abcdef0123456789abcdef";

/// A fleet of Rappel processes on one database, one fake-provider account, one config.
struct Fleet {
    account: String,
    fake: String,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Fleet {
    /// Writes the configuration: the shipped files plus a `test` layer (Twilio through Prism,
    /// a short lease, a simulated clock starting at `start`, `speed` times real time).
    async fn new(app: &TestApp, start: DateTime<Utc>, speed: f64, fake_config: Value) -> Fleet {
        let prism = peer("RAPPEL_TEST_TWILIO_URL");
        let fake = peer("RAPPEL_TEST_TWILIO_FAKE_URL");
        let token = peer("RAPPEL_TEST_TWILIO_AUTH_TOKEN");
        let account = format!("AC{}", uuid::Uuid::new_v4().simple());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::create_dir(&config).unwrap();
        for f in ["default.toml", "exams.toml", "sites.toml"] {
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(f),
                config.join(f),
            )
            .unwrap();
        }
        let port = free_port();
        std::fs::write(
            config.join("test.toml"),
            format!(
                "[database]\nurl = \"{}\"\nmax_connections = 8\n\
                 [server]\nbind = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
                 admin_token = \"{ADMIN_TOKEN}\"\n\
                 [provider]\nkind = \"twilio\"\n\
                 [provider.twilio]\nbase_url = \"{prism}\"\naccount_sid = \"{account}\"\n\
                 auth_token = \"{token}\"\nmessages_per_second = 4.0\ntimeout_ms = 5000\n\
                 [worker]\nclaim_lease_secs = 2\nbatch_size = 40\nsweep_interval_ms = 100\n\
                 planner_interval_secs = 1\noutbox_interval_ms = 200\n\
                 [clock]\nstart = \"{}\"\nspeed = {speed}\n\
                 [sites.paris-nord.whatsapp_templates]\nfr = \"{WA_TEMPLATE}\"\n",
                app.db_url,
                start.to_rfc3339()
            ),
        )
        .unwrap();
        let r = reqwest::Client::new()
            .post(format!("{fake}/_fake/{account}/config"))
            .json(&fake_config)
            .send()
            .await
            .expect("fake config");
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let log = dir.path().join("rappel.log");
        Fleet {
            account,
            fake,
            port,
            config,
            log,
            children: Vec::new(),
            _dir: dir,
        }
    }

    /// Starts `rappel serve` (HTTP and worker) or `rappel worker`.
    fn start(&mut self, role: &str, crash_point: Option<&str>) {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"));
        cmd.arg("--config")
            .arg(&self.config)
            .arg(role)
            .env("RAPPEL_ENV", "test")
            .env("RUST_LOG", "info,rappel=debug")
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .unwrap(),
            );
        for (k, _) in std::env::vars() {
            if k.starts_with("RAPPEL__") {
                cmd.env_remove(k);
            }
        }
        match crash_point {
            Some(p) => cmd.env("RAPPEL_TEST_CRASH_POINT", p),
            None => cmd.env_remove("RAPPEL_TEST_CRASH_POINT"),
        };
        self.children.push(cmd.spawn().expect("start rappel"));
    }

    fn kill_all(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn control(&self, what: &str) -> Value {
        reqwest::get(format!("{}/_fake/{}/{what}", self.fake, self.account))
            .await
            .expect("fake provider")
            .json()
            .await
            .expect("json")
    }

    /// The patient `from` writes `body` (signed by the fake, as Twilio would).
    async fn patient_sends(&self, from: &str, body: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/_fake/{}/inbound", self.fake, self.account))
            .json(&json!({
                "url": format!("http://127.0.0.1:{}/webhooks/twilio/messages/inbound", self.port),
                "from": from, "to": "+33757000001", "body": body, "channel": "sms",
            }))
            .send()
            .await
            .expect("fake inbound");
        assert!(r.status().is_success());
    }

    /// Created messages and calls (POSTs answered 201), each with the attempt key its status
    /// callback names.
    async fn created(&self) -> Vec<Created> {
        let requests = self.control("requests").await;
        requests
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "POST" && r["status"] == 201)
            .filter_map(|r| {
                let path = r["path"].as_str()?;
                let call = path.ends_with("Calls.json");
                if !call && !path.ends_with("Messages.json") {
                    return None;
                }
                let first = |k: &str| {
                    r["form"][k]
                        .as_array()
                        .and_then(|a| a.first())
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let callback = first("StatusCallback");
                let key = callback
                    .split_once("attempt=")
                    .map(|(_, k)| k.to_string())?;
                Some(Created {
                    key,
                    call,
                    to: first("To").trim_start_matches("whatsapp:").to_string(),
                    received_at: r["received_at"].as_f64().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Waits until the provider has nothing left playing out.
    async fn settle(&self) {
        for _ in 0..1800 {
            if self.control("pending").await["pending"].as_i64() == Some(0) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the fake provider did not settle");
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[derive(Debug, Clone)]
struct Created {
    key: String,
    call: bool,
    to: String,
    received_at: f64,
}

/// A fake-provider behaviour of a slow, jittery, out-of-order provider.
fn slow_provider() -> Value {
    json!({
        "answer_delay_ms": [50, 400],
        "callbacks_before_answer": true,
        "status_delay_ms": [0, 300],
        "callback_duplicates": true,
    })
}

/// `n` appointments on Wednesday, first SMS due Monday 09:00 (calls from 10:00); `channel`
/// per patient.
fn agenda(
    n: usize,
    phone: impl Fn(usize) -> String,
    channel: impl Fn(usize) -> &'static str,
) -> String {
    let mut csv = CSV_HEADER.to_string();
    for i in 0..n {
        let start = format!("{}T{:02}:{:02}", wednesday(), 9 + i / 12, (i % 12) * 5);
        csv.push_str(&format!(
            "R{i},paris-nord,RX-THO,{start},,Patient R{i},{},fr,{}\n",
            phone(i),
            channel(i)
        ));
    }
    csv
}

async fn wait_for(app: &TestApp, sql: &'static str, want: i64, secs: u64) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let got = app.scalar(sql).await;
        if got >= want || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Every attempt key was created at most once at the provider.
fn assert_no_duplicates(created: &[Created]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for c in created {
        *seen.entry(&c.key).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "created more than once: {twice:?}");
}

/// Every attempt Rappel recorded as sent (or later) names an item the provider has, and every
/// final status the provider reported was applied to it.
async fn assert_statuses_applied(app: &TestApp, fleet: &Fleet) {
    let mut provider: HashMap<String, String> = HashMap::new();
    for m in fleet.control("messages").await.as_array().unwrap() {
        provider.insert(
            m["sid"].as_str().unwrap().to_string(),
            m["status"].as_str().unwrap().to_string(),
        );
    }
    for c in fleet.control("calls").await.as_array().unwrap() {
        provider.insert(
            c["sid"].as_str().unwrap().to_string(),
            c["status"].as_str().unwrap().to_string(),
        );
    }
    let rows = sqlx::query_as::<_, (String, Option<String>, String)>(
        "SELECT state, provider_id, channel FROM attempts WHERE state <> 'refused'",
    )
    .fetch_all(&app.engine.db.pool)
    .await
    .unwrap();
    for (state, provider_id, channel) in rows {
        let id = provider_id.unwrap_or_else(|| panic!("an attempt {state} without a provider id"));
        let theirs = provider.get(&id).unwrap_or_else(|| {
            panic!("attempt {state} names {id}, which the provider never created")
        });
        let want = match (channel.as_str(), theirs.as_str()) {
            ("call", "completed") => "delivered",
            ("call", "busy" | "no-answer") => "undelivered",
            (_, s) => s,
        };
        assert_eq!(state, want, "{channel} {id}: provider says {theirs}");
    }
}

async fn a_slow_provider_and_a_short_lease_never_send_twice_nor_overwrite_an_answer(kind: Kind) {
    let app = spawn_app(kind).await;
    let n = 40;
    // Two landlines (30006: the SMS is undelivered, a call follows at once); four fast repliers.
    let phone = |i: usize| match i {
        5 | 25 => format!("+3361{:03}0006", i),
        _ => format!("+3361{i:07}"),
    };
    let repliers: HashSet<String> = [2usize, 11, 19, 33].iter().map(|i| phone(*i)).collect();
    app.import(&agenda(n, phone, |_| "sms")).await;
    // Monday 10:00: every first SMS is due, and calls are allowed.
    let start = paris(wednesday() - Duration::days(2), 10, 0);
    let mut fleet = Fleet::new(&app, start, 1.0, slow_provider()).await;
    fleet.start("serve", None);
    if kind == Kind::Postgres {
        fleet.start("worker", None);
    }
    // Each replier answers as soon as its SMS exists at the provider: mid-batch.
    let mut answered = HashSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while answered.len() < repliers.len() && std::time::Instant::now() < deadline {
        for c in fleet.created().await {
            if repliers.contains(&c.to) && answered.insert(c.to.clone()) {
                fleet.patient_sends(&c.to, "oui je serai là").await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(answered.len(), repliers.len(), "every replier got its SMS");
    let first = wait_for(
        &app,
        "SELECT COUNT(*) FROM attempts WHERE purpose = 'request' AND step = 0 AND state <> 'refused'",
        n as i64,
        120,
    )
    .await;
    assert_eq!(first, n as i64, "every first SMS went out");
    // The landlines' calls are placed and answered (keypad 1: confirmed).
    wait_for(
        &app,
        "SELECT COUNT(*) FROM attempts WHERE channel = 'call' AND state <> 'sending'",
        2,
        60,
    )
    .await;
    fleet.settle().await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    fleet.kill_all();

    let created = fleet.created().await;
    assert_no_duplicates(&created);
    assert_statuses_applied(&app, &fleet).await;
    // One request per patient, and a replier got nothing after answering but its acknowledgement.
    let mut per_number: HashMap<&str, Vec<&Created>> = HashMap::new();
    for c in &created {
        per_number.entry(&c.to).or_default().push(c);
    }
    for i in 0..n {
        let p = phone(i);
        let got = per_number.get(p.as_str()).cloned().unwrap_or_default();
        if repliers.contains(&p) {
            assert_eq!(
                got.len(),
                2,
                "{p}: the request and the acknowledgement only"
            );
            assert!(got.iter().all(|c| !c.call));
        }
        if p.ends_with("0006") {
            assert!(
                got.iter().any(|c| c.call),
                "{p}: a landline is called at once"
            );
        }
    }
    for p in &repliers {
        let state: String = sqlx::query_scalar("SELECT state FROM campaigns WHERE phone = $1")
            .bind(p.clone())
            .fetch_one(&app.engine.db.pool)
            .await
            .unwrap();
        assert_eq!(state, "confirmed", "{p}: an answer mid-batch stands");
        let due: Option<i64> = sqlx::query_scalar("SELECT due_at FROM campaigns WHERE phone = $1")
            .bind(p.clone())
            .fetch_one(&app.engine.db.pool)
            .await
            .unwrap();
        assert_eq!(due, None, "{p}: nothing more is due after an answer");
    }
    // Every silent patient (neither a replier nor a landline) has its nudge queued.
    let states: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT phone, state, due_at FROM campaigns")
            .fetch_all(&app.engine.db.pool)
            .await
            .unwrap();
    for (p, state, due) in &states {
        if !repliers.contains(p) && !p.ends_with("0006") {
            assert!(
                state == "awaiting_reply" && due.is_some(),
                "{p}: {state} {due:?}; all: {states:?}"
            );
        }
    }
}

async fn kill_9_during_slow_sends_and_at_each_crash_point_loses_and_repeats_nothing(kind: Kind) {
    let app = spawn_app(kind).await;
    let n = 36;
    // A third SMS, a third WhatsApp (an approved template opens the conversation), a third
    // asked to be called.
    let channel = |i: usize| ["sms", "whatsapp", "call"][i % 3];
    let phone = |i: usize| format!("+3362{i:04}100");
    app.import(&agenda(n, phone, channel)).await;
    // Monday 10:00: every first message and call is due.
    let start = paris(wednesday() - Duration::days(2), 10, 0);
    let mut fleet = Fleet::new(
        &app,
        start,
        1.0,
        json!({"answer_delay_ms": [100, 500], "queued_seconds": 8, "status_delay_ms": [0, 200]}),
    )
    .await;
    let monday = start.with_timezone(&PARIS).date_naive();
    // Each crash point, then kill -9 at random instants while sending.
    for point in ["after_record", "after_send"] {
        fleet.start("serve", Some(point));
        let mut child = fleet.children.pop().unwrap();
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(!status.success(), "the process must have died at {point}");
    }
    for _ in 0..3 {
        fleet.start("serve", None);
        let pause = 500 + rand::random::<u64>() % 2500;
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        fleet.kill_all();
    }
    fleet.start("serve", None);
    let first = wait_for(
        &app,
        "SELECT COUNT(*) FROM attempts WHERE purpose = 'request' AND step IN (0, 2) \
         AND state <> 'refused' AND state <> 'sending'",
        n as i64,
        120,
    )
    .await;
    fleet.settle().await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    fleet.kill_all();
    assert_eq!(
        first, n as i64,
        "no lost step: every patient's first touch went out"
    );
    let created = fleet.created().await;
    assert_no_duplicates(&created);
    assert_statuses_applied(&app, &fleet).await;
    let log = std::fs::read_to_string(&fleet.log).unwrap();
    assert!(log.contains("crash point after_record reached"));
    assert!(log.contains("crash point after_send reached"));
    // Patients who asked for calls got a call first, nobody else was called.
    let calls: HashSet<&str> = created
        .iter()
        .filter(|c| c.call)
        .map(|c| c.to.as_str())
        .collect();
    let callers: HashSet<String> = (0..n)
        .filter(|i| channel(*i) == "call")
        .map(phone)
        .collect();
    assert_eq!(calls, callers.iter().map(String::as_str).collect());
    // No step moved to another day by the recovery: every next step is still due on Monday
    // (a silent patient's nudge or next call the same day).
    let dues: Vec<(Option<i64>,)> =
        sqlx::query_as("SELECT due_at FROM campaigns WHERE state = 'awaiting_reply'")
            .fetch_all(&app.engine.db.pool)
            .await
            .unwrap();
    for (due,) in &dues {
        let due = due.expect("an awaiting campaign has its next step queued");
        let day = DateTime::from_timestamp(due, 0)
            .unwrap()
            .with_timezone(&PARIS)
            .date_naive();
        assert_eq!(day, monday, "a next step moved to another day");
    }
    // Every first touch happened on Monday morning, in the window.
    let stamps: Vec<(i64,)> =
        sqlx::query_as("SELECT created_at FROM attempts WHERE purpose = 'request'")
            .fetch_all(&app.engine.db.pool)
            .await
            .unwrap();
    for (at,) in stamps {
        let local = DateTime::from_timestamp(at, 0)
            .unwrap()
            .with_timezone(&PARIS);
        assert_eq!(local.date_naive(), monday);
    }
    let _ = created.iter().map(|c| c.received_at).fold(0.0, f64::max);
}

/// The worker was down from 10:30 to 20:45 while nudges and calls fell due: nothing goes out
/// after the windows closed; each step waits for the next morning's window and goes then.
async fn after_downtime_nothing_is_sent_outside_the_windows(kind: Kind) {
    let mut app = spawn_app(kind).await;
    let mut csv = CSV_HEADER.to_string();
    for i in 0..12 {
        let channel = if i % 2 == 0 { "sms" } else { "call" };
        csv.push_str(&format!(
            "D{i},paris-nord,RX-THO,{}T10:{:02},,Patient D{i},+3363{i:07},fr,{channel}\n",
            wednesday(),
            i * 4
        ));
    }
    app.import(&csv).await;
    let monday = wednesday() - Duration::days(2);
    app.at(paris(monday, 9, 0)).await;
    assert_eq!(app.drain_sent().len(), 6, "every first SMS at 09:00");
    app.at(paris(monday, 10, 30)).await;
    assert_eq!(
        app.drain_sent().len(),
        6,
        "every first call once calls open at 10:00"
    );
    // Down until 20:45 (the nudges and calls fell due in the afternoon).
    app.at(paris(monday, 20, 45)).await;
    app.run().await;
    assert!(app.drain_sent().is_empty(), "nothing sent at 20:45");
    let dues: Vec<(Option<i64>,)> =
        sqlx::query_as("SELECT due_at FROM campaigns WHERE state = 'awaiting_reply'")
            .fetch_all(&app.engine.db.pool)
            .await
            .unwrap();
    assert!(!dues.is_empty());
    for (due,) in dues {
        let local = DateTime::from_timestamp(due.unwrap(), 0)
            .unwrap()
            .with_timezone(&PARIS);
        assert_eq!(
            local.date_naive(),
            monday + Duration::days(1),
            "waits for Tuesday"
        );
        assert!(local.time() >= chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap());
    }
    // Tuesday morning, the waiting steps go out in their windows.
    app.at(paris(monday + Duration::days(1), 10, 0)).await;
    app.run().await;
    let sent = app.drain_sent();
    assert!(
        !sent.is_empty(),
        "the waiting steps go out the next morning"
    );
    for s in sent {
        let local = s.at.with_timezone(&PARIS);
        assert!(local.date_naive() == monday + Duration::days(1));
    }
}

crate::on_both!(
    a_slow_provider_and_a_short_lease_never_send_twice_nor_overwrite_an_answer,
    kill_9_during_slow_sends_and_at_each_crash_point_loses_and_repeats_nothing,
    after_downtime_nothing_is_sent_outside_the_windows,
);
