//! The shell around the pure core: it reads rows through [`crate::store`], asks
//! `campaign::decide` (and the other pure rules of [`crate::domain`]), and carries out the
//! commands — in the database, through the provider, and through the agenda outbox. No SQL text
//! lives here.
//!
//! The flow, one file each: [`planner`] opens campaigns from the agenda → [`dispatch`] runs
//! due steps through the provider → [`replies`] and [`statuses`] take what comes back →
//! [`outbox`] writes outcomes to the agenda (and sends the acknowledgements that waited for
//! it); [`sync`] brings the agenda's changes in; [`secretary`] records what a secretary settled
//! by phone; [`transition`] writes any decided transition with its ledger row and commands.
//!
//! Guarantees, and how each is kept:
//! - **No double send.** An attempt row is committed under (campaign, step, attempt) before the
//!   provider is called. A claimed step that finds its attempt already `sending` (a crash
//!   between the two) asks the provider (`find`) instead of sending again.
//! - **No lost step.** A step is `campaigns.due_at`. The dispatcher claims due campaigns with a
//!   lease and a token; a claim that is not finished when the lease runs out (crash, lost queue
//!   job) is claimed again. Jobs are only a way to hand batches to workers.
//! - **Never lose a release.** Confirmations and releases are outbox rows written in the same
//!   transaction as the state change, claimed, applied, and retried with backoff until done;
//!   after `outbox_max_tries` a secretary gets a note.
//! - **Idempotent replies.** A reply is keyed by the provider's message id; a replay changes
//!   nothing.

mod dispatch;
mod outbox;
mod planner;
mod replies;
mod secretary;
mod shell;
mod statuses;
mod sync;
mod transition;

pub use planner::PlanReport;
pub use replies::{Inbound, InboundOutcome, ReplyFollowUp};
pub use secretary::ResolveError;
pub use statuses::{ProviderStatus, delivery_advances, parse_attempt_key, status_meaning};
pub use sync::SyncReport;

pub use shell::{ACK_STEP, Engine};
