//! FHIR R4 agenda connector: reads a site's appointments from the centre's FHIR server and
//! writes confirmations and cancellations back.
//!
//! Reading (`read_window`, run by the planner through `engine::sync`): `GET [base]/Appointment?date=ge…&date=lt…
//! &status=booked,pending&_include=Appointment:patient&_count=N`, window bounds in the site's time
//! zone with that day's real offset, following `link[relation=next]`. The patient's mobile comes
//! from `Patient.telecom` (`system=phone`, `use=mobile` preferred), the language from
//! `Patient.communication`, the exam from `serviceType`/`appointmentType` codings mapped to the
//! catalogue (unknown codes keep the site's default policy and are reported). The resource and its
//! version are kept with the appointment. Appointments that disappear from the window or change
//! status upstream close their campaigns; a moved one supersedes its campaign.
//!
//! Writing (the outbox calls `confirm` / `release`): the kept resource is modified in place (so
//! unknown fields and extensions survive) and `PUT` with `If-Match: W/"<version>"`; a 409/412
//! re-reads and re-applies the intent, at most 3 times; 5xx and timeouts are `Unavailable` and the
//! outbox retries with backoff. Nothing is written when the appointment changed so that the
//! intent is wrong (moved to another time, cancelled upstream): that is a `Conflict`, and a person
//! gets a note. Confirm sets the patient participant `accepted` (and `pending → booked` where the
//! site uses `pending`), with a `meta.tag` saying who confirmed. Release sets `status=cancelled`,
//! `cancelationReason=pat-crs`, the patient participant `declined`, and frees each referenced Slot
//! unless another active appointment still uses it or the server manages slots itself — in one
//! transaction Bundle where the server supports it, else the Appointment first, then the Slots.
//! Never DELETE.

use crate::agenda::{Agenda, AgendaError, Appointment};
use crate::config::Settings;
use crate::config::{FhirAuth, FhirSettings, Site};
use crate::domain::calendar::resolve_local;
use crate::domain::types::{Channel, PhoneNumber};
use crate::store::{Db, appointments};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveTime, Utc};
use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use tokio::sync::Mutex;

const CANCEL_REASON_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason";
const MAX_CONFLICT_RETRIES: usize = 3;

pub struct FhirClient {
    settings: FhirSettings,
    http: reqwest::Client,
    token: Mutex<Option<(String, std::time::Instant)>>,
    /// Whether the server's CapabilityStatement lists the `transaction` interaction (asked once).
    transactions: Mutex<Option<bool>>,
}

/// A resource and its version (`meta.versionId`, the ETag's value).
#[derive(Debug, Clone)]
pub struct Versioned {
    pub resource: Value,
    pub version: String,
}

