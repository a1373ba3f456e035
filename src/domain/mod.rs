//! The functional core: no I/O, the clock passed in. Everything here is tested in
//! microseconds over days of simulated time; the shell (`engine`) only stores and sends.

pub mod calendar;
pub mod campaign;
pub mod contact;
pub mod policy;
pub mod reply;
pub mod text;
pub mod types;

#[cfg(test)]
mod campaign_tests;
