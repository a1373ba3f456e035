//! A client for Twilio's REST API 2010-04-01 (Twilio itself, or any compatible provider such as
//! SignalWire's), over reqwest: Basic auth, form-encoded bodies, repeated keys for arrays.
//!
//! - Messages: `POST Messages.json` (`To`, `From` or `MessagingServiceSid`, `Body` or
//!   `ContentSid` + `ContentVariables` for WhatsApp templates, `StatusCallback`).
//! - Calls: `POST Calls.json` (`Url` of Rappel's TwiML, `StatusCallback` with the four
//!   `StatusCallbackEvent`s, async answering-machine detection, `Timeout`, `TimeLimit`).
//! - Reconciliation: Twilio has no idempotency key, so after a 5xx or a timeout the client lists
//!   the messages (or calls) to that number since the attempt was recorded before saying
//!   "not sent"; the engine then never sends an attempt twice.
//! - Pacing: a per-sender rate (messages per second, from the configuration) and a global
//!   in-flight limit; a 429 is returned as `RateLimited` with its `Retry-After` (plus jitter, so a
//!   storm of retries does not come back in lockstep).
//!
//! Error codes are mapped to what the campaign must do (`ProviderError`), never passed on raw.
//! The auth token is a `SecretString`: it never appears in logs or error messages.

pub use crate::config::TwilioSettings;
use crate::domain::policy::RECONCILE_CLOCK_SLACK;
use crate::domain::types::Channel;
use crate::provider::{Accepted, Outbound, Provider, ProviderError};
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use rand::Rng;
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

pub struct TwilioClient {
    settings: TwilioSettings,
    http: reqwest::Client,
    in_flight: Arc<Semaphore>,
    /// Next free instant per sender.
    pacing: Mutex<HashMap<String, Instant>>,
}

/// What Twilio answers with an error status.
#[derive(Debug, Deserialize)]
struct TwilioErrorBody {
    code: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Created {
    sid: String,
}

#[derive(Debug, Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<ListedMessage>,
}

