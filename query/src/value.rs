//! Query results as the engine's callers (HTTP API, ruler) see them.

use std::sync::Arc;

use fenghuo_storage_api::model::{FloatHistogram, HistogramSample, Labels, Sample};

/// The value of one instant-vector element.
#[derive(Clone, Debug, PartialEq)]
pub enum PointValue {
    Float(f64),
    Histogram(Arc<FloatHistogram>),
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t: i64,
    pub value: PointValue,
}

/// One series of a range vector (matrix); points sorted by time.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RangeSeries {
    pub labels: Labels,
    pub floats: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
}

/// A query result, typed as the expression is.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar {
        t: i64,
        v: f64,
    },
    String {
        t: i64,
        v: String,
    },
    /// Instant vector, in the order the expression produced it.
    Vector(Vec<InstantSample>),
    /// Range vector / range-query result, sorted by labels.
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// Prometheus's `resultType` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Sample statistics of one query (Prometheus's `stats.samples`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Samples read from storage over all selectors.
    pub samples_loaded: u64,
    /// Largest number of samples held in memory at once.
    pub peak_samples: u64,
}

/// A successful query: its value plus annotations, rendered as Prometheus
/// renders them (with the `(line:col)` position in the query).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOutput {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    pub stats: QueryStats,
}
