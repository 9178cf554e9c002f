//! `TsdbOptions`: the store's configuration, deserialised from fenghuo's
//! YAML config (`storage:` section) with a default for every field.

use serde::Deserialize;

use crate::error::StorageError;
pub use crate::model::PromDuration;

/// Configuration of a [`super::Tsdb`]. Every field has a default; unknown
/// fields are an error so typos do not pass silently.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TsdbOptions {
    /// How long data is kept (Prometheus's `--storage.tsdb.retention.time`).
    /// Samples older than `now - retention` are refused as out of bounds;
    /// whole time partitions older than that are deleted. `0s` keeps
    /// everything forever. Default `15d`.
    pub retention: PromDuration,
    /// How far behind a series' newest sample a sample may be and still be
    /// accepted (Prometheus's `out_of_order_time_window`). Prometheus
    /// defaults to 0; we default to `10m` because remote-write senders
    /// retry and reshard, which reorders samples in practice.
    pub out_of_order_window: PromDuration,
    /// Number of shards (each with its own log and RocksDB instance). Fixed
    /// when the store is created. Default 1.
    pub shards: u32,
    /// Most active series per tenant; 0 means unlimited. Default 0.
    pub max_series_per_tenant: u64,
    /// Size of each tenant's exemplar ring. Default 100000.
    pub max_exemplars: usize,
    /// How often the head is checkpointed to RocksDB and the log truncated
    /// (bounds replay time after a crash). Default `1m`.
    pub checkpoint_interval: PromDuration,
    /// How often sealed time windows are compacted. Default `5m`.
    pub compaction_interval: PromDuration,
    /// Samples per head chunk before it is cut. Default 120.
    pub chunk_max_samples: usize,
    /// Chunks never cross a window boundary; compaction merges each series'
    /// chunks of a window into one. Must divide `partition_duration`.
    /// Default `2h`.
    pub compaction_window: PromDuration,
    /// Length of an index/retention time partition. Default `1d`.
    pub partition_duration: PromDuration,
    /// Series without writes for this long leave the in-memory head (their
    /// data stays on disk). Default `1h`.
    pub head_idle_timeout: PromDuration,
    /// RocksDB block cache shared by all shards, in bytes. Default 32 MiB.
    pub block_cache_bytes: usize,
    /// RocksDB memtable budget per shard, in bytes. Default 32 MiB
    /// (checkpoints flush memtables every minute anyway).
    pub write_buffer_bytes: usize,
    /// Roll shard log segments after this many bytes. Default 64 MiB.
    pub log_segment_bytes: u64,
    /// fsync the shard log before acknowledging writes. Default true;
    /// turning it off voids the durability guarantee.
    pub fsync: bool,
    /// How a single node commits shard writes: `raft` (one-member Raft
    /// groups, the cluster's code path; the default of the server) or
    /// `local` (each shard's local log). A store moves from `local` to
    /// `raft` on its first start with `raft`; there is no way back.
    /// (`Tsdb::open` itself always uses the local log: the Raft groups
    /// live in `fenghuo-raft`, which the server wires in.)
    pub replicator: ReplicatorKind,
}

/// See [`TsdbOptions::replicator`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicatorKind {
    Local,
    #[default]
    Raft,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        Self {
            retention: PromDuration::from_secs(15 * 24 * 3600),
            out_of_order_window: PromDuration::from_secs(600),
            shards: 1,
            max_series_per_tenant: 0,
            max_exemplars: 100_000,
            checkpoint_interval: PromDuration::from_secs(60),
            compaction_interval: PromDuration::from_secs(300),
            chunk_max_samples: 120,
            compaction_window: PromDuration::from_secs(2 * 3600),
            partition_duration: PromDuration::from_secs(24 * 3600),
            head_idle_timeout: PromDuration::from_secs(3600),
            block_cache_bytes: 32 << 20,
            write_buffer_bytes: 32 << 20,
            log_segment_bytes: 64 << 20,
            fsync: true,
            replicator: ReplicatorKind::default(),
        }
    }
}

