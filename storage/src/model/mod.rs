//! The data model shared by every layer: labels, matchers, samples,
//! histograms, exemplars, metadata and write batches. Nothing here knows
//! about RocksDB, HTTP or PromQL.

pub mod batch;
pub mod histogram;
pub mod labels;
pub mod matcher;
pub mod sample;

pub use batch::{SeriesWrite, TenantId, WriteBatch};
pub use histogram::{bucket_bound, Bucket, BucketSpan, CounterResetHint, FloatHistogram, CUSTOM_BUCKETS_SCHEMA};
pub use labels::{is_legacy_metric_name, is_legacy_name, write_go_quoted, Label, Labels, METRIC_NAME};
pub use matcher::{matches_all, InvalidMatcher, MatchOp, Matcher};
pub use sample::{
    is_stale_nan, stale_nan, Exemplar, HistogramSample, MetricMetadata, MetricType, Sample, STALE_NAN_BITS,
};
