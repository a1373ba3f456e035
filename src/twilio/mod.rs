//! The Twilio-compatible provider: REST client, webhook signatures, webhooks and TwiML.

pub mod client;
pub mod signature;
pub mod webhooks;
