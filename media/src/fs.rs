//! The local content-addressed store: a verified recording is renamed from staging to
//! `<dir>/sha256/<first two hex digits>/<hex>`, then the folder is fsync'd, so the
//! name survives power loss before the store says "stored".
//!
//! The same content is kept once: if the target exists with the right size, the staged
//! copy is dropped instead (a retried upload "collapses" onto the stored file).

use std::path::{Path, PathBuf};

use protocol::Sha256Hash;

use super::MediaError;
use super::fsutil::{durability_error, fsync_dir, io_error};

/// Verified recordings on the local file system (or a shared mount).
#[derive(Clone, Debug)]
pub struct FsBlobs {
    root: PathBuf,
}

impl FsBlobs {
    /// A store rooted at `root` (created if missing).
    pub fn open(root: PathBuf) -> Result<Self, MediaError> {
        durable::files::private_dir(&root)
            .map_err(|e| io_error("create the media folder", &root, e))?;
        Ok(Self { root })
    }

    /// Where the content with this hash lives.
    pub fn path_of(&self, sha256: &Sha256Hash) -> PathBuf {
        let hex = sha256.to_hex();
        self.root.join("sha256").join(&hex[..2]).join(hex)
    }

    /// Moves a verified staging file into place and makes the move durable.
    pub fn publish(&self, staged: &Path, sha256: &Sha256Hash, size: u64) -> Result<(), MediaError> {
        let target = self.path_of(sha256);
        let dir = target.parent().expect("a content path has a folder");
        if !dir.exists() {
            durable::files::private_dir(dir)
                .map_err(|e| io_error("create a media folder", dir, e))?;
            fsync_dir(dir.parent().expect("the sha256 folder"))?;
            fsync_dir(&self.root)?;
        }
        if self.holds(sha256, size)? {
            std::fs::remove_file(staged).map_err(|e| io_error("drop a staged copy", staged, e))?;
        } else {
            durable::failpoint::io_point("publish.rename")
                .and_then(|()| std::fs::rename(staged, &target))
                .map_err(|e| {
                    durability_error("move a recording into the media store", &target, e)
                })?;
            durable::failpoint::crash_point("publish.renamed");
            fsync_dir(dir)?;
        }
        if let Some(staging) = staged.parent() {
            fsync_dir(staging)?;
        }
        Ok(())
    }

    /// True when the content is stored with this size.
    pub fn holds(&self, sha256: &Sha256Hash, size: u64) -> Result<bool, MediaError> {
        let path = self.path_of(sha256);
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file() && meta.len() == size),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("look up a recording", &path, e)),
        }
    }
}