#[derive(Debug, Deserialize)]
struct ListedMessage {
    sid: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    date_created: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CallList {
    #[serde(default)]
    calls: Vec<ListedCall>,
}

#[derive(Debug, Deserialize)]
struct ListedCall {
    sid: String,
    #[serde(default)]
    date_created: Option<String>,
}

/// What a Twilio error code means for the campaign. Codes from Twilio's error dictionary.
pub fn map_error_code(code: i64) -> ProviderError {
    let c = code.to_string();
    match code {
        // The number does not exist or cannot be a destination.
        21211 | 21214 | 21217 | 21401 | 30005 => ProviderError::InvalidNumber { code: c },
        // Opted out at the provider (STOP sent to the sender).
        21610 => ProviderError::OptedOut { code: c },
        // Not a mobile / cannot get this channel: try the next channel.
        21612 | 21614 | 30006 | 63016 | 63024 | 63003 => {
            ProviderError::ChannelUnavailable { code: c }
        }
        // Rappel's configuration is wrong: pause rather than burn attempts.
        20003 | 20404 | 21408 | 21606 | 21608 | 21659 | 21660 | 21212 | 30007 | 63007 | 63018 => {
            ProviderError::Configuration { code: c }
        }
        20429 | 14107 => ProviderError::RateLimited { retry_after: None },
        // Queue overflow, unreachable handset, unknown: later.
        _ => ProviderError::Transient {
            code: Some(c),
            retry_after: None,
        },
    }
}

fn jitter(d: Duration) -> Duration {
    let extra = rand::rng().random_range(0..=(d.num_milliseconds().max(1000) / 2));
    d + Duration::milliseconds(extra)
}

impl TwilioClient {
    pub fn new(settings: TwilioSettings) -> anyhow::Result<TwilioClient> {
        // HTTPS uses ring (pure Rust + cc): installed once per process, a no-op after that.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .pool_max_idle_per_host(settings.max_in_flight)
            .build()?;
        Ok(TwilioClient {
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            settings,
            http,
            pacing: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, resource: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{resource}",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.account_sid
        )
    }

    fn webhook(&self, path: &str) -> String {
        format!("{}{path}", self.settings.public_url.trim_end_matches('/'))
    }

    /// A webhook that names the attempt (`?attempt=c1-s0-a0`): its callbacks find the attempt
    /// even before its provider id is recorded.
    fn attempt_webhook(&self, path: &str, m: &Outbound) -> String {
        self.webhook(&format!("{path}?attempt={}", m.client_ref))
    }

    /// Waits for this sender's next slot (at most `messages_per_second`).
    async fn pace(&self, sender: &str) {
        let gap =
            std::time::Duration::from_secs_f64(1.0 / self.settings.messages_per_second.max(0.001));
        let slot = {
            let mut map = self.pacing.lock().await;
            let now = Instant::now();
            let next = map.get(sender).copied().unwrap_or(now).max(now);
            map.insert(sender.to_string(), next + gap);
            next
        };
        tokio::time::sleep_until(slot).await;
    }

    /// The form of one outbound message or call.
    pub fn form(&self, m: &Outbound) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: String| f.push((k.to_string(), v));
        match m.channel {
            Channel::Call => {
                push("To", m.to.as_e164().to_string());
                push("From", m.from.clone());
                push(
                    "Url",
                    self.webhook(&format!(
                        "/webhooks/twilio/voice/answer?attempt={}",
                        m.client_ref
                    )),
                );
                push("Method", "POST".into());
                push(
                    "StatusCallback",
                    self.attempt_webhook("/webhooks/twilio/voice/status", m),
                );
                push("StatusCallbackMethod", "POST".into());
                for ev in ["initiated", "ringing", "answered", "completed"] {
                    push("StatusCallbackEvent", ev.into());
                }
                push("MachineDetection", "DetectMessageEnd".into());
                push("AsyncAmd", "true".into());
                push(
                    "AsyncAmdStatusCallback",
                    self.attempt_webhook("/webhooks/twilio/voice/amd", m),
                );
                push("AsyncAmdStatusCallbackMethod", "POST".into());
                push("Timeout", "25".into());
                push("TimeLimit", "240".into());
            }
            Channel::Sms | Channel::Whatsapp => {
                let to = if m.channel == Channel::Whatsapp {
                    format!("whatsapp:{}", m.to.as_e164())
                } else {
                    m.to.as_e164().to_string()
                };
                push("To", to);
                if m.from.starts_with("MG") {
                    push("MessagingServiceSid", m.from.clone());
                } else {
                    push("From", m.from.clone());
                }
                match &m.template {
                    Some(t) => {
                        push("ContentSid", t.content_sid.clone());
                        push("ContentVariables", t.variables.to_string());
                    }
                    None => push("Body", m.body.clone()),
                }
                push(
                    "StatusCallback",
                    self.attempt_webhook("/webhooks/twilio/messages/status", m),
                );
            }
        }
        f
    }

