//! The data model shared by every layer: labels, matchers, samples,
//! histograms, exemplars, metadata and write batches. Nothing here knows
//! about RocksDB, HTTP or PromQL.

pub mod batch;
pub mod borrowed;
pub mod duration;
pub mod histogram;
pub mod labels;
pub mod matcher;
pub mod sample;

pub use batch::{SeriesWrite, TenantId, WriteBatch};
pub use borrowed::{BorrowedBatch, BorrowedSeries, LabelsRef};
pub use duration::PromDuration;
pub use histogram::{
    Bucket, BucketSpan, CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, bucket_bound,
};
pub use labels::{
    Label, Labels, METRIC_NAME, fmt_pairs, is_legacy_metric_name, is_legacy_name, stable_hash_pairs,
    write_go_quoted,
};
pub use matcher::{InvalidMatcher, MatchOp, Matcher, matches_all};
pub use sample::{
    Exemplar, HistogramSample, MetricMetadata, MetricType, STALE_NAN_BITS, Sample, is_stale_nan, stale_nan,
};
