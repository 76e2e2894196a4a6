//! Whose staging folder this is (ARCHITECTURE "Data and durability": staging is private
//! to one gateway process, never shared).
//!
//! Several gateways may share one media folder (a shared mount). Staging files there
//! must never be shared: two processes writing one partial upload (a device that
//! reconnected through another gateway mid-chunk) left a zero-filled hole that the
//! in-memory hash did not see. So each gateway stages under
//! `<media>/staging/<gateway id>/`, where the id is made once and kept in the
//! gateway's data folder (`gateway.id`), and holds an exclusive `flock` on
//! `<that folder>/owner.lock` for as long as it runs. A second process with the same
//! id — the same data folder, or a copy of one — cannot start.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::MediaError;
use super::fsutil::io_error;

/// The file in the data folder that names this gateway.
pub const ID_FILE: &str = "gateway.id";
/// The lock file inside a staging folder.
pub const LOCK_FILE: &str = "owner.lock";

/// This gateway's id: read from `<data_dir>/gateway.id`, or made (a random UUID) and
/// written there durably on the first start.
pub fn gateway_id(data_dir: &Path) -> Result<String, MediaError> {
    let path = data_dir.join(ID_FILE);
    match File::open(&path) {
        Ok(mut file) => {
            let mut text = String::new();
            file.read_to_string(&mut text)
                .map_err(|e| io_error("read the gateway id", &path, e))?;
            let id = text.trim();
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(MediaError::Task(format!(
                    "{} does not hold a gateway id (a UUID): {id:?}",
                    path.display()
                )));
            }
            Ok(id.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            durable::files::write_atomic_mode(
                &path,
                format!("{id}\n").as_bytes(),
                durable::files::PRIVATE_FILE,
            )
            .map_err(|e| io_error("write the gateway id", &path, e))?;
            Ok(id)
        }
        Err(e) => Err(io_error("read the gateway id", &path, e)),
    }
}

/// An exclusive hold on a staging folder, released when dropped (or when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct StagingLock {
    _file: File,
    dir: PathBuf,
}

impl StagingLock {
    /// Takes the folder's lock, or fails at once if another process holds it.
    pub fn take(dir: &Path) -> Result<Self, MediaError> {
        let path = dir.join(LOCK_FILE);
        let mut file = durable::files::private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("open the staging lock", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(MediaError::StagingInUse {
                    dir: dir.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_error("lock the staging folder", &path, e));
            }
        }
        // Who holds it, for an operator reading the file (the lock is what counts).
        let _ = file
            .set_len(0)
            .and_then(|()| writeln!(file, "pid {}", std::process::id()));
        Ok(Self {
            _file: file,
            dir: dir.to_owned(),
        })
    }

    /// The folder held.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_made_once_and_a_held_folder_cannot_be_taken_twice() {
        let data = tempfile::tempdir().unwrap();
        let id = gateway_id(data.path()).unwrap();
        assert_eq!(gateway_id(data.path()).unwrap(), id, "kept across starts");
        let staging = data.path().join("staging").join(&id);
        std::fs::create_dir_all(&staging).unwrap();
        let held = StagingLock::take(&staging).unwrap();
        let err = StagingLock::take(&staging).unwrap_err();
        assert!(
            matches!(&err, MediaError::StagingInUse { dir } if dir == &staging),
            "{err}"
        );
        drop(held);
        StagingLock::take(&staging).expect("free again once released");
    }
}
