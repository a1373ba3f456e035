//! `rappel demo`: a whole day of a two-site imaging group (Paris and Réunion, about 200
//! appointments) on a temporary SQLite database, through the real planner, dispatcher, reply
//! path and agenda outbox, with the sandbox provider and a simulated population of patients.
//! With `--config`, the day is booked at that configuration's sites with its exams instead
//! (130 appointments a site, 70 at a Réunion one), under its policies and templates.
//!
//! The clock is a discrete-event one: the engine runs until idle at the current instant, then
//! the clock jumps to the next thing that happens (a step due, a patient's reply, an outbox
//! retry). Three simulated days take a few seconds.

use super::{layer, outln, scratch_dir, settings_with};
use crate::clock::{Clock, ManualClock};
use crate::config::Settings;
use crate::domain::calendar::resolve_local;
use crate::domain::types::Channel;
use crate::engine::{Engine, Inbound};
use crate::provider::{Sandbox, SandboxSent};
use crate::store::Db;
use crate::store::stats::Summary;
use crate::templates::Templates;
use anyhow::Result;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The demo prints the summary as a table.
trait PrintSummary {
    fn print(&self) -> Result<()>;
}

impl PrintSummary for Summary {
    fn print(&self) -> Result<()> {
        let hours = |h: Option<f64>| h.map(|h| format!("{h:.1} h")).unwrap_or_else(|| "-".into());
        let rows: [(&str, String); 15] = [
            ("appointments", self.appointments.to_string()),
            ("messages sent", self.messages_sent.to_string()),
            ("calls placed", self.calls_placed.to_string()),
            ("acknowledgements sent", self.acknowledgements.to_string()),
            ("confirmed", self.confirmed.to_string()),
            ("cancelled by patients", self.cancelled.to_string()),
            ("slots released in agenda", self.slots_released.to_string()),
            (
                "reschedule requested",
                self.reschedule_requested.to_string(),
            ),
            (
                "notes for secretaries",
                self.escalated_to_secretaries.to_string(),
            ),
            ("unreachable", self.unreachable.to_string()),
            (
                "  told, median before appt",
                hours(self.unreachable_notice_hours_median),
            ),
            (
                "  told, earliest appt lead",
                hours(self.unreachable_notice_hours_min),
            ),
            ("opted out", self.opted_out.to_string()),
            ("invalid contact", self.invalid_contact.to_string()),
            (
                "confirmation rate",
                format!("{:.1} %", self.confirmation_rate * 100.0),
            ),
        ];
        outln!("\n+-------------------------------+----------+")?;
        outln!("| {:<29} | {:>8} |", "summary", "")?;
        outln!("+-------------------------------+----------+")?;
        for (k, v) in rows {
            outln!("| {k:<29} | {v:>8} |")?;
        }
        outln!("+-------------------------------+----------+")?;
        outln!("| {:<29} | {:>8} |", "replies understood as", "")?;
        outln!("+-------------------------------+----------+")?;
        for (k, v) in &self.reply_intents {
            outln!("| {k:<29} | {v:>8} |")?;
        }
        outln!("+-------------------------------+----------+")
    }
}

/// How a simulated patient behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persona {
    /// Answers the first message with a confirmation, after a delay.
    Confirms,
    Cancels,
    Reschedules,
    AsksQuestion,
    Urgent,
    OptsOut,
    /// Ignores messages, answers a call and presses 1.
    AnswersCallConfirms,
    /// Ignores messages, answers a call and presses 2.
    AnswersCallCancels,
    /// Never answers anything.
    Silent,
}

