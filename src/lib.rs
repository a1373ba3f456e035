//! Rappel: an outbound appointment-confirmation campaign worker for medical imaging centres.
//!
//! Read `ARCHITECTURE.md` first. The functional core lives in [`domain`] (state machine,
//! policy, calendar, reply understanding; no I/O, the clock passed in); the shell around it in
//! [`engine`] (planner, dispatcher, reply path, agenda outbox), which reaches the world through
//! [`store`] (all SQL), [`agenda`] (built-in, import, FHIR), [`provider`] (sandbox, Twilio) and
//! is reached through [`http`]. [`app`] wires them into roles; `main.rs` only parses the command
//! line and calls [`cli::run`].

pub mod agenda;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
pub mod provider;
pub mod store;
pub mod templates;
pub mod tools;
