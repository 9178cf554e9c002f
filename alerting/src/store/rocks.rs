//! The RocksDB implementation of [`AlertStateStore`]: one database under the alerting data
//! directory; key = kind tag, tenant, NUL, key; every batch is one synced `WriteBatch`.

use std::path::Path;

use parking_lot::Mutex;
use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use super::{AlertStateStore, StateKind, StateOp};
use crate::error::AlertingError;

/// Alert state in an embedded RocksDB.
pub struct RocksStateStore {
    db: DB,
    // Serialises batches so the order of `apply` calls is the order of the writes.
    write_lock: Mutex<()>,
}

fn key(kind: StateKind, tenant: &str, k: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + tenant.len() + k.len());
    out.push(kind.tag());
    out.extend_from_slice(tenant.as_bytes());
    out.push(0);
    out.extend_from_slice(k.as_bytes());
    out
}

fn store_err(e: rocksdb::Error) -> AlertingError {
    AlertingError::Store(e.to_string())
}

impl RocksStateStore {
    pub fn open(dir: &Path) -> Result<Self, AlertingError> {
        std::fs::create_dir_all(dir).map_err(|e| AlertingError::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        // RocksDB keeps up to 1,000 info logs of any size by default; the alert state is small
        // and long-lived, so its own logs must not outgrow it.
        opts.set_keep_log_file_num(2);
        opts.set_max_log_file_size(4 << 20);
        let db = DB::open(&opts, dir).map_err(store_err)?;
        Ok(RocksStateStore {
            db,
            write_lock: Mutex::new(()),
        })
    }

    fn scan_prefix(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        strip: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, AlertingError> {
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item.map_err(store_err)?;
            if k.as_ref() >= end.as_slice() {
                break;
            }
            let key = String::from_utf8_lossy(&k[strip..]).into_owned();
            out.push((key, v.to_vec()));
        }
        Ok(out)
    }
}

impl AlertStateStore for RocksStateStore {
    fn apply(&self, ops: &[StateOp]) -> Result<(), AlertingError> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                StateOp::Put {
                    tenant,
                    kind,
                    key: k,
                    value,
                } => {
                    if tenant.contains('\0') {
                        return Err(AlertingError::Store("tenant contains NUL".into()));
                    }
                    batch.put(key(*kind, tenant, k), value);
                }
                StateOp::Delete { tenant, kind, key: k } => batch.delete(key(*kind, tenant, k)),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        let _g = self.write_lock.lock();
        self.db.write_opt(batch, &wo).map_err(store_err)
    }

    fn scan(&self, tenant: &str, kind: StateKind) -> Result<Vec<(String, Vec<u8>)>, AlertingError> {
        let start = key(kind, tenant, "");
        let mut end = start.clone();
        // The NUL separator is the last byte; bumping it to 1 bounds exactly this tenant.
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        let strip = start.len();
        self.scan_prefix(start, end, strip)
    }

    fn scan_range(
        &self,
        tenant: &str,
        kind: StateKind,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, AlertingError> {
        let strip = key(kind, tenant, "").len();
        self.scan_prefix(key(kind, tenant, from), key(kind, tenant, to), strip)
    }

    fn tenants(&self) -> Result<Vec<String>, AlertingError> {
        let mut out = std::collections::BTreeSet::new();
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, _) = item.map_err(store_err)?;
            if let Some(pos) = k.iter().skip(1).position(|b| *b == 0) {
                out.insert(String::from_utf8_lossy(&k[1..1 + pos]).into_owned());
            }
        }
        Ok(out.into_iter().collect())
    }

    fn flush(&self) -> Result<(), AlertingError> {
        self.db.flush().map_err(store_err)
    }
}