const CONFIRM_FR: &[&str] = &[
    "oui",
    "Oui merci",
    "ok c bon",
    "je serai là",
    "1",
    "👍",
    "oui je confirme",
    "Ouiii merci beaucoup",
    "oui mais j'aurai 10 min de retard",
    "d'accord, à demain",
];
const CONFIRM_EN: &[&str] = &[
    "yes",
    "Yes I'll be there",
    "1",
    "ok see you then",
    "confirmed, thanks",
];
const CANCEL_FR: &[&str] = &[
    "non",
    "2",
    "je ne pourrai pas venir",
    "annuler svp",
    "Bonjour, je dois annuler mon rdv",
    "j'annule désolé",
];
const CANCEL_EN: &[&str] = &[
    "no",
    "2",
    "can't make it, sorry",
    "please cancel",
    "I won't be able to come",
];
const RESCHEDULE_FR: &[&str] = &[
    "est-ce possible de décaler à la semaine prochaine ?",
    "je voudrais reporter",
    "un autre créneau svp",
    "3",
];
const RESCHEDULE_EN: &[&str] = &["can we move it to friday?", "I need to reschedule", "3"];
const QUESTION_FR: &[&str] = &[
    "faut-il être à jeun ?",
    "quelle est l'adresse exacte ?",
    "je dois apporter quels documents ?",
    "c'est combien de temps ?",
];
const QUESTION_EN: &[&str] = &[
    "do I need to fast?",
    "what is the address?",
    "how long does it take?",
];
const URGENT_FR: &[&str] = &[
    "je suis enceinte, est-ce un problème ?",
    "je suis allergique à l'iode",
    "j'ai un pacemaker",
    "je suis claustrophobe, j'ai très peur",
];
const URGENT_EN: &[&str] = &[
    "I'm pregnant, is that ok?",
    "I have a pacemaker",
    "I am allergic to contrast dye",
];
const OPT_OUT: &[&str] = &["STOP", "stop sms", "ne plus recevoir de sms"];

