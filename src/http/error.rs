//! The HTTP API's one error type: each variant documents its status. An internal error (a
//! database failure, a row that does not decode) is logged once, here, and answered as an opaque
//! 500: the caller never sees SQL, a row or a number.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: missing or wrong bearer token (or the admin API is disabled).
    #[error("unauthorized")]
    Unauthorized,
    /// 404: no such resource.
    #[error("not found")]
    NotFound,
    /// 422: a field is invalid; the body names it.
    #[error("invalid field `{field}`: {message}")]
    Invalid { field: String, message: String },
    /// 409: the request contradicts what is already there (a note resolved twice).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 500: logged once here, opaque to the caller.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"})),
            ApiError::NotFound => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
            ApiError::Invalid { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "invalid", "field": field, "message": message}),
            ),
            ApiError::Conflict(message) => (
                StatusCode::CONFLICT,
                json!({"error": "conflict", "message": message}),
            ),
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal error"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
