//! Rappel: an outbound appointment-confirmation campaign worker for medical imaging centres.
//!
//! The functional core lives in [`domain`] (state machine, policy, calendar, reply
//! understanding); the shell around it in [`engine`] (planner, dispatcher, reply path, agenda
//! outbox), [`store`], [`provider`], [`agenda`], [`http`] and [`server`]. `main.rs` only parses
//! the command line and calls [`cli::run`].

pub mod agenda;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod fhir;
pub mod http;
pub mod provider;
pub mod server;
pub mod store;
pub mod templates;
pub mod twilio;