    async fn send_one(&self, m: &Outbound) -> Result<Accepted, ProviderError> {
        let _permit = self.in_flight.acquire().await.expect("semaphore open");
        let resource = if m.channel == Channel::Call {
            "Calls.json"
        } else {
            "Messages.json"
        };
        let res = self
            .http
            .post(self.url(resource))
            .basic_auth(
                &self.settings.account_sid,
                Some(self.settings.auth_token.expose_secret()),
            )
            .form(&self.form(m))
            .send()
            .await;
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                // A timeout or a broken connection: the provider may have created it.
                tracing::warn!(attempt = %m.client_ref, timeout = e.is_timeout(), "provider request failed; reconciling");
                return self.reconcile_after_doubt(m).await;
            }
        };
        let status = res.status();
        if status.is_success() {
            let created: Created = res.json().await.map_err(|_| ProviderError::Transient {
                code: None,
                retry_after: Some(Duration::minutes(1)),
            })?;
            return Ok(Accepted::new(created.sid));
        }
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(Duration::seconds);
        if status.as_u16() == 429 {
            return Err(ProviderError::RateLimited {
                retry_after: Some(jitter(retry_after.unwrap_or(Duration::seconds(1)))),
            });
        }
        if status.is_server_error() {
            tracing::warn!(attempt = %m.client_ref, status = status.as_u16(), "provider 5xx; reconciling");
            return self.reconcile_after_doubt(m).await;
        }
        let code = res
            .json::<TwilioErrorBody>()
            .await
            .ok()
            .and_then(|b| b.code);
        Err(match (status.as_u16(), code) {
            (401 | 403, _) => ProviderError::Configuration {
                code: code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| status.as_u16().to_string()),
            },
            (_, Some(c)) => map_error_code(c),
            (s, None) => ProviderError::Configuration {
                code: s.to_string(),
            },
        })
    }

    async fn reconcile_after_doubt(&self, m: &Outbound) -> Result<Accepted, ProviderError> {
        match self.find_created(m).await {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(ProviderError::Transient {
                code: None,
                retry_after: Some(jitter(Duration::seconds(30))),
            }),
            Err(e) => Err(e),
        }
    }

    /// Finds what the provider created for this very attempt, among the latest items to this
    /// number (no date filter: `DateSent` and `StartTime` are empty while an item is queued).
    /// Only items created since the attempt was recorded (wall clock, a few seconds of slack for
    /// clock skew) can be it: an earlier message or call to the same number belongs to an
    /// earlier attempt. Messages must also carry this attempt's text (its body, or for a
    /// WhatsApp template each of its variables); calls have no text and are matched by time.
    async fn find_created(&self, m: &Outbound) -> Result<Option<Accepted>, ProviderError> {
        let since = m.recorded_wall - RECONCILE_CLOCK_SLACK;
        let created_since = |d: &Option<String>| {
            d.as_deref()
                .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                .map(|d| d.with_timezone(&Utc))
                .filter(|d| *d >= since)
        };
        if m.channel == Channel::Call {
            let list: CallList = self
                .list("Calls.json", &[("To", m.to.as_e164()), ("PageSize", "50")])
                .await?;
            return Ok(list.calls.into_iter().find_map(|c| {
                created_since(&c.date_created).map(|at| Accepted {
                    provider_id: c.sid,
                    created_at: Some(at),
                })
            }));
        }
        let to = if m.channel == Channel::Whatsapp {
            format!("whatsapp:{}", m.to.as_e164())
        } else {
            m.to.as_e164().to_string()
        };
        let list: MessageList = self
            .list("Messages.json", &[("To", &to), ("PageSize", "100")])
            .await?;
        let ours = |body: &str| match &m.template {
            None => body == m.body,
            Some(t) => t.variables.as_object().is_some_and(|vars| {
                vars.values()
                    .all(|v| v.as_str().is_some_and(|v| body.contains(v)))
            }),
        };
        Ok(list.messages.into_iter().find_map(|x| {
            let at = created_since(&x.date_created)?;
            ours(x.body.as_deref().unwrap_or_default()).then_some(Accepted {
                provider_id: x.sid,
                created_at: Some(at),
            })
        }))
    }

    /// One page of a list resource (reconciliation looks at the most recent ones only).
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ProviderError> {
        let transient = |_| ProviderError::Transient {
            code: None,
            retry_after: Some(Duration::minutes(1)),
        };
        let _permit = self.in_flight.acquire().await.expect("semaphore open");
        self.http
            .get(self.url(resource))
            .basic_auth(
                &self.settings.account_sid,
                Some(self.settings.auth_token.expose_secret()),
            )
            .query(query)
            .send()
            .await
            .map_err(transient)?
            .error_for_status()
            .map_err(transient)?
            .json()
            .await
            .map_err(transient)
    }
}

