//! fenghuo's time-series store.
//!
//! - [`tsdb`]: the durable store on RocksDB ([`tsdb::Tsdb`]).
//! - [`replicate`]: the shard log ([`replicate::ShardLog`]) that feeds it.
//! - [`chunk`]: sample encodings; [`codec`]: byte-level helpers.
//! - [`metrics`]: the store's own metrics.
//!
//! The seams (`model`, `api`, `memory`, `testing`, `error`, `fuzz`) live in
//! `fenghuo-storage-api`, which does not link RocksDB; they are re-exported
//! here so that `fenghuo_storage::model::Labels` and the like name the same
//! items.

pub use fenghuo_storage_api::{StorageError, api, error, fuzz, memory, model, placement, testing};

pub mod chunk;
pub mod codec;
pub mod durable;
pub mod metrics;
pub mod replicate;
pub mod tsdb;
