//! `Disk`: one shard's RocksDB instance — column family tuning, and the
//! reads every other module needs (chunks of a series, postings, label
//! values by skip-scan, series records).
//!
//! Every write goes through [`Disk::write`] with RocksDB's WAL disabled:
//! the shard log is the write-ahead log. `atomic_flush` makes whatever
//! RocksDB persists a consistent prefix of our write batches, each of which
//! carries the applied log index it reflects (see `checkpoint.rs`).

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    FlushOptions, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions,
};

use super::keys::{self, ALL_CFS};
use crate::chunk::{self, ChunkKind};
use crate::error::StorageError;
use crate::model::{HistogramSample, Labels, Sample};

pub(crate) fn db_err(context: &str, e: rocksdb::Error) -> StorageError {
    StorageError::Io(format!("rocksdb {context}: {e}"))
}

/// A value stored at one timestamp (for duplicate detection).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ValueAt {
    Float(u64),
    Histogram(std::sync::Arc<crate::model::FloatHistogram>),
}

pub(crate) struct Disk {
    db: DB,
}

fn cf_options(name: &str, cache: &Cache) -> Options {
    let mut o = Options::default();
    let mut t = BlockBasedOptions::default();
    t.set_block_cache(cache);
    t.set_format_version(6);
    t.set_cache_index_and_filter_blocks(true);
    match name {
        keys::CF_CHUNKS => {
            // Chunk values are varint columns: zstd over large blocks is
            // where most of the on-disk density comes from.
            t.set_block_size(64 << 10);
            o.set_compression_type(DBCompressionType::Zstd);
            o.set_bottommost_compression_type(DBCompressionType::Zstd);
            o.set_compression_options(-14, 3, 0, 0);
            o.set_bottommost_compression_options(-14, 9, 0, 0, true);
            o.set_target_file_size_base(64 << 20);
        }
        keys::CF_POSTINGS => {
            t.set_block_size(16 << 10);
            o.set_compression_type(DBCompressionType::Zstd);
            o.set_bottommost_compression_type(DBCompressionType::Zstd);
        }
        keys::CF_SERIES | keys::CF_SERIES_BY_LABELS | keys::CF_IDLE => {
            // Label sets repeat heavily from series to series; zstd sees
            // that only across many of them (4 KiB blocks hold ~30).
            t.set_block_size(64 << 10);
            t.set_block_restart_interval(32);
            t.set_bloom_filter(10.0, false);
            o.set_compression_type(DBCompressionType::Lz4);
            o.set_bottommost_compression_type(DBCompressionType::Zstd);
        }
        keys::CF_HEAD => {
            // Rewritten every checkpoint; XOR chunks barely compress. What
            // reaches the bottom level (meta records after a close) does.
            o.set_compression_type(DBCompressionType::None);
            o.set_bottommost_compression_type(DBCompressionType::Lz4);
        }
        _ => {
            o.set_compression_type(DBCompressionType::Lz4);
        }
    }
    o.set_block_based_table_factory(&t);
    o.set_level_compaction_dynamic_level_bytes(true);
    o
}

/// RocksDB allocates through the C allocator (the Rust side uses its own).
/// glibc's defaults make a long-running RocksDB process hold memory it no
/// longer uses: the mmap threshold rises to the size of the first large
/// block freed (memtable arena blocks), so later blocks come from heaps
/// that are never returned to the system, and every background thread may
/// get an arena of its own. A fixed 1 MiB threshold (arena blocks are
/// mapped and unmapped) and two arenas took 100 MB off the peak RSS of a
/// 470k-series run (1.56 instead of 1.72 KB per series). Skipped when the
/// operator tunes glibc through its environment variables.
fn tune_c_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let tuned = ["GLIBC_TUNABLES", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"]
                .iter()
                .any(|v| std::env::var_os(v).is_some());
            if !tuned {
                // SAFETY: mallopt only changes allocator parameters; it is
                // called once, before RocksDB allocates anything.
                unsafe {
                    libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
                    libc::mallopt(libc::M_ARENA_MAX, 2);
                }
            }
        }
    });
}