fn persona(rng: &mut StdRng) -> Persona {
    match rng.random_range(0..100) {
        0..=51 => Persona::Confirms,
        52..=59 => Persona::Cancels,
        60..=63 => Persona::Reschedules,
        64..=67 => Persona::AsksQuestion,
        68..=69 => Persona::Urgent,
        70 => Persona::OptsOut,
        71..=80 => Persona::AnswersCallConfirms,
        81..=83 => Persona::AnswersCallCancels,
        _ => Persona::Silent,
    }
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

struct Patient {
    persona: Persona,
    english: bool,
    answered: bool,
}

const FIRST: &[&str] = &[
    "Marie",
    "Jean",
    "Sophie",
    "Pierre",
    "Nathalie",
    "Michel",
    "Isabelle",
    "Alain",
    "Catherine",
    "Philippe",
    "Sandrine",
    "Karim",
    "Fatima",
    "Lucas",
    "Chloé",
    "Thomas",
    "Aïcha",
    "Julien",
    "Emma",
    "Hugo",
];
const LAST: &[&str] = &[
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Payet", "Hoarau", "Grondin", "Fontaine", "Lefèvre", "Nguyen", "Benali", "Rivière",
];

/// How the demo books a site's day: how many appointments, between which hours, and the
/// country code of its patients' numbers.
struct DemoSite {
    id: String,
    count: usize,
    country_code: &'static str,
    open: u32,
    close: u32,
}

impl DemoSite {
    /// A Réunion site books 70 appointments from 07:00 to 17:00 for +262 numbers; any other
    /// site 130 from 08:00 to 19:00 for +33 numbers.
    fn of(site: &crate::config::Site) -> DemoSite {
        let (count, country_code, open, close) = if site.tz == chrono_tz::Indian::Reunion {
            (70, "262", 7, 17)
        } else {
            (130, "33", 8, 19)
        };
        DemoSite {
            id: site.id.clone(),
            count,
            country_code,
            open,
            close,
        }
    }
}

/// The demo day: the first Wednesday at least three days ahead, so the campaigns open on J-2
/// and the worker has room to escalate.
fn demo_day(today: NaiveDate) -> NaiveDate {
    let mut d = today + Duration::days(3);
    while d.weekday() != Weekday::Wed {
        d += Duration::days(1);
    }
    d
}

/// Builds the day's agenda as CSV (the same path as `rappel import`): at every configured site,
/// exams drawn from the configured catalogue.
fn agenda_csv(settings: &Settings, day: NaiveDate, rng: &mut StdRng) -> String {
    let mut csv = String::from(
        "external_id,site,exam_code,start,duration_min,patient_name,phone,locale,channel\n",
    );
    let mut n = 0;
    let exams: Vec<(&str, u32)> = settings
        .exams
        .values()
        .map(|e| (e.code.as_str(), e.duration_min))
        .collect();
    for site in settings.sites.values().map(DemoSite::of) {
        let DemoSite {
            id: site,
            count,
            country_code: cc,
            open,
            close,
        } = site;
        let slots_per_hour = count.div_ceil((close - open) as usize);
        let mut repeat_phone: Option<String> = None;
        for i in 0..count {
            n += 1;
            let hour = open + (i / slots_per_hour) as u32;
            let minute = ((i % slots_per_hour) * 60 / slots_per_hour) as u32;
            let (exam, dur) = exams[rng.random_range(0..exams.len())];
            let name = format!("{} {}", pick(rng, FIRST), pick(rng, LAST));
            let roll = rng.random_range(0..100);
            let phone = if roll < 2 {
                String::new()
            } else if roll < 7 {
                // landline: calls only
                if cc == "33" {
                    format!("+3314{:07}", rng.random_range(0..10_000_000))
                } else {
                    format!("+262262{:06}", rng.random_range(0..1_000_000))
                }
            } else if roll < 10 && repeat_phone.is_some() {
                // same patient, second exam the same day: one message for both
                repeat_phone.clone().unwrap_or_default()
            } else if cc == "33" {
                format!("+336{:08}", rng.random_range(0..100_000_000))
            } else {
                format!("+262692{:06}", rng.random_range(0..1_000_000))
            };
            if roll >= 10 && !phone.is_empty() {
                repeat_phone = Some(phone.clone());
            }
            let locale = if rng.random_range(0..100) < 10 {
                "en"
            } else {
                "fr"
            };
            let channel = if rng.random_range(0..100) < 15 {
                "whatsapp"
            } else {
                "sms"
            };
            csv.push_str(&format!(
                "RDV-{n:04},{site},{exam},{day}T{hour:02}:{minute:02},{dur},{name},{phone},{locale},{channel}\n"
            ));
        }
    }
    csv
}

/// Creates the site's appointments on the FHIR server (Patient, Schedule, Slot, Appointment),
/// as a centre's RIS would hold them.
async fn seed_fhir(
    client: &crate::agenda::fhir::FhirClient,
    appts: &[crate::agenda::Appointment],
    site_name: &str,
) -> Result<()> {
    let create = |v: serde_json::Value| async move {
        client.create(&v).await.map_err(|e| {
            anyhow::anyhow!("creating a {} on the FHIR server: {e}", v["resourceType"])
        })
    };
    let schedule = create(
        serde_json::json!({"resourceType": "Schedule", "active": true,
        "actor": [{"display": site_name}]}),
    )
    .await?;
    for a in appts {
        let mut names = a.patient_name.splitn(2, ' ');
        let (given, family) = (names.next().unwrap_or(""), names.next().unwrap_or(""));
        let mut telecom = vec![];
        if let Some(p) = &a.phone {
            telecom.push(serde_json::json!({"system": "phone", "use": if p.is_mobile() {"mobile"} else {"home"}, "value": p.as_e164()}));
        }
        let patient = create(serde_json::json!({"resourceType": "Patient",
            "name": [{"given": [given], "family": family}], "telecom": telecom,
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": a.locale}]}}]})).await?;
        let start = a.starts_at.to_rfc3339();
        let end = (a.starts_at + Duration::minutes(i64::from(a.duration_min))).to_rfc3339();
        let slot = create(serde_json::json!({"resourceType": "Slot", "status": "busy",
            "schedule": {"reference": format!("Schedule/{}", schedule["id"].as_str().unwrap_or(""))},
            "start": start, "end": end})).await?;
        create(serde_json::json!({"resourceType": "Appointment", "status": "booked",
            "start": start, "end": end, "minutesDuration": a.duration_min,
            "serviceType": [{"coding": [{"system": "https://rappel.example/exam", "code": a.exam_code}]}],
            "slot": [{"reference": format!("Slot/{}", slot["id"].as_str().unwrap_or(""))}],
            "participant": [{"actor": {"reference": format!("Patient/{}", patient["id"].as_str().unwrap_or(""))},
                             "status": "needs-action"}]})).await?;
    }
    Ok(())
}

/// What the FHIR server holds for the demo day at the end.
async fn fhir_outcome(client: &crate::agenda::fhir::FhirClient, day: NaiveDate) -> Result<()> {
    let q = vec![
        ("date".to_string(), format!("ge{day}")),
        ("date".to_string(), format!("lt{}", day + Duration::days(1))),
        ("_count".to_string(), "100".to_string()),
    ];
    let entries = client.search_all("Appointment", &q).await?;
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut accepted = 0;
    let mut pat_crs = 0;
    for e in &entries {
        let r = &e["resource"];
        *by_status
            .entry(r["status"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        if r["participant"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["status"] == "accepted"))
        {
            accepted += 1;
        }
        if r["cancelationReason"]["coding"][0]["code"] == "pat-crs" {
            pat_crs += 1;
        }
    }
    let slots = client
        .search_all(
            "Slot",
            &[
                ("status".to_string(), "free".to_string()),
                ("_count".to_string(), "100".to_string()),
            ],
        )
        .await?;
    outln!(
        "FHIR server: {} appointments on {day}: {by_status:?}; {accepted} accepted by the patient, {pat_crs} cancelled with reason pat-crs; {} slots free",
        entries.len(),
        slots.len()
    )
}

/// The demo's configuration: the configuration directory's (see `settings_with`), then the
/// demo's own layers. Its SQLite file; the sandbox for every site; every site's agenda built in
/// (a demo never reads or writes a centre's real agenda), except the first site's on the FHIR
/// server at `fhir_url` when given.
fn demo_settings(
    config_dir: Option<&Path>,
    db_path: &Path,
    fhir_url: Option<&str>,
) -> Result<Settings> {
    let own = || {
        layer(
            "demo",
            format!(
                "[database]\nurl = \"sqlite://{}\"\n[provider]\nkind = \"sandbox\"\n",
                db_path.display()
            ),
        )
    };
    let configured = settings_with(config_dir, [own()])?;
    let mut sites = String::new();
    for (i, id) in configured.sites.keys().enumerate() {
        sites.push_str(&format!(
            "[sites.\"{id}\"]\nprovider = \"sandbox\"\n[sites.\"{id}\".agenda]\n"
        ));
        match fhir_url {
            Some(url) if i == 0 => sites.push_str(&format!(
                "kind = \"fhir\"\nbase_url = \"{url}\"\nauth = \"none\"\n"
            )),
            _ => sites.push_str("kind = \"builtin\"\n"),
        }
    }
    settings_with(config_dir, [own(), layer("demo sites", sites)])
}

/// The engine on a migrated database, with a sandbox that tells `listener` what it accepts.
async fn demo_engine(
    settings: Settings,
    clock: Arc<ManualClock>,
    listener: mpsc::UnboundedSender<SandboxSent>,
) -> Result<Engine> {
    let db = Db::connect(&settings.database.url, 4).await?;
    db.migrate().await?;
    let provider = Arc::new(Sandbox::with_listener(db.clone(), listener));
    let templates = Arc::new(Templates::load(settings.templates_dir.as_deref())?);
    Engine::new(db, Arc::new(settings), clock, provider, templates).with_fhir_agendas()
}

/// Writes the day's agenda: a site's on its FHIR server when it has one, the rest in the
/// built-in agenda. Returns the number of appointments.
async fn write_agenda(engine: &Engine, day: NaiveDate, rng: &mut StdRng) -> Result<usize> {
    let csv = agenda_csv(&engine.settings, day, rng);
    let mut appts = crate::agenda::import::parse_import(
        "demo agenda",
        csv.as_bytes(),
        &engine.settings,
        engine.now(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .appointments;
    let total = appts.len();
    for (id, agenda) in &engine.site_agendas {
        let (there, others): (Vec<_>, Vec<_>) = appts.into_iter().partition(|a| &a.site_id == id);
        let name = engine.settings.site(id).map_or(id.as_str(), |s| &s.name);
        seed_fhir(&agenda.client, &there, name).await?;
        outln!(
            "{name} on the FHIR server: {} appointments created there",
            there.len()
        )?;
        appts = others;
    }
    engine.write_appointments(&appts).await?;
    Ok(total)
}

/// The simulated population and the replies it has yet to send.
struct Population {
    rng: StdRng,
    /// What the sandbox accepted, as each patient's phone would receive it.
    inbox: mpsc::UnboundedReceiver<SandboxSent>,
    patients: HashMap<String, Patient>,
    pending: BTreeMap<DateTime<Utc>, Vec<Inbound>>,
    seq: u64,
}

impl Population {
    /// Each patient reads what the sandbox sent them and, by persona, schedules one reply.
    fn listen(&mut self) {
        while let Ok(sent) = self.inbox.try_recv() {
            if sent.client_ref.contains("-s1000-") {
                continue; // acknowledgements need no answer
            }
            let key = sent.to.as_e164().to_string();
            let rng = &mut self.rng;
            let p = self.patients.entry(key).or_insert_with(|| Patient {
                persona: persona(rng),
                english: false,
                answered: false,
            });
            if p.answered {
                continue;
            }
            let locale_en = sent.client_ref.len() % 10 == 0; // stable, cheap variety
            p.english = p.english || locale_en;
            if let Some((delay, text, channel)) = simulated_reply(p, sent.channel, rng) {
                p.answered = true;
                self.seq += 1;
                self.pending
                    .entry(sent.at + delay)
                    .or_default()
                    .push(Inbound {
                        to: None,
                        provider_id: format!("SMDEMO{:06}", self.seq),
                        from: sent.to.clone(),
                        channel,
                        body: text.to_string(),
                        intent: None,
                        campaign_id: None,
                    });
            }
        }
    }

    /// Replies due by `now`, earliest first, taken out of the pending ones.
    fn due(&mut self, now: DateTime<Utc>) -> Vec<Inbound> {
        let due: Vec<DateTime<Utc>> = self.pending.range(..=now).map(|(k, _)| *k).collect();
        due.into_iter()
            .flat_map(|k| self.pending.remove(&k).unwrap_or_default())
            .collect()
    }
}

/// One progress line: campaigns by outcome so far, at `now` (in `tz`).
async fn print_progress(db: &Db, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Result<()> {
    let s = crate::store::stats::state_counts(db).await?;
    outln!(
        "  {}  confirmed {:>3}  cancelled {:>3}  awaiting {:>3}  to secretaries {:>3}",
        now.with_timezone(&tz).format("%a %d %b %H:%M"),
        s.get("confirmed").unwrap_or(&0),
        s.get("cancelled").unwrap_or(&0),
        s.get("awaiting_reply").unwrap_or(&0) + s.get("scheduled").unwrap_or(&0),
        s.get("needs_human").unwrap_or(&0) + s.get("reschedule_requested").unwrap_or(&0),
    )
}

/// Runs the engine and the population from the clock's instant until `end`, jumping from one
/// event to the next (a reply, a due step, the hourly planner).
async fn simulate(
    engine: &Engine,
    clock: &ManualClock,
    population: &mut Population,
    end: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<()> {
    let mut next_progress = clock.now();
    loop {
        engine.run_until_idle().await?;
        population.listen();
        let now = clock.now();
        if now >= next_progress {
            print_progress(&engine.db, now, tz).await?;
            next_progress = now + Duration::hours(6);
        }
        let next_reply = population.pending.keys().next().copied();
        let next_step = engine.next_due().await?;
        let next_plan = now + Duration::hours(1);
        let next = [next_reply, next_step, Some(next_plan)]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min();
        let Some(next) = next else { break };
        if next >= end {
            break;
        }
        clock.set(next);
        for msg in population.due(next) {
            engine.handle_inbound(msg).await?;
        }
    }
    clock.set(end);
    engine.run_until_idle().await?;
    Ok(())
}

/// The demo on the configuration of `config_dir` (see `demo_settings`), with the first site's
/// agenda on a FHIR server when `fhir_url` is given. The simulated clock runs from J-3 06:00 to
/// the end of the demo day, in the first site's time zone.
pub async fn run_with(
    config_dir: Option<&Path>,
    seed: u64,
    fhir_url: Option<String>,
) -> Result<()> {
    let started = std::time::Instant::now();
    let dir = scratch_dir("demo")?;
    let db_path = dir.join("demo.db");
    let settings = demo_settings(config_dir, &db_path, fhir_url.as_deref())?;
    if settings.exams.is_empty() {
        anyhow::bail!("configuration: the demo books exams and the configuration has none");
    }
    let site_names: Vec<String> = settings.sites.values().map(|s| s.name.clone()).collect();
    let tz = settings
        .sites
        .values()
        .next()
        .map(|s| s.tz)
        .ok_or_else(|| anyhow::anyhow!("configuration: the demo needs a site"))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let day = demo_day(Utc::now().date_naive());
    let start = resolve_local(
        tz,
        (day - Duration::days(3)).and_time(NaiveTime::from_hms_opt(6, 0, 0).expect("time")),
    );
    let end = resolve_local(tz, (day + Duration::days(1)).and_time(NaiveTime::MIN));
    let clock = Arc::new(ManualClock::new(start));
    let (tx, rx) = mpsc::unbounded_channel::<SandboxSent>();
    let engine = demo_engine(settings, clock.clone(), tx).await?;

    let appointments = write_agenda(&engine, day, &mut rng).await?;
    outln!(
        "Rappel demo: {appointments} appointments on {day} at {} site{} ({}); simulated clock from {} to {} ({tz} time)",
        site_names.len(),
        if site_names.len() == 1 { "" } else { "s" },
        site_names.join(", "),
        start.with_timezone(&tz).format("%a %d %b %H:%M"),
        end.with_timezone(&tz).format("%a %d %b %H:%M"),
    )?;
    let mut population = Population {
        rng,
        inbox: rx,
        patients: HashMap::new(),
        pending: BTreeMap::new(),
        seq: 0,
    };
    simulate(&engine, &clock, &mut population, end, tz).await?;
    Summary::read(&engine.db).await?.print()?;
    for agenda in engine.site_agendas.values() {
        fhir_outcome(&agenda.client, day).await?;
    }
    outln!(
        "finished in {:.1} s of real time; database kept at {}",
        started.elapsed().as_secs_f64(),
        db_path.display()
    )
}

/// The reply a simulated patient gives to a message or a call, with its delay, if any.
fn simulated_reply(
    p: &Patient,
    channel: Channel,
    rng: &mut StdRng,
) -> Option<(Duration, &'static str, Channel)> {
    let en = p.english;
    let delay = Duration::minutes(rng.random_range(3..240));
    let text = |rng: &mut StdRng, fr: &[&'static str], en_list: &[&'static str]| {
        if en {
            pick(rng, en_list)
        } else {
            pick(rng, fr)
        }
    };
    let reply_channel = if channel == Channel::Whatsapp {
        Channel::Whatsapp
    } else {
        Channel::Sms
    };
    match (p.persona, channel) {
        (Persona::Confirms, c) if c.is_message() => {
            Some((delay, text(rng, CONFIRM_FR, CONFIRM_EN), reply_channel))
        }
        (Persona::Cancels, c) if c.is_message() => {
            Some((delay, text(rng, CANCEL_FR, CANCEL_EN), reply_channel))
        }
        (Persona::Reschedules, c) if c.is_message() => Some((
            delay,
            text(rng, RESCHEDULE_FR, RESCHEDULE_EN),
            reply_channel,
        )),
        (Persona::AsksQuestion, c) if c.is_message() => {
            Some((delay, text(rng, QUESTION_FR, QUESTION_EN), reply_channel))
        }
        (Persona::Urgent, c) if c.is_message() => {
            Some((delay, text(rng, URGENT_FR, URGENT_EN), reply_channel))
        }
        (Persona::OptsOut, c) if c.is_message() => Some((delay, pick(rng, OPT_OUT), reply_channel)),
        // Answered calls: the keypad digit arrives a minute later through the same reply path.
        (Persona::AnswersCallConfirms | Persona::Confirms, Channel::Call) => {
            Some((Duration::minutes(1), "1", Channel::Call))
        }
        (Persona::AnswersCallCancels | Persona::Cancels, Channel::Call) => {
            Some((Duration::minutes(1), "2", Channel::Call))
        }
        _ => None,
    }
}
