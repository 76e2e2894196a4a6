//! Small file-system helpers: new files with the right mode, folder syncs.
//!
//! Files are always created new (`create_new`), so nothing here ever writes through an
//! existing file or symlink; secrets get mode 0600 at creation (no window in which a
//! key is readable by others).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::PkiError;

/// Who may read a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Certificates, the enrollment file: mode 0644 (less the umask).
    Public,
    /// Private keys and tokens: mode 0600.
    Secret,
}

/// Creates `path` (which must not exist) holding `bytes`; with `durable`, waits until
/// the data is on disk.
pub(crate) fn write_new(
    path: &Path,
    bytes: &[u8],
    access: Access,
    durable: bool,
) -> Result<(), PkiError> {
    let mut file = create_new(path, access)?;
    file.write_all(bytes)
        .map_err(|e| PkiError::io("write", path, e))?;
    if durable {
        file.sync_all().map_err(|e| PkiError::io("sync", path, e))?;
    }
    Ok(())
}

/// Opens a new file for writing with the mode for `access`.
pub(crate) fn create_new(path: &Path, access: Access) -> Result<File, PkiError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(match access {
            Access::Public => 0o644,
            Access::Secret => 0o600,
        });
    }
    #[cfg(not(unix))]
    let _ = access;
    options
        .open(path)
        .map_err(|e| PkiError::io("create", path, e))
}

/// Creates a folder (its parent must exist).
pub(crate) fn create_dir(path: &Path) -> Result<(), PkiError> {
    fs::create_dir(path).map_err(|e| PkiError::io("create the folder", path, e))
}

/// Makes the entries of a folder (creations, renames) durable.
pub(crate) fn sync_dir(path: &Path) -> Result<(), PkiError> {
    #[cfg(unix)]
    {
        File::open(path)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| PkiError::io("sync the folder", path, e))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Reads a whole text file.
pub(crate) fn read_text(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|e| PkiError::io("read", path, e))
}