impl Disk {
    pub fn open(path: &Path, write_buffer_bytes: usize, cache: &Cache) -> Result<Self, StorageError> {
        tune_c_allocator();
        let mut o = Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        o.set_atomic_flush(true);
        o.set_max_background_jobs(2);
        o.set_db_write_buffer_size(write_buffer_bytes.max(4 << 20));
        o.set_write_buffer_size((write_buffer_bytes / 2).max(2 << 20));
        o.set_keep_log_file_num(2);
        o.set_max_log_file_size(4 << 20);
        o.set_max_total_wal_size(16 << 20);
        o.set_bytes_per_sync(1 << 20);
        let cfs: Vec<_> = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name, cache)))
            .collect();
        let db = DB::open_cf_descriptors(&o, path, cfs).map_err(|e| db_err("open", e))?;
        Ok(Self { db })
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    pub fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StorageError> {
        self.db.cf_handle(name).ok_or(StorageError::Corrupt {
            what: "rocksdb",
            detail: format!("column family {name} is missing"),
        })
    }

    /// Writes a batch without RocksDB's WAL (the shard log is ours).
    pub fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db.write_opt(batch, &wo).map_err(|e| db_err("write", e))
    }

    /// Persists every memtable (atomically across column families).
    pub fn flush(&self) -> Result<(), StorageError> {
        let cfs: Vec<&ColumnFamily> = ALL_CFS.iter().filter_map(|n| self.db.cf_handle(n)).collect();
        let mut fo = FlushOptions::default();
        fo.set_wait(true);
        self.db.flush_cfs_opt(&cfs, &fo).map_err(|e| db_err("flush", e))
    }

    pub fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_cf(self.cf(cf)?, key).map_err(|e| db_err("get", e))
    }

    pub fn get_meta_u64(&self, key: &[u8]) -> Result<Option<u64>, StorageError> {
        match self.get(keys::CF_META, key)? {
            None => Ok(None),
            Some(v) => {
                let a: [u8; 8] = v.as_slice().try_into().map_err(|_| StorageError::Corrupt {
                    what: "shard metadata",
                    detail: format!("{} has {} bytes", String::from_utf8_lossy(key), v.len()),
                })?;
                Ok(Some(u64::from_be_bytes(a)))
            }
        }
    }

    /// Calls `f(key, value)` for each key in `[start, end)` of `cf`.
    pub fn scan(
        &self,
        cf: &'static str,
        start: &[u8],
        end: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end.to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf)?, ro);
        it.seek(start);
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if !f(k, v)? {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(|e| db_err("iterate", e))
    }

    /// Decodes the chunks of `sid` in partitions `[p_lo, p_hi]` that overlap
    /// `[start, end]`, appending samples (unsorted across chunks).
    #[allow(clippy::too_many_arguments)]
    pub fn read_series(
        &self,
        sid: u64,
        p_lo: i32,
        p_hi: i32,
        start: i64,
        end: i64,
        floats: &mut Vec<Sample>,
        hists: &mut Vec<HistogramSample>,
    ) -> Result<(), StorageError> {
        let cf = self.cf(keys::CF_CHUNKS)?;
        for p in p_lo..=p_hi {
            let prefix = keys::chunk_series_prefix(p, sid);
            let mut seek = prefix.to_vec();
            seek.extend_from_slice(&crate::codec::i64_sortable(start));
            let mut ro = ReadOptions::default();
            ro.set_iterate_upper_bound(keys::prefix_end(&prefix));
            let mut it = self.db.raw_iterator_cf_opt(cf, ro);
            it.seek(&seek);
            while it.valid() {
                let (Some(k), Some(v)) = (it.key(), it.value()) else {
                    break;
                };
                let ck = keys::parse_chunk_key(k)?;
                if ck.min_t <= end && ck.max_t >= start {
                    match chunk::kind(v)? {
                        ChunkKind::Float => chunk::decode_floats(v, floats)?,
                        ChunkKind::Histogram => chunk::decode_histograms(v, hists)?,
                    }
                }
                it.next();
            }
            it.status().map_err(|e| db_err("iterate chunks", e))?;
        }
        Ok(())
    }

    /// The value stored on disk for `sid` at exactly `t`, if any.
    pub fn value_at(&self, sid: u64, partition: i32, t: i64) -> Result<Option<ValueAt>, StorageError> {
        let mut floats = Vec::new();
        let mut hists = Vec::new();
        self.read_series(sid, partition, partition, t, t, &mut floats, &mut hists)?;
        if let Some(s) = floats.iter().find(|s| s.t == t) {
            return Ok(Some(ValueAt::Float(s.v.to_bits())));
        }
        Ok(hists
            .into_iter()
            .find(|h| h.t == t)
            .map(|h| ValueAt::Histogram(h.h)))
    }

    /// Series ids of one posting list (sorted).
    pub fn postings(&self, p: i32, tenant: &str, name: &str, value: &str) -> Result<Vec<u64>, StorageError> {
        let prefix = keys::posting_prefix(p, tenant, Some(name), Some(value));
        let end = keys::prefix_end(&prefix);
        let mut out = Vec::new();
        self.scan(keys::CF_POSTINGS, &prefix, &end, |k, _| {
            if let Some(tail) = k.get(prefix.len()..) {
                out.push(keys::sid_from_key(tail)?);
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Distinct values of label `name` in a partition, by skip-scan: one
    /// seek per value rather than one step per posting.
    pub fn label_values(&self, p: i32, tenant: &str, name: &str) -> Result<Vec<String>, StorageError> {
        let prefix = keys::posting_prefix(p, tenant, Some(name), None);
        self.distinct_components(&prefix)
    }

    /// Distinct label names in a partition (skip-scan).
    pub fn label_names(&self, p: i32, tenant: &str) -> Result<Vec<String>, StorageError> {
        let prefix = keys::posting_prefix(p, tenant, None, None);
        let mut names = self.distinct_components(&prefix)?;
        names.retain(|n| !n.is_empty());
        Ok(names)
    }

    /// Distinct escaped strings that directly follow `prefix` in posting keys.
    fn distinct_components(&self, prefix: &[u8]) -> Result<Vec<String>, StorageError> {
        let end = keys::prefix_end(prefix);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(keys::CF_POSTINGS)?, ro);
        it.seek(prefix);
        let mut out = Vec::new();
        while it.valid() {
            let Some(k) = it.key() else { break };
            let Some(tail) = k.get(prefix.len()..) else { break };
            let mut r = crate::codec::Reader::new(tail, "posting key");
            let comp = r.escaped_string()?;
            let consumed = r.position();
            // Skip past every key sharing this component.
            let mut next = k[..prefix.len() + consumed].to_vec();
            next = keys::prefix_end(&next);
            out.push(comp);
            it.seek(&next);
        }
        it.status().map_err(|e| db_err("iterate postings", e))?;
        Ok(out)
    }

    /// Series records (tenant, labels) for `sids`, `None` where missing.
    pub fn series_records(&self, sids: &[u64]) -> Result<Vec<Option<(String, Labels)>>, StorageError> {
        let cf = self.cf(keys::CF_SERIES)?;
        let keys: Vec<[u8; 8]> = sids.iter().map(|s| keys::sid_key(*s)).collect();
        let results = self.db.multi_get_cf(keys.iter().map(|k| (cf, k.as_slice())));
        let mut out = Vec::with_capacity(sids.len());
        for r in results {
            match r.map_err(|e| db_err("multi_get series", e))? {
                Some(v) => out.push(Some(keys::decode_series_record(&v)?)),
                None => out.push(None),
            }
        }
        Ok(out)
    }

    /// Iterates all keys of a column family from the start.
    pub fn for_each(
        &self,
        cf: &'static str,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let it = self
            .db
            .iterator_cf(self.cf(cf)?, IteratorMode::From(&[], Direction::Forward));
        for item in it {
            let (k, v) = item.map_err(|e| db_err("iterate", e))?;
            f(&k, &v)?;
        }
        Ok(())
    }

    /// Bytes of live SST files of one column family.
    pub fn cf_sst_bytes(&self, cf: &'static str) -> u64 {
        self.cf(cf)
            .ok()
            .and_then(|h| {
                self.db
                    .property_int_value_cf(h, "rocksdb.total-sst-files-size")
                    .ok()
                    .flatten()
            })
            .unwrap_or(0)
    }
}