impl Provider for TwilioClient {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn wait_turn<'a>(&'a self, from: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.pace(from))
    }

    fn send_now<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Accepted, ProviderError>> {
        Box::pin(self.send_one(msg))
    }

    fn find<'a>(
        &'a self,
        msg: &'a Outbound,
    ) -> BoxFuture<'a, Result<Option<Accepted>, ProviderError>> {
        Box::pin(self.find_created(msg))
    }

    fn update_call<'a>(
        &'a self,
        call_sid: &'a str,
        twiml: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let _permit = self.in_flight.acquire().await.expect("semaphore open");
            let res = self
                .http
                .post(self.url(&format!("Calls/{call_sid}.json")))
                .basic_auth(
                    &self.settings.account_sid,
                    Some(self.settings.auth_token.expose_secret()),
                )
                .form(&[("Twiml", twiml)])
                .send()
                .await
                .map_err(|_| ProviderError::Transient {
                    code: None,
                    retry_after: None,
                })?;
            if res.status().is_success() {
                Ok(())
            } else {
                let code = res
                    .json::<TwilioErrorBody>()
                    .await
                    .ok()
                    .and_then(|b| b.code);
                Err(code
                    .map(map_error_code)
                    .unwrap_or(ProviderError::Transient {
                        code: None,
                        retry_after: None,
                    }))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(rate: f64) -> TwilioClient {
        TwilioClient::new(TwilioSettings {
            base_url: "http://127.0.0.1:9".into(),
            account_sid: "AC00000000000000000000000000000000".into(),
            auth_token: secrecy::SecretString::from("token"),
            public_url: "http://127.0.0.1:8080".into(),
            messages_per_second: rate,
            max_in_flight: 4,
            timeout: std::time::Duration::from_secs(1),
        })
        .unwrap()
    }

    /// Virtual time: the limiter's schedule is checked exactly, not timed.
    #[tokio::test(start_paused = true)]
    async fn a_sender_never_goes_faster_than_its_configured_rate_and_senders_do_not_wait_for_each_other()
     {
        let c = client(20.0);
        let start = Instant::now();
        for _ in 0..41 {
            c.pace("+33700000001").await;
        }
        let one = start.elapsed();
        assert!(
            one >= std::time::Duration::from_secs(2),
            "41 sends at 20/s take at least 2 s: {one:?}"
        );
        assert!(one < std::time::Duration::from_millis(2100), "{one:?}");
        let other = Instant::now();
        c.pace("+33700000002").await;
        assert!(
            other.elapsed() < std::time::Duration::from_millis(1),
            "another sender has its own pace"
        );
    }

    #[test]
    fn error_codes_map_to_what_the_campaign_must_do() {
        assert!(matches!(
            map_error_code(21211),
            ProviderError::InvalidNumber { .. }
        ));
        assert!(matches!(
            map_error_code(21610),
            ProviderError::OptedOut { .. }
        ));
        assert!(matches!(
            map_error_code(30006),
            ProviderError::ChannelUnavailable { .. }
        ));
        assert!(matches!(
            map_error_code(63016),
            ProviderError::ChannelUnavailable { .. }
        ));
        assert!(matches!(
            map_error_code(21606),
            ProviderError::Configuration { .. }
        ));
        assert!(matches!(
            map_error_code(20429),
            ProviderError::RateLimited { .. }
        ));
        assert!(matches!(
            map_error_code(30001),
            ProviderError::Transient { .. }
        ));
    }

    #[test]
    fn a_call_asks_for_every_status_event_and_async_machine_detection() {
        let c = client(1.0);
        let m = Outbound {
            client_ref: "c1-s2-a0".into(),
            channel: Channel::Call,
            from: "+33142000001".into(),
            to: crate::domain::types::PhoneNumber::parse("+33612345678").unwrap(),
            body: String::new(),
            recorded_at: Utc::now(),
            recorded_wall: Utc::now(),
            template: None,
        };
        let f = c.form(&m);
        let events: Vec<&str> = f
            .iter()
            .filter(|(k, _)| k == "StatusCallbackEvent")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);
        assert!(
            f.iter().any(|(k, v)| k == "Url"
                && v.ends_with("/webhooks/twilio/voice/answer?attempt=c1-s2-a0"))
        );
        assert!(f.iter().any(|(k, v)| k == "AsyncAmd" && v == "true"));
        // Every callback names its attempt, so it finds it before its provider id is recorded.
        for key in ["StatusCallback", "AsyncAmdStatusCallback"] {
            assert!(
                f.iter()
                    .any(|(k, v)| k == key && v.ends_with("?attempt=c1-s2-a0")),
                "{key}"
            );
        }
    }
}
