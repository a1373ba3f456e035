//! The raw layer: what the files say, every field optional so that any layer may set any part.
//! `deny_unknown_fields` everywhere, so a misspelt key is an error naming its file and key.

use crate::domain::calendar::HolidayRegion;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) server: Option<RawServer>,
    pub(super) database: Option<RawDatabase>,
    pub(super) worker: Option<RawWorker>,
    pub(super) planner: Option<RawPlanner>,
    pub(super) provider: Option<RawProvider>,
    pub(super) clock: Option<RawClock>,
    pub(super) templates: Option<RawTemplates>,
    #[serde(default)]
    pub(super) policies: BTreeMap<String, RawPolicy>,
    #[serde(default)]
    pub(super) sites: BTreeMap<String, RawSite>,
    #[serde(default)]
    pub(super) exams: BTreeMap<String, RawExam>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) bind: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) admin_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) url: Option<String>,
    pub(super) max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorker {
    pub(super) sweep_interval_ms: Option<u64>,
    pub(super) batch_size: Option<usize>,
    pub(super) claim_lease_secs: Option<u64>,
    pub(super) outbox_interval_ms: Option<u64>,
    pub(super) outbox_max_tries: Option<u32>,
    pub(super) outbox_backoff_secs: Option<u64>,
    pub(super) planner_interval_secs: Option<u64>,
    pub(super) send_concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlanner {
    pub(super) horizon_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) kind: Option<String>,
    pub(super) twilio: Option<RawTwilio>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTwilio {
    pub(super) base_url: Option<String>,
    pub(super) account_sid: Option<String>,
    pub(super) auth_token: Option<String>,
    pub(super) messages_per_second: Option<f64>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClock {
    pub(super) start: Option<String>,
    pub(super) speed: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplates {
    pub(super) dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) open_days_before: Option<u32>,
    pub(super) give_up_hours_before: Option<u32>,
    pub(super) escalate_before: Option<String>,
    pub(super) release_on_reschedule: Option<bool>,
    pub(super) messages_per_day: Option<u32>,
    pub(super) calls_per_day: Option<u32>,
    pub(super) steps: Option<Vec<RawStep>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) channel: String,
    pub(super) template: Option<String>,
    pub(super) days_before: Option<u32>,
    pub(super) after_minutes: Option<u32>,
    pub(super) attempts: Option<u32>,
    pub(super) spacing_minutes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub(super) name: Option<String>,
    pub(super) time_zone: Option<String>,
    pub(super) locale: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) holiday_region: Option<HolidayRegion>,
    pub(super) closed_days: Option<Vec<String>>,
    pub(super) show_preparation: Option<bool>,
    pub(super) default_policy: Option<String>,
    #[serde(default)]
    pub(super) policies: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) senders: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) windows: BTreeMap<String, Vec<RawWindow>>,
    #[serde(default)]
    pub(super) vocabulary: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) whatsapp_templates: BTreeMap<String, String>,
    pub(super) provider: Option<String>,
    pub(super) agenda: Option<RawAgenda>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgenda {
    pub(super) kind: Option<String>,
    pub(super) base_url: Option<String>,
    pub(super) auth: Option<String>,
    pub(super) token: Option<String>,
    pub(super) token_url: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) scope: Option<String>,
    pub(super) page_size: Option<u32>,
    pub(super) use_pending: Option<bool>,
    pub(super) server_manages_slots: Option<bool>,
    pub(super) tag_system: Option<String>,
    pub(super) timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWindow {
    pub(super) days: String,
    pub(super) hours: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExam {
    pub(super) family: String,
    pub(super) label_fr: String,
    pub(super) label_en: Option<String>,
    pub(super) duration_min: Option<u32>,
    pub(super) fasting_hours: Option<u32>,
    pub(super) creatinine: Option<bool>,
    pub(super) mri_safety: Option<bool>,
    pub(super) arrive_early_min: Option<u32>,
    pub(super) documents: Option<Vec<String>>,
}
