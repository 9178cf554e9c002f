//! The seams between storage and the layers above it. Ingest sees only
//! [`Appender`]; the query engine sees only [`Queryable`] / [`Querier`] and
//! the read-side traits. No RocksDB or Raft type appears here, so every
//! layer can be tested against [`crate::memory::MemStore`].

use std::sync::Arc;

use crate::error::StorageError;
use crate::model::{
    BorrowedBatch, Exemplar, HistogramSample, Labels, Matcher, MetricMetadata, Sample, TenantId, WriteBatch,
};

/// Why storage refused one sample (or one series) of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Older than the series' newest sample by more than the out-of-order
    /// window (Prometheus: "out of order sample" / "too old sample").
    OutOfOrder,
    /// Older than the retention period or the oldest writable time
    /// (Prometheus: "out of bounds").
    OutOfBounds,
    /// Same timestamp as a stored sample but a different value
    /// (Prometheus: "duplicate sample for timestamp").
    DuplicateTimestamp,
    /// Creating the series would exceed the tenant's series limit.
    SeriesLimit { limit: u64 },
    /// The series fails the write path's validation before reaching storage (label limits,
    /// missing metric name); the text says what is wrong and names the series.
    InvalidSeries(String),
}

impl RejectReason {
    /// A short label for metrics (`reason="..."`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::OutOfBounds => "out_of_bounds",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::SeriesLimit { .. } => "series_limit",
            RejectReason::InvalidSeries(_) => "invalid_series",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::OutOfOrder => f.write_str("out of order sample"),
            RejectReason::OutOfBounds => f.write_str("out of bounds"),
            RejectReason::DuplicateTimestamp => f.write_str("duplicate sample for timestamp"),
            RejectReason::SeriesLimit { limit } => {
                write!(f, "per-tenant series limit of {limit} exceeded")
            }
            RejectReason::InvalidSeries(why) => f.write_str(why),
        }
    }
}

/// One refused sample, histogram or exemplar.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub series: Labels,
    pub timestamp: i64,
    pub reason: RejectReason,
}

/// What an append did. Counts exclude rejected items.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppendOutcome {
    pub samples_written: u64,
    pub histograms_written: u64,
    pub exemplars_written: u64,
    pub rejected: Vec<Rejection>,
}

impl AppendOutcome {
    /// Adds another part's outcome (a write split over shards).
    pub fn merge(&mut self, other: AppendOutcome) {
        self.samples_written += other.samples_written;
        self.histograms_written += other.histograms_written;
        self.exemplars_written += other.exemplars_written;
        self.rejected.extend(other.rejected);
    }
}

/// The write side of storage.
///
/// Correctness contract:
/// - when `append` returns `Ok`, everything counted as written is durable
///   (it survives `kill -9` of the process) and visible to every query that
///   starts afterwards;
/// - rejected items are not stored, and each is reported in
///   [`AppendOutcome::rejected`]; nothing is dropped silently;
/// - appending an exact duplicate (same series, timestamp and value) is a
///   no-op that counts as written, so client retries are idempotent;
/// - whether an item is accepted depends only on the batch and the data
///   already applied, never on wall-clock time at apply, so replaying the
///   same log yields the same store (determinism, ARCHITECTURE invariant 2);
/// - an `Err` means nothing of the batch is guaranteed stored; the caller
///   answers 5xx so the client retries.
pub trait Appender: Send + Sync {
    fn append(&self, tenant: &TenantId, batch: WriteBatch) -> Result<AppendOutcome, StorageError>;

    /// [`Appender::append`] for a batch whose label sets borrow from the
    /// request, with the same contract and the same outcome (rejections
    /// carry owned labels). Stores that index series by their label bytes
    /// override it to allocate labels only for series they do not hold yet;
    /// the default converts to the owned form.
    fn append_borrowed(
        &self,
        tenant: &TenantId,
        batch: BorrowedBatch<'_>,
    ) -> Result<AppendOutcome, StorageError> {
        self.append(tenant, batch.into_owned())
    }
}

/// A store split over shards placed by [`crate::placement::shard_of`]: the
/// distributor splits a write ([`crate::placement::split`]) and hands each
/// shard its part, here or (in a cluster) on the node leading that shard.
///
/// Contract: `append_shard` holds [`Appender`]'s contract for the part; a
/// part must hold only series and metadata placed on `part.shard` (of
/// [`ShardedAppender::shard_count`] shards), and the shard count never
/// changes for a store's life.
pub trait ShardedAppender: Appender {
    fn shard_count(&self) -> u32;

    /// Appends one shard's part of a write; label strings come from `pairs`.
    fn append_shard(
        &self,
        tenant: &TenantId,
        pairs: &[(&str, &str)],
        part: crate::placement::ShardPart,
    ) -> Result<AppendOutcome, StorageError>;
}

/// Hints for one `select`.
#[derive(Clone, Debug, Default)]
pub struct SelectHints {
    /// Inclusive time range of samples to return, in milliseconds.
    pub start: i64,
    pub end: i64,
    /// Upper bound on returned samples (floats + histograms); exceeding it is
    /// [`StorageError::TooManySamples`]. `None` means no limit.
    pub max_samples: Option<usize>,
}

/// One selected series with its samples in `[start, end]`, each vector
/// sorted by timestamp with unique timestamps. A timestamp appears in at
/// most one of the two vectors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub floats: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
}

/// Read access to one tenant's data.
///
/// Contract: results only ever contain the tenant's own series; `select`
/// returns series sorted by labels; stale markers are returned as stored
/// (the engine interprets them).
pub trait Querier: Send + Sync {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError>;

    /// Label names of series matching all `matchers` (all series when empty)
    /// that have samples in `[start, end]`, sorted, unique.
    fn label_names(&self, start: i64, end: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Values of label `name` over the same selection, sorted, unique.
    fn label_values(
        &self,
        name: &str,
        start: i64,
        end: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError>;

    /// Label sets of series matching `matchers` with samples in
    /// `[start, end]`, sorted (the `/api/v1/series` endpoint).
    fn series_labels(&self, start: i64, end: i64, matchers: &[Matcher]) -> Result<Vec<Labels>, StorageError>;

    /// Metric metadata, optionally for one metric family.
    fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>, StorageError>;

    /// Exemplars in `[start, end]` of series matching any matcher set.
    fn exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<(Labels, Vec<Exemplar>)>, StorageError>;

    /// Cardinality statistics for `/api/v1/status/tsdb`.
    fn tsdb_status(&self, limit: usize) -> Result<TsdbStatus, StorageError>;
}

/// Hands out per-tenant queriers.
pub trait Queryable: Send + Sync {
    fn querier(&self, tenant: &TenantId) -> Result<Arc<dyn Querier>, StorageError>;
}

/// `/api/v1/status/tsdb` data, in Prometheus's terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TsdbStatus {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub series_count_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}
