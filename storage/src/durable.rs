//! Small files written atomically and durably (Raft votes, the current
//! database pointer of a shard).

use std::io::Write;
use std::path::Path;

use crate::error::StorageError;

/// Fsyncs a directory, making renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::Io(format!("syncing directory {}: {e}", dir.display())))
}

/// Replaces `dir/name` with `bytes` atomically and durably: a temporary
/// file, fsync, rename, fsync of the directory. After a crash the file
/// holds either the old or the new bytes.
pub fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let io =
        |what: &str, e: std::io::Error| StorageError::Io(format!("{what} {}: {e}", dir.join(name).display()));
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
    f.write_all(bytes).map_err(|e| io("writing", e))?;
    f.sync_all().map_err(|e| io("syncing", e))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| io("renaming", e))?;
    sync_dir(dir)
}
