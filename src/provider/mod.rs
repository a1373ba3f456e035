//! Providers: who actually sends the messages and places the calls.
//!
//! The boundary error type says what the campaign must do about a failure (retry later, try
//! another channel, give up on the number, record an opt-out, pause for a configuration fix);
//! the campaign state machine never sees provider codes. Providers do not de-duplicate (Twilio
//! has no idempotency key): Rappel records each attempt under a unique key before calling
//! `send`, and after a crash or a timeout asks `find` before sending again.
//!
//! The sandbox is the embedded default: it accepts everything, records it in its own table
//! (standing in for the provider's message log, so reconciliation asks it exactly as it would ask
//! Twilio) and sends nothing. In the demo a simulated population listens to what it accepts.

pub mod twilio;

use crate::domain::types::{Channel, PhoneNumber};
use crate::store::Db;
use crate::store::sandbox::{self as sandbox_log, SandboxMessage};
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use tokio::sync::mpsc;

/// One message or call to hand to the provider.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Rappel's attempt key (`c<campaign>-s<step>-a<attempt>`), never shown to the patient.
    pub client_ref: String,
    pub channel: Channel,
    pub from: String,
    pub to: PhoneNumber,
    pub body: String,
    /// When the attempt was recorded, on the engine's clock.
    pub recorded_at: DateTime<Utc>,
    /// The same instant on the wall clock (the provider's clock): reconciliation looks for what
    /// the provider created since.
    pub recorded_wall: DateTime<Utc>,
    /// A WhatsApp message that opens a conversation must use an approved template.
    pub template: Option<WhatsappTemplate>,
}

/// An approved WhatsApp template (`ContentSid`) and its variables (`ContentVariables`).
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsappTemplate {
    pub content_sid: String,
    pub variables: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub provider_id: String,
    /// When the provider created it (wall clock), when it says so: a message found after a
    /// crash keeps its real send time.
    pub created_at: Option<DateTime<Utc>>,
}

impl Accepted {
    pub fn new(provider_id: impl Into<String>) -> Accepted {
        Accepted {
            provider_id: provider_id.into(),
            created_at: None,
        }
    }
}

/// What a failure means for the campaign. `code` is the provider's error code when it gave one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("transient failure (code {code:?}), retry after {retry_after:?}")]
    Transient {
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    #[error("rate limited, retry after {retry_after:?}")]
    RateLimited { retry_after: Option<Duration> },
    #[error("the number cannot receive this channel (code {code})")]
    ChannelUnavailable { code: String },
    #[error("invalid number (code {code})")]
    InvalidNumber { code: String },
    #[error("the number opted out at the provider (code {code})")]
    OptedOut { code: String },
    #[error("provider configuration error (code {code})")]
    Configuration { code: String },
}

impl ProviderError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ProviderError::Transient { code, .. } => code.as_deref(),
            ProviderError::RateLimited { .. } => Some("429"),
            ProviderError::ChannelUnavailable { code }
            | ProviderError::InvalidNumber { code }
            | ProviderError::OptedOut { code }
            | ProviderError::Configuration { code } => Some(code),
        }
    }
}

pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether the provider takes a whole batch at once (the sandbox): the dispatcher then
    /// checks a batch at once right before handing it over, instead of each message at its turn.
    fn sends_at_once(&self) -> bool {
        false
    }
    /// Waits until this sender may send again (the provider's pacing).
    fn wait_turn<'a>(&'a self, _from: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// Sends one message or places one call, now (the caller waited for its turn).
    fn send_now<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Accepted, ProviderError>>;
    /// Sends each message at its turn; one result per message, in order.
    fn send_batch<'a>(
        &'a self,
        batch: &'a [Outbound],
    ) -> BoxFuture<'a, Vec<Result<Accepted, ProviderError>>> {
        Box::pin(futures::future::join_all(batch.iter().map(
            |m| async move {
                self.wait_turn(&m.from).await;
                self.send_now(m).await
            },
        )))
    }
    /// Whether the provider already created this attempt (after a timeout or a crash).
    fn find<'a>(
        &'a self,
        msg: &'a Outbound,
    ) -> BoxFuture<'a, Result<Option<Accepted>, ProviderError>>;
    /// Replaces the script of a live call (an answering machine gets the voicemail).
    fn update_call<'a>(
        &'a self,
        _call_sid: &'a str,
        _twiml: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }
}

