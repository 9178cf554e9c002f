//! The crate's error type: one enum with context fields, a retryable flag and the HTTP status each
//! variant maps to at the API edge.

use axum::http::StatusCode;

/// Errors of the alert engine.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error("config file {path}: {message}")]
    ConfigFile { path: String, message: String },
    #[error("invalid config: {0}")]
    Config(String),
    #[error("invalid matcher {input:?}: {message}")]
    Matcher { input: String, message: String },
    #[error("invalid duration {input:?}: {message}")]
    Duration { input: String, message: String },
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A per-tenant limit refused the request; the message names the limit.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// A request body over `max_request_bytes`.
    #[error("request body too large: {0}")]
    TooLarge(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("state store: {0}")]
    Store(String),
    #[error("notify {receiver}/{integration}: {message}")]
    Notify {
        receiver: String,
        integration: String,
        message: String,
        retryable: bool,
    },
    #[error("io {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("scenario: {0}")]
    Scenario(String),
}

impl AlertingError {
    /// The HTTP status an API handler answers with for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AlertingError::BadRequest(_)
            | AlertingError::Matcher { .. }
            | AlertingError::Duration { .. }
            | AlertingError::Config(_)
            | AlertingError::Template { .. } => StatusCode::BAD_REQUEST,
            AlertingError::NotFound(_) => StatusCode::NOT_FOUND,
            AlertingError::Limit(_) => StatusCode::BAD_REQUEST,
            AlertingError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            AlertingError::Notify { retryable, .. } => *retryable,
            AlertingError::Store(_) | AlertingError::Io { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T, E = AlertingError> = std::result::Result<T, E>;
