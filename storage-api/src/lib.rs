//! The seams of fenghuo's storage, in a crate that does not link RocksDB, so
//! that ingest, query and alerting build and test against them alone (as
//! TiKV's `engine_traits` stays free of its engines):
//!
//! - [`model`]: labels, matchers, samples, histograms, write batches, tenants.
//! - [`api`]: the seams ([`api::Appender`], [`api::Queryable`]) with their
//!   correctness contracts.
//! - [`memory`]: an in-memory reference implementation of the seams, used by
//!   tests of the layers above and as the baseline of the conformance suite.
//! - [`testing`]: the conformance suite every store implementation runs.
//! - [`error`]: the storage error every implementation returns.
//! - [`fuzz`]: seeded mutation fuzzing for every crate's parser tests.
//! - [`metric_labels`]: bounded label values for metrics fed from outside.
//! - [`placement`]: the frozen hash that puts a series on its shard.
//!
//! The durable store on RocksDB and its replicated log live in
//! `fenghuo-storage`, which re-exports these modules.

pub mod api;
pub mod error;
pub mod fuzz;
pub mod memory;
pub mod metric_labels;
pub mod model;
pub mod placement;
pub mod testing;

pub use error::StorageError;