/// What the sandbox accepted, for listeners (the demo's simulated patients).
#[derive(Debug, Clone)]
pub struct SandboxSent {
    pub sid: String,
    pub client_ref: String,
    pub channel: Channel,
    pub to: PhoneNumber,
    pub at: DateTime<Utc>,
}

pub struct Sandbox {
    db: Db,
    listener: Option<mpsc::UnboundedSender<SandboxSent>>,
}

/// The sandbox's own table could not be read or written: try again in 30 s, as after a
/// provider's 5xx.
fn unavailable() -> ProviderError {
    ProviderError::Transient {
        code: None,
        retry_after: Some(Duration::seconds(30)),
    }
}

/// A fresh provider id, shaped like Twilio's (`CA…` for calls, `SM…` for messages).
fn new_sid(channel: Channel) -> String {
    let prefix = if channel == Channel::Call { "CA" } else { "SM" };
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

impl Sandbox {
    pub fn new(db: Db) -> Sandbox {
        Sandbox { db, listener: None }
    }

    pub fn with_listener(db: Db, tx: mpsc::UnboundedSender<SandboxSent>) -> Sandbox {
        Sandbox {
            db,
            listener: Some(tx),
        }
    }

    /// Records the batch in one transaction; the sids in the batch's order.
    async fn record(&self, batch: &[Outbound]) -> anyhow::Result<Vec<String>> {
        let rows: Vec<SandboxMessage> = batch
            .iter()
            .map(|m| SandboxMessage {
                client_ref: m.client_ref.clone(),
                sid: new_sid(m.channel),
                channel: m.channel,
                phone: m.to.as_e164().to_string(),
                body: m.body.clone(),
                created_at: m.recorded_at.timestamp(),
            })
            .collect();
        sandbox_log::record_many(&self.db, &rows).await?;
        Ok(rows.into_iter().map(|r| r.sid).collect())
    }

    fn notify(&self, batch: &[Outbound], sids: &[String]) {
        let Some(tx) = &self.listener else { return };
        for (m, sid) in batch.iter().zip(sids) {
            let _ = tx.send(SandboxSent {
                sid: sid.clone(),
                client_ref: m.client_ref.clone(),
                channel: m.channel,
                to: m.to.clone(),
                at: m.recorded_at,
            });
        }
    }
}

impl Provider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn sends_at_once(&self) -> bool {
        true
    }

    fn send_now<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Accepted, ProviderError>> {
        Box::pin(async move {
            self.send_batch(std::slice::from_ref(msg))
                .await
                .pop()
                .unwrap_or_else(|| Err(unavailable()))
        })
    }

    fn send_batch<'a>(
        &'a self,
        batch: &'a [Outbound],
    ) -> BoxFuture<'a, Vec<Result<Accepted, ProviderError>>> {
        Box::pin(async move {
            match self.record(batch).await {
                Ok(sids) => {
                    self.notify(batch, &sids);
                    sids.into_iter()
                        .map(|provider_id| Ok(Accepted::new(provider_id)))
                        .collect()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sandbox could not record a batch");
                    batch.iter().map(|_| Err(unavailable())).collect()
                }
            }
        })
    }

    fn find<'a>(
        &'a self,
        msg: &'a Outbound,
    ) -> BoxFuture<'a, Result<Option<Accepted>, ProviderError>> {
        Box::pin(async move {
            let sid = sandbox_log::first_sid(&self.db, &msg.client_ref)
                .await
                .map_err(|_| unavailable())?;
            Ok(sid.map(Accepted::new))
        })
    }
}