#[allow(dead_code)]
impl TsdbOptions {
    /// Checks the options for consistency.
    pub fn validate(&self) -> Result<(), StorageError> {
        let bad = |msg: String| Err(StorageError::InvalidConfig(msg));
        if self.shards == 0 || self.shards > 1024 {
            return bad(format!("shards must be between 1 and 1024, got {}", self.shards));
        }
        if !(2..=crate::chunk::xor::MAX_SAMPLES).contains(&self.chunk_max_samples) {
            return bad(format!(
                "chunk_max_samples must be between 2 and 65535, got {}",
                self.chunk_max_samples
            ));
        }
        let window = self.compaction_window.as_millis_i64();
        let partition = self.partition_duration.as_millis_i64();
        if window < 60_000 {
            return bad(format!(
                "compaction_window must be at least 1m, got {}",
                self.compaction_window
            ));
        }
        if partition < window || partition % window != 0 {
            return bad(format!(
                "partition_duration ({}) must be a multiple of compaction_window ({})",
                self.partition_duration, self.compaction_window
            ));
        }
        if self.checkpoint_interval.is_zero() || self.compaction_interval.is_zero() {
            return bad("checkpoint_interval and compaction_interval must be positive".into());
        }
        if self.head_idle_timeout.as_millis_i64() < 60_000 {
            return bad(format!(
                "head_idle_timeout must be at least 1m, got {}",
                self.head_idle_timeout
            ));
        }
        if !self.retention.is_zero() && self.retention < self.partition_duration {
            return bad(format!(
                "retention ({}) must be at least one partition_duration ({}) or 0s",
                self.retention, self.partition_duration
            ));
        }
        Ok(())
    }

    pub(crate) fn retention_ms(&self) -> i64 {
        self.retention.as_millis_i64()
    }

    pub(crate) fn ooo_ms(&self) -> i64 {
        self.out_of_order_window.as_millis_i64()
    }

    pub(crate) fn window_ms(&self) -> i64 {
        self.compaction_window.as_millis_i64().max(1)
    }

    pub(crate) fn partition_ms(&self) -> i64 {
        self.partition_duration.as_millis_i64().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(
            PromDuration::parse("15d").unwrap(),
            PromDuration::from_secs(15 * 86400)
        );
        assert_eq!(
            PromDuration::parse("1h30m").unwrap(),
            PromDuration::from_secs(5400)
        );
        assert_eq!(
            PromDuration::parse("250ms").unwrap(),
            PromDuration::from_millis(250)
        );
        assert_eq!(PromDuration::parse("0").unwrap(), PromDuration::from_secs(0));
        assert!(PromDuration::parse("30m1h").is_err());
        assert!(PromDuration::parse("5").is_err());
        assert!(PromDuration::parse("5x").is_err());
        assert!(PromDuration::parse("").is_err());
        assert_eq!(PromDuration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(PromDuration::from_secs(0).to_string(), "0s");
    }

    #[test]
    fn options_deserialize_with_defaults_and_reject_unknown_fields() {
        let o: TsdbOptions =
            serde_json::from_str(r#"{"retention": "30d", "out_of_order_window": 60}"#).unwrap();
        assert_eq!(o.retention, PromDuration::from_secs(30 * 86400));
        assert_eq!(o.out_of_order_window, PromDuration::from_secs(60));
        assert_eq!(o.shards, 1);
        o.validate().unwrap();
        let err = serde_json::from_str::<TsdbOptions>(r#"{"retension": "30d"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn validation_catches_inconsistent_windows() {
        let o = TsdbOptions {
            compaction_window: PromDuration::from_secs(7 * 3600),
            ..Default::default()
        };
        assert!(o.validate().is_err());
        let o = TsdbOptions {
            shards: 0,
            ..Default::default()
        };
        assert!(o.validate().is_err());
    }
}
