//! Registering recordings (`agent recording add`): the file is taken into the agent's
//! media folder (`<data>/media/<recording id>`), hashed there, and queued for upload.
//!
//! The agent takes the file rather than pointing at it, so nothing else can change or
//! delete it before the gateway holds it, and so that deleting "the local copy" after
//! the upload (DOMAIN R2: officers may not keep recordings) deletes the only copy. It
//! takes the file itself (a symbolic link is refused) and makes it 0600.
//! Each step is recoverable: the row is written first (`adding`, with the source
//! path), then the file is moved, then hashed and the row made `pending`. A crash in
//! between is finished by [`Agent::recover_recordings`] on the next start.

use std::io;
use std::path::{Path, PathBuf};

use protocol::message::MediaKind;
use protocol::{InvalidField, Millis, Sha256Hash};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::agent::Agent;
use crate::outbox::StoreError;
use crate::outbox::recordings::{LocalRecording, RecordingState};
use durable::files::{PRIVATE_FILE, create_fresh, private_dir, private_options, sync_dir, tighten};

/// How old an unfinished registration must be before another process finishes it:
/// younger ones may still be in the hands of the `recording add` that started them.
const RECOVERY_GRACE_MS: Millis = 60_000;

/// Folder of recordings inside the data folder.
pub const MEDIA_DIR: &str = "media";

/// A recording to register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecording {
    /// The file (moved into the media folder).
    pub file: PathBuf,
    /// Audio or video.
    pub media: MediaKind,
    /// Start (device clock).
    pub started_at: Millis,
    /// End (device clock).
    pub ended_at: Millis,
    /// The case.
    pub case_number: Option<String>,
    /// The officer's certificate number.
    pub officer: Option<String>,
}

/// Why a recording could not be registered (nothing was taken).
#[derive(Debug, thiserror::Error)]
pub enum AddRecordingError {
    /// A field is invalid (times, lengths, size over the gateway's limit).
    #[error("the recording is not valid: {0}")]
    Invalid(#[from] InvalidField),
    /// The file is missing or not a regular file.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Moving or hashing failed.
    #[error("cannot take {path} into the media folder: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AddRecordingError {
    /// True for errors in the caller's input (the CLI exits 64).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            AddRecordingError::Invalid(_) | AddRecordingError::File { .. }
        )
    }
}

/// Hashes a file by streaming it (never loading it whole): its SHA-256 and size.
pub fn hash_file(path: &Path) -> io::Result<(Sha256Hash, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((Sha256Hash(hasher.finalize().into()), size))
}

/// Moves `from` to `to` durably: a rename, or (across file systems) a copy into a
/// fresh private file that is fsync'd and renamed into place before the source is
/// removed.
fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let partial = to.with_extension("partial");
            let mut copy = create_fresh(&partial, PRIVATE_FILE)?;
            let mut source = private_options().read(true).open(from)?;
            io::copy(&mut source, &mut copy)?;
            copy.sync_all()?;
            std::fs::rename(&partial, to)?;
            if let Some(dir) = to.parent() {
                sync_dir(dir)?;
            }
            std::fs::remove_file(from)?;
        }
        Err(e) => return Err(e),
    }
    if let Some(dir) = to.parent() {
        sync_dir(dir)?;
    }
    if let Some(dir) = from.parent() {
        let _ = sync_dir(dir);
    }
    Ok(())
}

impl Agent {
    /// The media folder.
    pub fn media_dir(&self) -> PathBuf {
        self.data_dir().join(MEDIA_DIR)
    }

