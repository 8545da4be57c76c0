//! Errors as JSON `{error, detail}` with the right HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A short machine code: `bad_request`, `invalid_manifest`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `unavailable`, `internal`, …
    pub error: String,
    /// A sentence for people: what, where, and what was expected.
    pub detail: String,
    /// Further items (for example every diagnostic of an invalid manifest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<String>,
}

/// An error a handler or a library function returns; becomes an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: u16, error: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody { error: error.to_string(), detail: detail.into(), diagnostics: Vec::new() },
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "bad_request", detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "forbidden", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not_found", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, "conflict", detail)
    }
    /// 422: well-formed, but this server cannot act on it (e.g. nothing to offer).
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(422, "unprocessable", detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "unavailable", detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, "internal", detail)
    }
    /// 400 `invalid_manifest`: a manifest was refused; `diagnostics` lists every problem.
    pub fn invalid_manifest(detail: impl Into<String>, diagnostics: Vec<String>) -> Self {
        Self::new(400, "invalid_manifest", detail).with_diagnostics(diagnostics)
    }
    pub fn with_diagnostics(mut self, diagnostics: Vec<String>) -> Self {
        self.body.diagnostics = diagnostics;
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.body.error, self.status, self.body.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body)).into_response()
    }
}
