//! The ruler's error type: one enum with context fields. Rule-file and template errors carry the
//! message Prometheus would print, so `check-rules` and the API report the same text.

/// Errors of the ruler.
#[derive(Debug, thiserror::Error)]
pub enum RulerError {
    /// A rule file that does not load; `errors` are the individual problems, each already
    /// prefixed with the file name the way `promtool check rules` prints them.
    #[error("{}", errors.join("\n"))]
    RuleFile { file: String, errors: Vec<String> },
    #[error("invalid ruler config: {0}")]
    Config(String),
    #[error("{0}")]
    Query(String),
    #[error("{0}")]
    Template(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("io {path}: {message}")]
    Io { path: String, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("unit test file {file}: {message}")]
    UnitTest { file: String, message: String },
}

impl RulerError {
    pub fn io(path: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        RulerError::Io {
            path: path.to_string(),
            message: e.to_string(),
        }
    }
}

pub type Result<T, E = RulerError> = std::result::Result<T, E>;
