//! fenghuo's time-series store.
//!
//! - [`model`]: labels, matchers, samples, histograms, write batches.
//! - [`api`]: the seams ([`api::Appender`], [`api::Queryable`]) that ingest
//!   and query depend on.
//! - [`memory`]: an in-memory reference implementation of the seams, used by
//!   tests of the layers above and as the baseline of the conformance suite.

pub mod api;
pub mod error;
pub mod memory;
pub mod model;

pub use error::StorageError;
