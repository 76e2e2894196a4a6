//! Removing abandoned staging files. A device that announced a recording, sent part of
//! it and never came back (lost, wiped, or an attacker with a stolen certificate)
//! leaves its partial upload on this gateway's disk for ever; the gateway's sweep job
//! (`gateway::jobs::staging_sweep`) calls [`MediaStore::remove_abandoned`] every
//! `media.staging_sweep_secs` for the files nobody has written for
//! `media.staging_max_age_hours`. A file whose upload is in progress is never touched:
//! the sweep takes the recording's slot only if nobody holds or wants it.

use std::time::UNIX_EPOCH;

use protocol::Millis;
use uuid::Uuid;

use super::fsutil::{fsync_dir, io_error};
use super::{MediaError, MediaStore};

impl MediaStore {
    /// Staging files not written since `before` (ms since the epoch).
    async fn untouched_since(&self, before: Millis) -> Result<Vec<Uuid>, MediaError> {
        let dir = self.staging.dir().to_owned();
        tokio::task::spawn_blocking(move || {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| io_error("list the staging folder", &dir, e))?;
            let mut old = Vec::new();
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(id) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".part"))
                    .and_then(|n| Uuid::parse_str(n).ok())
                else {
                    continue;
                };
                if entry
                    .metadata()
                    .ok()
                    .and_then(|m| written_at(&m))
                    .is_some_and(|at| at < before)
                {
                    old.push(id);
                }
            }
            Ok(old)
        })
        .await
        .map_err(|e| MediaError::Task(e.to_string()))?
    }

    /// Removes the staging files nobody has written since `before`, unless an upload
    /// holds them, and calls `forget` for each (with the recording's slot still held,
    /// so no upload starts before its progress is reset). Returns how many went.
    pub async fn remove_abandoned<F, Fut>(
        &self,
        before: Millis,
        forget: F,
    ) -> Result<u64, MediaError>
    where
        F: Fn(Uuid) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut removed = 0;
        for id in self.untouched_since(before).await? {
            let Some(mut slot) = self.staging.try_acquire(id) else {
                continue;
            };
            let path = slot.path().to_owned();
            // Written since it was listed? Then it is not abandoned.
            let still_old = tokio::fs::metadata(&path)
                .await
                .ok()
                .and_then(|m| written_at(&m))
                .is_some_and(|at| at < before);
            if !still_old {
                continue;
            }
            slot.release();
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("remove a staging file", &path, e)),
            }
            forget(id).await;
            removed += 1;
        }
        if removed > 0 {
            let dir = self.staging.dir().to_owned();
            tokio::task::spawn_blocking(move || fsync_dir(&dir))
                .await
                .map_err(|e| MediaError::Task(e.to_string()))??;
        }
        Ok(removed)
    }
}

/// When a file was last written, in ms since the epoch.
fn written_at(meta: &std::fs::Metadata) -> Option<Millis> {
    let since = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Millis::try_from(since.as_millis()).ok()
}
