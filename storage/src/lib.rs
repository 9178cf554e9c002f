//! fenghuo's time-series store.
//!
//! - [`model`]: labels, matchers, samples, histograms, write batches.
//! - [`api`]: the seams ([`api::Appender`], [`api::Queryable`]) that ingest
//!   and query depend on.
//! - [`memory`]: an in-memory reference implementation of the seams, used by
//!   tests of the layers above and as the baseline of the conformance suite.
//! - [`tsdb`]: the durable store on RocksDB ([`tsdb::Tsdb`]).
//! - [`replicate`]: the shard log ([`replicate::ShardLog`]) that feeds it.
//! - [`chunk`]: sample encodings; [`codec`]: byte-level helpers.
//! - [`testing`]: the conformance suite every store implementation runs.

pub mod api;
pub mod chunk;
pub mod codec;
pub mod error;
pub mod fuzz;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod replicate;
pub mod testing;
pub mod tsdb;

pub use error::StorageError;