    /// Registers a recording: takes its file, hashes it, queues it for upload
    /// (durable when this returns).
    pub async fn add_recording(
        &self,
        new: NewRecording,
    ) -> Result<LocalRecording, AddRecordingError> {
        let limits = self.outbox().limits().await?;
        // The file itself, not a link: taking a link would leave the recording where
        // it was, a copy the officer may not keep (R2).
        let meta = std::fs::symlink_metadata(&new.file).map_err(|e| AddRecordingError::File {
            path: new.file.clone(),
            problem: e.to_string(),
        })?;
        if !meta.is_file() {
            let problem = if meta.file_type().is_symlink() {
                "a symbolic link; give the recording's file itself"
            } else {
                "not a regular file"
            };
            return Err(AddRecordingError::File {
                path: new.file.clone(),
                problem: problem.into(),
            });
        }
        let id = Uuid::new_v4();
        let mut recording = LocalRecording {
            recording_id: id,
            path: self.media_dir().join(id.to_string()),
            source: Some(new.file.clone()),
            sha256: Sha256Hash::ZERO,
            size: meta.len(),
            media: new.media,
            started_at: new.started_at,
            ended_at: new.ended_at,
            case_number: new.case_number,
            officer: new.officer,
            state: RecordingState::Adding,
            announced: false,
            gateway_deadline: None,
            gateway_offset: 0,
            stored_at: None,
            reason: None,
        };
        recording.announcement().validate(&limits)?;
        private_dir(&self.media_dir()).map_err(|source| AddRecordingError::Io {
            path: self.media_dir(),
            source,
        })?;
        self.outbox()
            .insert_recording(&recording, self.now())
            .await?;
        match self.finish_adding(&recording).await {
            Ok(done) => Ok(done),
            Err(e) => {
                // Nothing was taken if the source is still where it was.
                if recording.path.exists() {
                    tracing::warn!(error = %e, "recording taken but not hashed; finished on next start");
                } else {
                    self.outbox().forget_adding_recording(id).await?;
                }
                recording.state = RecordingState::Adding;
                Err(e)
            }
        }
    }

    /// Moves (if still needed) and hashes an `adding` recording, then queues it.
    async fn finish_adding(
        &self,
        recording: &LocalRecording,
    ) -> Result<LocalRecording, AddRecordingError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| AddRecordingError::Io { path, source }
        };
        if !recording.path.exists() {
            let source = recording
                .source
                .clone()
                .ok_or_else(|| AddRecordingError::File {
                    path: recording.path.clone(),
                    problem: "the recording's file is missing".into(),
                })?;
            let to = recording.path.clone();
            let from = source.clone();
            tokio::task::spawn_blocking(move || move_file(&from, &to))
                .await
                .map_err(|e| io::Error::other(e.to_string()))
                .and_then(|r| r)
                .map_err(io_err(&source))?;
        }
        // Taken, the recording is the device user's alone, whatever mode it came with.
        tighten(&recording.path, PRIVATE_FILE).map_err(io_err(&recording.path))?;
        let path = recording.path.clone();
        let (sha256, size) = tokio::task::spawn_blocking(move || hash_file(&path))
            .await
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(io_err(&recording.path))?;
        self.outbox()
            .recording_added(recording.recording_id, sha256, size)
            .await?;
        Ok(self
            .outbox()
            .recording(recording.recording_id)
            .await?
            .expect("the row was just written"))
    }

    /// Finishes what a crash interrupted: `adding` rows are moved and hashed (or
    /// forgotten when their file is gone from both places), and stored recordings
    /// whose file is still here lose it.
    pub async fn recover_recordings(&self) -> Result<(), AddRecordingError> {
        let cutoff = self.now().saturating_sub(RECOVERY_GRACE_MS);
        for r in self.outbox().adding_recordings_before(cutoff).await? {
            let source_exists = r.source.as_ref().is_some_and(|s| s.exists());
            if !r.path.exists() && !source_exists {
                tracing::warn!(recording = %r.recording_id, "recording vanished before it was taken; forgetting it");
                self.outbox()
                    .forget_adding_recording(r.recording_id)
                    .await?;
                continue;
            }
            self.finish_adding(&r).await?;
        }
        for r in self.outbox().stored_with_copy().await? {
            remove_local_copy(&r.path).map_err(|source| AddRecordingError::Io {
                path: r.path.clone(),
                source,
            })?;
            self.outbox().recording_copy_deleted(r.recording_id).await?;
        }
        Ok(())
    }

    /// Every recording the agent knows, oldest end first.
    pub async fn recordings(&self) -> Result<Vec<LocalRecording>, StoreError> {
        let mut all = Vec::new();
        for state in [
            RecordingState::Adding,
            RecordingState::Pending,
            RecordingState::Refused,
            RecordingState::Stored,
        ] {
            all.extend(self.outbox().recordings_in(state).await?);
        }
        all.sort_by_key(|r| (r.ended_at, r.recording_id));
        Ok(all)
    }
}

/// Deletes a local copy the gateway holds; a copy already gone is fine.
pub(crate) fn remove_local_copy(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
