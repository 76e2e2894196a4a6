//! Small file-system helpers for durable writes: fsync a directory (so a created or
//! renamed name survives power loss), recognise a full disk, and tell a failed
//! durable step (write, fsync, rename) from other errors.

use std::path::Path;

use super::MediaError;

/// Fsyncs a directory, making the names created, renamed or removed in it durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), MediaError> {
    durable::failpoint::io_point("media.folder_fsync")
        .and_then(|()| durable::files::sync_dir(dir))
        .map_err(|e| durability_error("fsync a folder", dir, e))
}

/// A failed write, fsync or rename: after it, what was written may not be on disk
/// whatever a later call says (a failed fsync may have dropped the pages it could not
/// write and report success next time), so the media store stops acknowledging.
/// A full disk is not that: it is [`MediaError::StorageFull`], and waits for space.
pub(crate) fn durability_error(
    what: &'static str,
    path: &Path,
    source: std::io::Error,
) -> MediaError {
    if is_storage_full(&source) {
        return MediaError::StorageFull { offset: 0 };
    }
    MediaError::Durability {
        what,
        path: path.to_owned(),
        source,
    }
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
