//! Small file-system helpers for durable writes: fsync a directory (so a created or
//! renamed name survives power loss) and recognise a full disk.

use std::path::Path;

use super::MediaError;

/// Fsyncs a directory, making the names created, renamed or removed in it durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), MediaError> {
    durable::files::sync_dir(dir).map_err(|e| io_error("fsync a folder", dir, e))
}

/// An I/O error with what was being done and where.
pub(crate) fn io_error(what: &'static str, path: &Path, source: std::io::Error) -> MediaError {
    if is_storage_full(&source) {
        return MediaError::StorageFull { offset: 0 };
    }
    MediaError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// True for "no space left on device" and "disk quota exceeded" (and the file-size
/// limit), which the device can only wait out.
pub(crate) fn is_storage_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::QuotaExceeded
            | std::io::ErrorKind::FileTooLarge
    )
}
