//! The durable time-series engine on RocksDB (one instance per shard):
//! options, clock, key layout, postings operations, symbol interning and
//! the RocksDB access layer.

pub mod clock;
#[allow(dead_code)]
pub(crate) mod disk;
pub mod keys;
pub mod options;
pub mod postings;
#[allow(dead_code)]
pub(crate) mod symbols;
