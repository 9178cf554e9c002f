//! Storage errors.

/// Everything that can go wrong inside storage. Cloneable: one failed
/// batch answers each of its proposers.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StorageError {
    #[error("query would load more than {limit} samples")]
    TooManySamples { limit: usize },
    #[error("storage I/O error: {0}")]
    Io(String),
    #[error("corrupt data in {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("storage is shutting down")]
    ShuttingDown,
    #[error("storage is overloaded: {0}")]
    Overloaded(String),
    #[error("invalid storage configuration: {0}")]
    InvalidConfig(String),
}

impl StorageError {
    /// Whether a client should retry (remote write answers 5xx/429 then).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StorageError::Io(_) | StorageError::ShuttingDown | StorageError::Overloaded(_)
        )
    }
}
