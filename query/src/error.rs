//! The query engine's error type, with Prometheus's exact messages and the
//! API `errorType` / HTTP status each error maps to.

use fenghuo_storage_api::StorageError;

/// Where a limit or deadline was hit; Prometheus prints it after "in".
pub(crate) const ENV_QUERY_EXECUTION: &str = "query execution";
pub(crate) const ENV_EXPRESSION_EVALUATION: &str = "expression evaluation";

/// Everything that can make a query fail.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text does not parse or does not type-check.
    #[error("{0}")]
    Parse(String),
    /// The query parsed but cannot be run as asked (e.g. a range query over a
    /// range vector, an invalid step).
    #[error("{0}")]
    BadData(String),
    /// More samples than `max_samples` would be held in memory at once.
    #[error("query processing would load too many samples into memory in {env}")]
    TooManySamples { env: &'static str },
    /// The deadline passed.
    #[error("query timed out in {env}")]
    Timeout { env: &'static str },
    /// The caller canceled the query.
    #[error("query was canceled in {env}")]
    Canceled { env: &'static str },
    /// A runtime error of the PromQL evaluation (Prometheus's `errorExec`).
    #[error("{0}")]
    Execution(String),
    /// Storage failed while fetching series.
    #[error("expanding series: {0}")]
    Storage(#[from] StorageError),
}

impl QueryError {
    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        QueryError::Execution(msg.into())
    }

    /// Prometheus's API `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => "bad_data",
            QueryError::TooManySamples { .. } | QueryError::Execution(_) => "execution",
            QueryError::Timeout { .. } => "timeout",
            QueryError::Canceled { .. } => "canceled",
            QueryError::Storage(StorageError::TooManySamples { .. }) => "execution",
            QueryError::Storage(_) => "internal",
        }
    }

    /// The HTTP status Prometheus's API answers with for this error
    /// (499 is Prometheus's "client closed connection" for canceled queries).
    pub fn http_status(&self) -> u16 {
        match self.error_type() {
            "bad_data" => 400,
            "execution" => 422,
            "timeout" => 503,
            "canceled" => 499,
            _ => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_types_match_prometheus() {
        let e = QueryError::TooManySamples {
            env: ENV_QUERY_EXECUTION,
        };
        assert_eq!(
            e.to_string(),
            "query processing would load too many samples into memory in query execution"
        );
        assert_eq!((e.error_type(), e.http_status()), ("execution", 422));
        let e = QueryError::Timeout {
            env: ENV_EXPRESSION_EVALUATION,
        };
        assert_eq!(e.to_string(), "query timed out in expression evaluation");
        assert_eq!((e.error_type(), e.http_status()), ("timeout", 503));
        assert_eq!(QueryError::Parse("x".into()).http_status(), 400);
        assert_eq!(
            QueryError::Storage(StorageError::Io("disk".into())).error_type(),
            "internal"
        );
    }
}