fn version_of(resource: &Value) -> String {
    resource["meta"]["versionId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn unavailable(e: impl std::fmt::Display) -> AgendaError {
    AgendaError::Unavailable(e.to_string())
}

impl FhirClient {
    pub fn new(settings: FhirSettings) -> Result<FhirClient> {
        // HTTPS uses ring (pure Rust + cc): installed once per process, a no-op after that.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(settings.timeout_ms))
            .build()?;
        Ok(FhirClient {
            settings,
            http,
            token: Mutex::new(None),
            transactions: Mutex::new(None),
        })
    }

    /// Reads `GET [base]/metadata` once; a server that does not answer is asked again later.
    pub async fn supports_transactions(&self) -> bool {
        let mut known = self.transactions.lock().await;
        if let Some(k) = *known {
            return k;
        }
        let Ok(meta) = self.read("metadata").await else {
            return false;
        };
        let yes = meta.resource["rest"].as_array().is_some_and(|rest| {
            rest.iter().any(|r| {
                r["interaction"]
                    .as_array()
                    .is_some_and(|i| i.iter().any(|x| x["code"] == "transaction"))
            })
        });
        *known = Some(yes);
        yes
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.settings.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    async fn auth(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, AgendaError> {
        let req = req.header("Accept", "application/fhir+json");
        match &self.settings.auth {
            FhirAuth::None => Ok(req),
            FhirAuth::Bearer(t) => Ok(req.bearer_auth(t.expose_secret())),
            FhirAuth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let mut cached = self.token.lock().await;
                if let Some((t, until)) = cached.as_ref()
                    && *until > std::time::Instant::now()
                {
                    return Ok(req.bearer_auth(t));
                }
                let mut form = vec![("grant_type", "client_credentials".to_string())];
                if let Some(s) = scope {
                    form.push(("scope", s.clone()));
                }
                let res: Value = self
                    .http
                    .post(token_url)
                    .basic_auth(client_id, Some(client_secret.expose_secret()))
                    .form(&form)
                    .send()
                    .await
                    .map_err(unavailable)?
                    .error_for_status()
                    .map_err(unavailable)?
                    .json()
                    .await
                    .map_err(unavailable)?;
                let token = res["access_token"]
                    .as_str()
                    .ok_or_else(|| {
                        AgendaError::Unavailable("token response without access_token".into())
                    })?
                    .to_string();
                let ttl = res["expires_in"]
                    .as_u64()
                    .unwrap_or(300)
                    .saturating_sub(30)
                    .max(30);
                *cached = Some((
                    token.clone(),
                    std::time::Instant::now() + std::time::Duration::from_secs(ttl),
                ));
                Ok(req.bearer_auth(token))
            }
        }
    }

    /// Maps a response to the agenda's errors; returns the JSON body of a success.
    async fn answer(res: reqwest::Response) -> Result<Value, AgendaError> {
        let status = res.status();
        match status.as_u16() {
            200..=299 => res.json().await.map_err(unavailable),
            404 | 410 => Err(AgendaError::NotFound),
            409 | 412 => Err(AgendaError::Conflict(format!(
                "version conflict ({status})"
            ))),
            429 | 500..=599 => Err(AgendaError::Unavailable(format!(
                "server answered {status}"
            ))),
            _ => {
                let body: Value = res.json().await.unwrap_or(Value::Null);
                let text = body["issue"][0]["details"]["text"]
                    .as_str()
                    .or(body["issue"][0]["diagnostics"].as_str())
                    .unwrap_or("");
                Err(AgendaError::Conflict(format!(
                    "server refused the write ({status}): {text}"
                )))
            }
        }
    }

    pub async fn read(&self, path: &str) -> Result<Versioned, AgendaError> {
        let res = self
            .auth(self.http.get(self.url(path)))
            .await?
            .send()
            .await
            .map_err(unavailable)?;
        let resource = Self::answer(res).await?;
        Ok(Versioned {
            version: version_of(&resource),
            resource,
        })
    }

    /// `PUT` with `If-Match` on the version the change was made from.
    pub async fn update(&self, path: &str, v: &Versioned) -> Result<Versioned, AgendaError> {
        let res = self
            .auth(self.http.put(self.url(path)))
            .await?
            .header("Content-Type", "application/fhir+json")
            .header("If-Match", format!("W/\"{}\"", v.version))
            .body(v.resource.to_string())
            .send()
            .await
            .map_err(unavailable)?;
        let resource = Self::answer(res).await?;
        Ok(Versioned {
            version: version_of(&resource),
            resource,
        })
    }

    /// `POST [base]/<type>`: creates a resource (the demo seeds its agenda this way).
    pub async fn create(&self, resource: &Value) -> Result<Value, AgendaError> {
        let kind = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let res = self
            .auth(self.http.post(self.url(&kind)))
            .await?
            .header("Content-Type", "application/fhir+json")
            .body(resource.to_string())
            .send()
            .await
            .map_err(unavailable)?;
        Self::answer(res).await
    }

    pub async fn transaction(&self, bundle: &Value) -> Result<Value, AgendaError> {
        let res = self
            .auth(self.http.post(self.url("")))
            .await?
            .header("Content-Type", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .await
            .map_err(unavailable)?;
        Self::answer(res).await
    }

    /// A search, following `link[relation=next]` pages.
    pub async fn search_all(&self, first: &str, query: &[(String, String)]) -> Result<Vec<Value>> {
        let mut entries = Vec::new();
        let mut next: Option<String> = None;
        for page in 0.. {
            anyhow::ensure!(page < 1000, "more than 1000 result pages");
            let req = match &next {
                None => self.http.get(self.url(first)).query(query),
                Some(url) => self.http.get(url),
            };
            let res = self
                .auth(req)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .send()
                .await?;
            let status = res.status();
            anyhow::ensure!(status.is_success(), "FHIR search answered {status}");
            let bundle: Value = res.json().await.context("FHIR search: not a Bundle")?;
            entries.extend(bundle["entry"].as_array().cloned().unwrap_or_default());
            next = bundle["link"]
                .as_array()
                .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(|u| {
                    // Relative links are resolved against the base.
                    if u.starts_with("http://") || u.starts_with("https://") {
                        u.to_string()
                    } else {
                        self.url(u)
                    }
                });
            if next.is_none() {
                break;
            }
        }
        Ok(entries)
    }
}

/// The FHIR agenda of one site: the outbox's write-backs.
pub struct FhirAgenda {
    pub client: FhirClient,
    db: Db,
}

impl FhirAgenda {
    pub fn new(settings: FhirSettings, db: Db) -> Result<FhirAgenda> {
        Ok(FhirAgenda {
            client: FhirClient::new(settings)?,
            db,
        })
    }

    /// The kept copy of an appointment and what Rappel believes of it.
    async fn local(
        &self,
        appointment_id: i64,
        version: i64,
    ) -> Result<(String, i64, Versioned), AgendaError> {
        let row = appointments::source_copy(&self.db, appointment_id)
            .await
            .map_err(unavailable)?
            .ok_or(AgendaError::NotFound)?;
        if row.version != version {
            return Err(AgendaError::Conflict(format!(
                "appointment moved (version {version} → {})",
                row.version
            )));
        }
        let source = row.source.ok_or(AgendaError::NotFound)?;
        let resource: Value = serde_json::from_str(&source).map_err(unavailable)?;
        Ok((
            row.external_id,
            row.starts_at,
            Versioned {
                version: row.source_version.unwrap_or_else(|| version_of(&resource)),
                resource,
            },
        ))
    }

    async fn keep(&self, appointment_id: i64, v: &Versioned) {
        let kept = appointments::keep_source(
            &self.db,
            appointment_id,
            &v.resource.to_string(),
            &v.version,
        )
        .await;
        if let Err(e) = kept {
            tracing::warn!(appointment_id, error = %e, "could not keep the FHIR copy; the next write re-reads it");
        }
    }

    /// Runs `attempt` on the kept copy of an appointment (with its expected start and its
    /// path); on a version conflict (412) re-reads the appointment and runs it again, at most
    /// `MAX_CONFLICT_RETRIES` times: the intent is checked against the fresh copy each time.
    async fn with_conflict_retries<'s, T>(
        &'s self,
        appointment_id: i64,
        version: i64,
        attempt: impl Fn(Versioned, i64, String) -> BoxFuture<'s, Result<T, AgendaError>>,
    ) -> Result<T, AgendaError> {
        let (id, starts_at, mut current) = self.local(appointment_id, version).await?;
        let path = format!("Appointment/{id}");
        for _ in 0..=MAX_CONFLICT_RETRIES {
            match attempt(current.clone(), starts_at, path.clone()).await {
                Err(AgendaError::Conflict(m)) if m.starts_with("version conflict") => {
                    tracing::info!(
                        appointment_id,
                        "FHIR version conflict: re-reading and re-applying"
                    );
                    current = self.client.read(&path).await?;
                    self.keep(appointment_id, &current).await;
                }
                other => return other,
            }
        }
        Err(AgendaError::Unavailable(
            "version conflicts kept recurring".into(),
        ))
    }

    /// Modifies the kept copy and writes it with `If-Match` (re-applied after a conflict).
    async fn write_intent(
        &self,
        appointment_id: i64,
        version: i64,
        apply: impl Fn(&mut Value, i64) -> Result<bool, AgendaError> + Send + Sync,
    ) -> Result<Versioned, AgendaError> {
        let apply = &apply;
        self.with_conflict_retries(appointment_id, version, |current, starts_at, path| {
            Box::pin(async move {
                let mut changed = current.clone();
                if !apply(&mut changed.resource, starts_at)? {
                    return Ok(current);
                }
                let v = self.client.update(&path, &changed).await?;
                self.keep(appointment_id, &v).await;
                Ok(v)
            })
        })
        .await
    }

    async fn release_impl(&self, appointment_id: i64, version: i64) -> Result<(), AgendaError> {
        let s = &self.client.settings;
        if !s.server_manages_slots
            && self.client.supports_transactions().await
            && self.release_in_transaction(appointment_id, version).await?
        {
            return Ok(());
        }
        let appointment = self
            .write_intent(appointment_id, version, |r, starts_at| {
                check_same_slot(r, starts_at)?;
                if r["status"] == "cancelled" {
                    let ours = r["cancelationReason"]["coding"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|x| x["code"] == "pat-crs"));
                    return if ours {
                        Ok(false)
                    } else {
                        Err(AgendaError::Conflict("cancelled upstream".into()))
                    };
                }
                cancel(r, &s.tag_system);
                Ok(true)
            })
            .await?;
        if s.server_manages_slots {
            return Ok(());
        }
        for slot_ref in self.slots_to_free(&appointment.resource).await? {
            let mut slot = self.client.read(&slot_ref).await?;
            slot.resource["status"] = json!("free");
            match self.client.update(&slot_ref, &slot).await {
                Ok(_) => {}
                Err(AgendaError::Conflict(m)) if m.starts_with("version conflict") => {
                    // Someone changed the slot: the next outbox try re-reads it.
                    return Err(AgendaError::Unavailable(format!("slot {m}")));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Busy slots of an appointment that no other active appointment uses.
    async fn slots_to_free(&self, appointment: &Value) -> Result<Vec<String>, AgendaError> {
        let own_id = appointment["id"].as_str().unwrap_or_default().to_string();
        let mut out = Vec::new();
        for slot_ref in appointment["slot"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s["reference"].as_str().map(str::to_string))
        {
            let others = self
                .client
                .search_all(
                    "Appointment",
                    &[
                        ("slot".into(), slot_ref.clone()),
                        ("status".into(), "booked,pending,arrived,checked-in".into()),
                    ],
                )
                .await
                .map_err(unavailable)?;
            if others
                .iter()
                .any(|e| e["resource"]["id"].as_str() != Some(own_id.as_str()))
            {
                continue;
            }
            let slot = self.client.read(&slot_ref).await?;
            if slot.resource["status"] != "free" {
                out.push(slot_ref);
            }
        }
        Ok(out)
    }

    /// The cancellation and its slots in one transaction Bundle, every entry with `ifMatch`; a
    /// version conflict anywhere rejects the whole Bundle, and the intent is re-read and re-applied.
    async fn release_in_transaction(
        &self,
        appointment_id: i64,
        version: i64,
    ) -> Result<bool, AgendaError> {
        let tag_system = &self.client.settings.tag_system;
        self.with_conflict_retries(appointment_id, version, |current, starts_at, path| Box::pin(async move {
            check_same_slot(&current.resource, starts_at)?;
            if current.resource["status"] == "cancelled" {
                // Already cancelled (by us, earlier): the sequential path finishes the slots.
                return Ok(false);
            }
            let mut changed = current.clone();
            cancel(&mut changed.resource, tag_system);
            let mut entries = vec![json!({
                "resource": changed.resource,
                "request": {"method": "PUT", "url": path, "ifMatch": format!("W/\"{}\"", changed.version)}
            })];
            for slot_ref in self.slots_to_free(&current.resource).await? {
                let mut slot = self.client.read(&slot_ref).await?;
                slot.resource["status"] = json!("free");
                entries.push(json!({
                    "resource": slot.resource,
                    "request": {"method": "PUT", "url": slot_ref, "ifMatch": format!("W/\"{}\"", slot.version)}
                }));
            }
            let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
            let resp = self.client.transaction(&bundle).await?;
            let appointment = resp["entry"][0]["resource"].clone();
            if appointment.is_object() {
                let v = Versioned {
                    version: version_of(&appointment),
                    resource: appointment,
                };
                self.keep(appointment_id, &v).await;
            }
            Ok(true)
        }))
        .await
    }
}

/// The cancellation Rappel writes: status, reason pat-crs, patient declined, its tag.
fn cancel(r: &mut Value, tag_system: &str) {
    r["status"] = json!("cancelled");
    r["cancelationReason"] = json!({"coding": [{
        "system": CANCEL_REASON_SYSTEM, "code": "pat-crs",
        "display": "Patient: Canceled via automated reminder system"}]});
    set_patient_status(r, "declined");
    add_tag(r, tag_system, "cancelled-by-patient");
}

/// A write is only right for the appointment Rappel asked about: same start, not moved.
fn check_same_slot(r: &Value, starts_at: i64) -> Result<(), AgendaError> {
    let start = r["start"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.timestamp());
    if start != Some(starts_at) {
        return Err(AgendaError::Conflict("appointment moved upstream".into()));
    }
    Ok(())
}

fn set_patient_status(r: &mut Value, status: &str) {
    if let Some(ps) = r["participant"].as_array_mut() {
        for p in ps {
            if p["actor"]["reference"]
                .as_str()
                .is_some_and(|x| x.starts_with("Patient/"))
            {
                p["status"] = json!(status);
            }
        }
    }
}

fn add_tag(r: &mut Value, system: &str, code: &str) {
    let tag = json!({"system": system, "code": code});
    if !r["meta"].is_object() {
        r["meta"] = json!({});
    }
    match r["meta"]["tag"].as_array_mut() {
        Some(tags) => {
            if !tags
                .iter()
                .any(|t| t["system"] == system && t["code"] == code)
            {
                tags.push(tag);
            }
        }
        None => r["meta"]["tag"] = json!([tag]),
    }
}

impl Agenda for FhirAgenda {
    fn capabilities(&self) -> crate::agenda::Capabilities {
        crate::agenda::Capabilities {
            reads_window: true,
            confirms: true,
            releases_slots: !self.client.settings.server_manages_slots,
            versioned_writes: true,
        }
    }

    fn confirm(&self, appointment_id: i64, version: i64) -> BoxFuture<'_, Result<(), AgendaError>> {
        Box::pin(async move {
            let use_pending = self.client.settings.use_pending;
            let tag_system = self.client.settings.tag_system.clone();
            self.write_intent(appointment_id, version, |r, starts_at| {
                check_same_slot(r, starts_at)?;
                match r["status"].as_str() {
                    Some("booked") | Some("pending") => {}
                    other => {
                        return Err(AgendaError::Conflict(format!(
                            "appointment is {} upstream",
                            other.unwrap_or("without status")
                        )));
                    }
                }
                let accepted = r["participant"].as_array().is_some_and(|ps| {
                    ps.iter().any(|p| {
                        p["actor"]["reference"]
                            .as_str()
                            .is_some_and(|x| x.starts_with("Patient/"))
                            && p["status"] == "accepted"
                    })
                });
                if accepted && r["status"] == "booked" {
                    return Ok(false);
                }
                set_patient_status(r, "accepted");
                if use_pending && r["status"] == "pending" {
                    r["status"] = json!("booked");
                }
                add_tag(r, &tag_system, "confirmed-by-patient");
                Ok(true)
            })
            .await
            .map(|_| ())
        })
    }

    fn release(&self, appointment_id: i64, version: i64) -> BoxFuture<'_, Result<(), AgendaError>> {
        Box::pin(self.release_impl(appointment_id, version))
    }
}

/// The FHIR search window of a site: from the start of today to the end of the horizon, local
/// midnights with that day's real offset (`+01:00` in winter, `+02:00` in summer in Paris).
fn window(site: &Site, now: DateTime<Utc>, horizon_days: u32) -> (String, String, i64, i64) {
    let today = now.with_timezone(&site.tz).date_naive();
    let start = resolve_local(site.tz, today.and_time(NaiveTime::MIN));
    let end_day = today + Duration::days(i64::from(horizon_days) + 1);
    let end = resolve_local(site.tz, end_day.and_time(NaiveTime::MIN));
    let fmt = |t: DateTime<Utc>| {
        t.with_timezone(&site.tz)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    (fmt(start), fmt(end), start.timestamp(), end.timestamp())
}

/// The exam code of an appointment: the first coding whose code is in the catalogue.
fn exam_of(r: &Value, catalogue: &HashSet<&str>) -> (String, bool) {
    let mut codes = Vec::new();
    for field in ["serviceType", "appointmentType"] {
        let concepts = match &r[field] {
            Value::Array(a) => a.clone(),
            Value::Object(_) => vec![r[field].clone()],
            _ => vec![],
        };
        for c in concepts {
            for coding in c["coding"].as_array().cloned().unwrap_or_default() {
                if let Some(code) = coding["code"].as_str() {
                    codes.push(code.to_string());
                }
            }
        }
    }
    match codes.iter().find(|c| catalogue.contains(c.as_str())) {
        Some(c) => (c.clone(), true),
        None => (
            codes.into_iter().next().unwrap_or_else(|| "UNKNOWN".into()),
            false,
        ),
    }
}

fn phone_of(patient: &Value) -> Option<PhoneNumber> {
    let telecom = patient["telecom"].as_array()?;
    let phones: Vec<&Value> = telecom.iter().filter(|t| t["system"] == "phone").collect();
    let pick = phones
        .iter()
        .find(|t| t["use"] == "mobile")
        .or_else(|| {
            phones.iter().find(|t| {
                t["value"]
                    .as_str()
                    .and_then(|v| PhoneNumber::parse(v).ok())
                    .is_some_and(|p| p.is_mobile())
            })
        })
        .or(phones.first())?;
    PhoneNumber::parse(pick["value"].as_str()?).ok()
}

fn name_of(patient: &Value) -> String {
    let n = &patient["name"][0];
    if let Some(t) = n["text"].as_str() {
        return t.to_string();
    }
    let given = n["given"]
        .as_array()
        .and_then(|g| g.first())
        .and_then(Value::as_str)
        .unwrap_or("");
    let family = n["family"].as_str().unwrap_or("");
    let full = format!("{given} {family}").trim().to_string();
    if full.is_empty() {
        "(no name)".into()
    } else {
        full
    }
}

fn language_of(patient: &Value) -> Option<String> {
    patient["communication"].as_array()?.iter().find_map(|c| {
        let code = c["language"]["coding"][0]["code"]
            .as_str()
            .or(c["language"]["text"].as_str())?;
        let base = code.split(['-', '_']).next()?.to_ascii_lowercase();
        matches!(base.as_str(), "fr" | "en").then_some(base)
    })
}

/// What one read of a site's FHIR window found.
#[derive(Debug, Default, Clone)]
pub struct WindowRead {
    /// Booked or pending appointments of the window, checked into Rappel's shape.
    pub appointments: Vec<Appointment>,
    /// Ids of every appointment the server listed (what is missing from it is gone upstream).
    pub seen: HashSet<String>,
    pub unknown_exams: usize,
    /// The window, Unix seconds `[start, end)`.
    pub start: i64,
    pub end: i64,
}

/// Reads a FHIR site's window (see the module doc); the engine brings the local copy in line.
pub async fn read_window(
    settings: &Settings,
    site: &Site,
    client: &FhirClient,
    now: DateTime<Utc>,
) -> Result<WindowRead> {
    let (ge, lt, start_ts, end_ts) = window(site, now, settings.horizon_days);
    let entries = client
        .search_all(
            "Appointment",
            &[
                ("date".into(), format!("ge{ge}")),
                ("date".into(), format!("lt{lt}")),
                ("status".into(), "booked,pending".into()),
                ("_include".into(), "Appointment:patient".into()),
                ("_count".into(), client.settings.page_size.to_string()),
            ],
        )
        .await
        .with_context(|| format!("reading the FHIR agenda of site {}", site.id))?;
    let mut patients: HashMap<String, Value> = HashMap::new();
    let mut appointments = Vec::new();
    for e in entries {
        let r = e["resource"].clone();
        match r["resourceType"].as_str() {
            Some("Patient") => {
                if let Some(id) = r["id"].as_str() {
                    patients.insert(format!("Patient/{id}"), r);
                }
            }
            Some("Appointment") => appointments.push(r),
            _ => {}
        }
    }
    let catalogue: HashSet<&str> = settings.exams.keys().map(String::as_str).collect();
    let mut unknown_exams = 0;
    let mut checked = Vec::new();
    let mut seen = HashSet::new();
    for r in appointments {
        let Some(id) = r["id"].as_str().map(str::to_string) else {
            continue;
        };
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(start) = r["start"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        else {
            tracing::warn!(site = %site.id, "FHIR appointment without a start skipped");
            continue;
        };
        let (exam_code, known) = exam_of(&r, &catalogue);
        if !known {
            unknown_exams += 1;
        }
        let patient_ref = r["participant"]
            .as_array()
            .and_then(|ps| {
                ps.iter().find_map(|p| {
                    p["actor"]["reference"]
                        .as_str()
                        .filter(|x| x.starts_with("Patient/"))
                })
            })
            .unwrap_or_default()
            .to_string();
        let patient = patients.get(&patient_ref).cloned().unwrap_or(Value::Null);
        let duration = r["minutesDuration"].as_u64().map(|m| m as u32).or_else(|| {
            let end = DateTime::parse_from_rfc3339(r["end"].as_str()?).ok()?;
            u32::try_from((end - start).num_minutes()).ok()
        });
        let duration_min = duration
            .filter(|d| (1..=600).contains(d))
            .or(settings.exams.get(&exam_code).map(|e| e.duration_min))
            .unwrap_or(15);
        checked.push(Appointment {
            external_id: id,
            site_id: site.id.clone(),
            exam_code,
            starts_at: start.with_timezone(&Utc),
            duration_min,
            patient_name: name_of(&patient),
            phone: phone_of(&patient),
            locale: language_of(&patient).unwrap_or_else(|| site.locale.clone()),
            channel: Channel::Sms,
            cancelled: false,
            source: Some((r.to_string(), version_of(&r))),
        });
    }
    if unknown_exams > 0 {
        tracing::warn!(site = %site.id, count = unknown_exams, "FHIR appointments with exam codes not in the catalogue (default policy used)");
    }
    Ok(WindowRead {
        appointments: checked,
        seen,
        unknown_exams,
        start: start_ts,
        end: end_ts,
    })
}
