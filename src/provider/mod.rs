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
use crate::store::{Db, placeholders};
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use sqlx::Row;
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
    /// When the attempt was recorded: reconciliation looks for messages created since.
    pub recorded_at: DateTime<Utc>,
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
    /// Sends each message; one result per message, in order.
    fn send_batch<'a>(
        &'a self,
        batch: &'a [Outbound],
    ) -> BoxFuture<'a, Vec<Result<Accepted, ProviderError>>>;
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

    async fn record(&self, batch: &[Outbound]) -> Result<Vec<String>> {
        let mut sids = Vec::with_capacity(batch.len());
        let mut tx = self.db.begin().await?;
        // 6 columns per row; SQLite allows 32,766 parameters per statement.
        for chunk in batch.chunks(1_000) {
            let values = (0..chunk.len())
                .map(|i| format!("({})", placeholders(i * 6 + 1, 6)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO sandbox_messages (client_ref, sid, channel, phone, body, created_at) VALUES {values}"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for m in chunk {
                let sid = format!(
                    "{}{}",
                    if m.channel == Channel::Call {
                        "CA"
                    } else {
                        "SM"
                    },
                    uuid::Uuid::new_v4().simple()
                );
                q = q
                    .bind(m.client_ref.clone())
                    .bind(sid.clone())
                    .bind(m.channel.as_str())
                    .bind(m.to.as_e164().to_string())
                    .bind(m.body.clone())
                    .bind(m.recorded_at.timestamp());
                sids.push(sid);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(sids)
    }
}

impl Provider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn send_batch<'a>(
        &'a self,
        batch: &'a [Outbound],
    ) -> BoxFuture<'a, Vec<Result<Accepted, ProviderError>>> {
        Box::pin(async move {
            match self.record(batch).await {
                Ok(sids) => {
                    if let Some(tx) = &self.listener {
                        for (m, sid) in batch.iter().zip(&sids) {
                            let _ = tx.send(SandboxSent {
                                sid: sid.clone(),
                                client_ref: m.client_ref.clone(),
                                channel: m.channel,
                                to: m.to.clone(),
                                at: m.recorded_at,
                            });
                        }
                    }
                    sids.into_iter()
                        .map(|provider_id| Ok(Accepted { provider_id }))
                        .collect()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sandbox could not record a batch");
                    batch
                        .iter()
                        .map(|_| {
                            Err(ProviderError::Transient {
                                code: None,
                                retry_after: Some(Duration::seconds(30)),
                            })
                        })
                        .collect()
                }
            }
        })
    }

    fn find<'a>(
        &'a self,
        msg: &'a Outbound,
    ) -> BoxFuture<'a, Result<Option<Accepted>, ProviderError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT sid FROM sandbox_messages WHERE client_ref = $1 ORDER BY id LIMIT 1",
            )
            .bind(msg.client_ref.clone())
            .fetch_optional(&self.db.pool)
            .await
            .map_err(|_| ProviderError::Transient {
                code: None,
                retry_after: Some(Duration::seconds(30)),
            })?;
            Ok(row.map(|r| Accepted {
                provider_id: r.get::<String, _>("sid"),
            }))
        })
    }
}
