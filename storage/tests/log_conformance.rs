//! The local shard log passes the `ShardLog` conformance suite, with
//! segments small enough that the checks cross segment boundaries, with and
//! without fsync.

use std::sync::Arc;

use fenghuo_storage::replicate::conformance;
use fenghuo_storage::replicate::{LocalLog, LocalLogOptions, ShardLog};

#[test]
fn local_log_conforms() {
    for (segment_bytes, fsync) in [(4096, false), (64 << 20, true)] {
        let opts = LocalLogOptions { segment_bytes, fsync };
        conformance::run_all(&|dir| {
            Arc::new(LocalLog::open(dir, opts.clone(), 1).unwrap_or_else(|e| panic!("open: {e}")))
                as Arc<dyn ShardLog>
        });
    }
}
