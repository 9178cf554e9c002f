//! fenghuo's PromQL engine: Prometheus 3.x PromQL evaluated over
//! `promql-parser`'s AST against the storage seams (`Querier`).
//!
//! Flow: [`engine::Engine`] parses the query, [`plan`] lowers the AST into the
//! engine's own tree (resolved offsets, `@`, step invariance, source
//! positions for annotations), [`eval`] fetches every selector's series once
//! for the whole query range and evaluates the tree step by step, and the
//! result is returned as a [`value::Value`] with Prometheus's annotations.

pub mod annotations;
pub mod api;
pub mod depth;
pub mod engine;
pub mod error;
pub(crate) mod eval;
pub mod extensions;
pub(crate) mod functions;
/// Go's number and string formats, shared with alerting (`crate::gofmt::g(x)` reads like Go's `%g`).
pub(crate) use fenghuo_gofmt as gofmt;
pub mod histogram;
pub(crate) mod kahan;
pub mod metrics;
pub mod options;
pub(crate) mod plan;
pub(crate) mod positions;
pub(crate) mod quantile;
pub mod series_desc;
pub mod value;

pub use engine::{Engine, ParsedQuery, QueryControl};
pub use error::QueryError;
pub use options::EngineOptions;
pub use plan::{convert_matcher, is_at_modifier_unsafe};
pub use quantile::almost_equal;
pub use value::{InstantSample, PointValue, QueryOutput, QueryStats, RangeSeries, Value};
