//! Errors of the write path and the HTTP status each maps to.

use fenghuo_storage_api::StorageError;

/// Everything that can make a remote-write request fail. Client errors
/// (4xx) are never retried by Prometheus; server errors (5xx) are.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(
        "unsupported Content-Type {0:?}: expected application/x-protobuf with proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request"
    )]
    UnsupportedContentType(String),
    #[error("unsupported Content-Encoding {0:?}: only snappy is supported")]
    UnsupportedEncoding(String),
    #[error("request body of {size} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("decompressed request of {size} bytes exceeds the limit of {limit} bytes")]
    DecompressedTooLarge { size: usize, limit: usize },
    #[error("snappy decode error: {0}")]
    Snappy(String),
    #[error("protobuf decode error: {0}")]
    Protobuf(String),
    #[error("invalid X-Scope-OrgID: {0}")]
    InvalidTenant(String),
    /// A problem with one series; `series` is its label set as far as known.
    #[error("{reason} for series {series}")]
    InvalidSeries { series: String, reason: String },
    #[error("request has {count} series, more than the limit of {limit}")]
    TooManySeries { count: usize, limit: usize },
    #[error("too many concurrent write requests (limit {0}); retry later")]
    Overloaded(usize),
    /// The bytes of write requests in flight would exceed `max_inflight_bytes`.
    #[error(
        "write requests in flight hold too many bytes: this one needs {need} more, the limit is {limit} (ingest.max_inflight_bytes); retry later"
    )]
    InflightBytes { need: usize, limit: usize },
    #[error("{0}")]
    Storage(#[from] StorageError),
}

impl IngestError {
    pub fn http_status(&self) -> u16 {
        match self {
            IngestError::UnsupportedContentType(_) | IngestError::UnsupportedEncoding(_) => 415,
            IngestError::BodyTooLarge { .. } | IngestError::DecompressedTooLarge { .. } => 413,
            IngestError::Overloaded(_) | IngestError::InflightBytes { .. } => 503,
            IngestError::Storage(e) if e.is_retryable() => 503,
            IngestError::Storage(_) => 500,
            _ => 400,
        }
    }

    /// A short label for the rejection metric.
    pub fn reason_label(&self) -> &'static str {
        match self {
            IngestError::UnsupportedContentType(_) => "unsupported_content_type",
            IngestError::UnsupportedEncoding(_) => "unsupported_encoding",
            IngestError::BodyTooLarge { .. } | IngestError::DecompressedTooLarge { .. } => "too_large",
            IngestError::Snappy(_) => "bad_snappy",
            IngestError::Protobuf(_) => "bad_protobuf",
            IngestError::InvalidTenant(_) => "bad_tenant",
            IngestError::InvalidSeries { .. } => "invalid_series",
            IngestError::TooManySeries { .. } => "too_many_series",
            IngestError::Overloaded(_) => "overloaded",
            IngestError::InflightBytes { .. } => "inflight_bytes",
            IngestError::Storage(_) => "storage",
        }
    }
}
