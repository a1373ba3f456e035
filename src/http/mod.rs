//! HTTP: health, the admin API (bearer token, [`admin`]), the sandbox's inbound-reply endpoint
//! and the Twilio webhooks ([`webhooks`]). This file only assembles the router.
//!
//! Errors are one enum ([`error::ApiError`]); each variant documents its status. Internal errors
//! become an opaque 500 logged once; validation errors name the field. Phone numbers are masked
//! in every response but the notes' own (secretaries call the patient back), and no body is
//! logged.

pub mod admin;
pub mod error;
pub mod signature;
pub mod webhooks;

pub use error::ApiError;

use crate::engine::Engine;
use axum::Router;
use axum::routing::{get, post};

pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/healthz", get(admin::healthz))
        .route("/admin/appointments", post(admin::upsert_appointments))
        .route(
            "/admin/appointments/{site}/{external_id}/cancel",
            post(admin::cancel_appointment),
        )
        .route("/admin/campaigns", get(admin::list_campaigns))
        .route("/admin/campaigns/{id}", get(admin::show_campaign))
        .route("/admin/notes", get(admin::list_notes))
        .route("/admin/notes/{id}/resolve", post(admin::resolve_note))
        .route("/admin/stats", get(admin::stats))
        .route("/admin/sandbox/replies", post(admin::sandbox_reply))
        .merge(webhooks::routes())
        .with_state(engine)
}
