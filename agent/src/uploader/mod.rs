//! Uploading recordings (DOMAIN R2): announce each one, then send its bytes earliest
//! deadline first, resuming from the byte offset the gateway reports, streaming from
//! the file (never loading it whole), within an optional bandwidth limit. The local
//! copy is deleted only after the gateway says stored, and that word is committed to
//! the local store before the file goes.
//!
//! The planner ([`plan::upload_order`]), the chunk sizing ([`chunk::next_chunk_bytes`])
//! and the pacing ([`pace::RateLimiter`]) are pure; the driver below does the IO,
//! through the transport's upload requests.

pub mod chunk;
pub mod pace;
pub mod plan;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use protocol::ErrorCode;
use protocol::Millis;
use protocol::message::UploadHeader;
use tokio::io::AsyncSeekExt;
use uuid::Uuid;

use crate::agent::Agent;
use crate::outbox::StoreError;
use crate::outbox::recordings::{LocalRecording, RecordingState};
use crate::recordings::{AddRecordingError, hash_file, remove_local_copy};
use crate::request::{RequestError, within};
use crate::transport::{ClientError, GatewayConnection, UploadReply};
pub use pace::{Paced, RateLimiter};
pub use plan::{device_deadline, upload_order};

/// Chunks that found the gateway at another offset, per recording and sync, before
/// giving up until the next sync.
const MAX_OFFSET_RETRIES: u32 = 3;

/// Why the recordings step failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// A request failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The local file could not be read.
    #[error("cannot read recording {id} from {path}: {source}")]
    File {
        /// The recording.
        id: Uuid,
        /// Its file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The gateway answered stored with another hash: the copy is kept.
    #[error("the gateway stored recording {0} with another SHA-256; the local copy is kept")]
    StoredHashDiffers(Uuid),
    /// The gateway kept reporting another offset.
    #[error("recording {0}: the gateway's offset kept moving; retrying at the next sync")]
    OffsetChurn(Uuid),
    /// The gateway holds every byte but did not say stored.
    #[error("recording {0}: the gateway holds every byte but has not confirmed it stored")]
    NotConfirmed(Uuid),
    /// Finishing an interrupted registration failed.
    #[error(transparent)]
    Recover(#[from] AddRecordingError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UploadError {
    /// True when the failure is about one recording, not the connection or the local
    /// store: the uploader goes on with the next recording.
    pub fn concerns_one_recording(&self) -> bool {
        match self {
            UploadError::Request(e) => matches!(e, RequestError::Client(ClientError::Refused(_))),
            UploadError::File { .. }
            | UploadError::StoredHashDiffers(_)
            | UploadError::OffsetChurn(_)
            | UploadError::NotConfirmed(_) => true,
            UploadError::Recover(_) | UploadError::Store(_) => false,
        }
    }
}

impl From<ClientError> for UploadError {
    fn from(e: ClientError) -> Self {
        UploadError::Request(RequestError::Client(e))
    }
}

/// What the recordings step did, for the sync's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Recordings announced.
    pub announced: usize,
    /// Recordings the gateway confirmed stored (local copies deleted).
    pub stored: usize,
    /// Recording bytes sent.
    pub bytes_sent: u64,
}

/// How one upload attempt ended.
enum Outcome {
    Stored,
    Refused,
}

impl Agent {
    /// The recordings step of a sync: finish interrupted registrations, then upload
    /// every pending recording, earliest deadline first.
    pub(crate) async fn sync_recordings(
        &self,
        conn: &GatewayConnection,
        report: &mut UploadReport,
    ) -> Result<(), UploadError> {
        self.recover_recordings().await?;
        let skew = self
            .outbox()
            .state_i64(crate::outbox::state::keys::CLOCK_SKEW_MS)
            .await?;
        let pending = self.outbox().recordings_in(RecordingState::Pending).await?;
        let mut limiter = RateLimiter::new(self.config().upload_bytes_per_sec);
        let mut first_error = None;
        for recording in upload_order(pending, skew) {
            match self.upload(conn, &recording, &mut limiter, report).await {
                Ok(Outcome::Stored) => report.stored += 1,
                Ok(Outcome::Refused) => {}
                Err(UploadError::File { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    let reason = format!("the local file {} is missing", recording.path.display());
                    tracing::error!(recording = %recording.recording_id, %reason, "cannot upload");
                    self.outbox()
                        .recording_refused(recording.recording_id, &reason)
                        .await?;
                }
                Err(e) if e.concerns_one_recording() => {
                    // Try the others; report this one at the end (retried next sync).
                    tracing::warn!(recording = %recording.recording_id, error = %e, "upload failed");
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Announces (if needed) and uploads one recording.
    async fn upload(
        &self,
        conn: &GatewayConnection,
        r: &LocalRecording,
        limiter: &mut RateLimiter,
        report: &mut UploadReport,
    ) -> Result<Outcome, UploadError> {
        let id = r.recording_id;
        let (mut offset, stored) = match self.position(conn, r, report).await {
            Ok(p) => p,
            Err(UploadError::Request(e)) => return self.refusal(r, e).await,
            Err(e) => return Err(e),
        };
        if stored {
            return self.stored(r, None).await;
        }
        let mut retries = 0;
        let configured = self.config().upload_chunk_bytes;
        let mut chunk_bytes = configured;
        loop {
            let length = (r.size - offset.min(r.size)).min(chunk_bytes);
            let started = tokio::time::Instant::now();
            let header = UploadHeader {
                recording_id: id,
                offset,
                length,
            };
            let reply = match self.send_chunk(conn, r, header, limiter, report).await {
                Ok(reply) => reply,
                Err(UploadError::Request(e)) => match e {
                    RequestError::Client(ClientError::Refused(reply))
                        if reply.code == ErrorCode::OffsetMismatch
                            || reply.code == ErrorCode::UnknownRecording =>
                    {
                        retries += 1;
                        if retries > MAX_OFFSET_RETRIES {
                            return Err(UploadError::OffsetChurn(id));
                        }
                        if reply.code == ErrorCode::UnknownRecording {
                            // The gateway lost track of it (a restored store): announce again.
                            self.outbox().recording_announced(id, 0, 0).await?;
                        }
                        let fresh = LocalRecording {
                            announced: reply.code != ErrorCode::UnknownRecording,
                            ..r.clone()
                        };
                        let (o, stored) = self.position(conn, &fresh, report).await?;
                        if stored {
                            return self.stored(r, None).await;
                        }
                        offset = o;
                        continue;
                    }
                    other => return self.refusal(r, other).await,
                },
                Err(e) => return Err(e),
            };
            match reply {
                UploadReply::Stored(s) => {
                    if s.sha256 != r.sha256 {
                        return Err(UploadError::StoredHashDiffers(id));
                    }
                    return self.stored(r, Some(s.stored_at)).await;
                }
                UploadReply::Offset(o) if o.stored => return self.stored(r, None).await,
                UploadReply::Offset(o) => {
                    self.outbox().recording_offset(id, o.offset).await?;
                    if o.offset >= r.size {
                        return Err(UploadError::NotConfirmed(id));
                    }
                    let sent = o.offset.saturating_sub(offset);
                    chunk_bytes = chunk::next_chunk_bytes(configured, sent, started.elapsed());
                    offset = o.offset;
                }
            }
        }
    }

    /// Where the upload stands on the gateway: announces the recording the first
    /// time, asks for the offset after that.
    async fn position(
        &self,
        conn: &GatewayConnection,
        r: &LocalRecording,
        report: &mut UploadReport,
    ) -> Result<(u64, bool), UploadError> {
        let id = r.recording_id;
        if !r.announced {
            let announce = conn.announce_recording(r.announcement());
            let tracked = within(self, "announce_recording", announce).await?;
            self.outbox()
                .recording_announced(id, tracked.deadline, tracked.offset)
                .await?;
            report.announced += 1;
            return Ok((tracked.offset, tracked.stored));
        }
        let held = within(self, "upload_offset", conn.upload_offset(id)).await?;
        self.outbox().recording_offset(id, held.offset).await?;
        Ok((held.offset, held.stored))
    }

    /// Sends one chunk, streamed from the file at `header.offset` and paced by
    /// `limiter`. It fails only when no byte moved for a whole request timeout (a
    /// slow link is not a dead one: a 16 MiB chunk over a poor cellular link may
    /// take minutes).
    async fn send_chunk(
        &self,
        conn: &GatewayConnection,
        r: &LocalRecording,
        header: UploadHeader,
        limiter: &mut RateLimiter,
        report: &mut UploadReport,
    ) -> Result<UploadReply, UploadError> {
        let file_err = |source| UploadError::File {
            id: r.recording_id,
            path: r.path.display().to_string(),
            source,
        };
        let mut file = tokio::fs::File::open(&r.path).await.map_err(file_err)?;
        let len = file.metadata().await.map_err(file_err)?.len();
        if len != r.size {
            return Err(file_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the file has {len} bytes, not the {} it was registered with",
                    r.size
                ),
            )));
        }
        file.seek(std::io::SeekFrom::Start(header.offset))
            .await
            .map_err(file_err)?;
        let read = Arc::new(AtomicU64::new(0));
        let upload = conn.upload_chunk(header, Paced::new(file, limiter, read.clone()));
        tokio::pin!(upload);
        let patience = self.config().request_timeout();
        let mut seen = 0;
        let reply = loop {
            tokio::select! {
                reply = &mut upload => break reply,
                () = tokio::time::sleep(patience) => {
                    let now = read.load(Ordering::Relaxed);
                    if now == seen {
                        report.bytes_sent += now;
                        return Err(RequestError::Timeout("upload_chunk").into());
                    }
                    seen = now;
                }
            }
        };
        report.bytes_sent += read.load(Ordering::Relaxed);
        Ok(reply?)
    }

    /// The gateway holds the recording: commit that, then delete the local copy.
    async fn stored(
        &self,
        r: &LocalRecording,
        stored_at: Option<Millis>,
    ) -> Result<Outcome, UploadError> {
        let at = stored_at.unwrap_or_else(|| self.now());
        durable::failpoint::crash_point("agent.stored_heard");
        self.outbox().recording_stored(r.recording_id, at).await?;
        remove_local_copy(&r.path).map_err(|source| UploadError::File {
            id: r.recording_id,
            path: r.path.display().to_string(),
            source,
        })?;
        durable::failpoint::crash_point("agent.copy_deleted");
        self.outbox().recording_copy_deleted(r.recording_id).await?;
        tracing::info!(recording = %r.recording_id, "recording stored by the gateway; local copy deleted");
        Ok(Outcome::Stored)
    }

    /// Handles a refusal: a hash mismatch whose cause is the local file (it no longer
    /// matches the hash taken when it was registered) or a size over the limit marks
    /// the recording refused and keeps its copy; anything else fails this sync and is
    /// retried at the next.
    async fn refusal(&self, r: &LocalRecording, e: RequestError) -> Result<Outcome, UploadError> {
        let RequestError::Client(ClientError::Refused(reply)) = &e else {
            return Err(e.into());
        };
        let reason = match reply.code {
            ErrorCode::HashMismatch => {
                let path = r.path.clone();
                let local = tokio::task::spawn_blocking(move || hash_file(&path))
                    .await
                    .map_err(|j| std::io::Error::other(j.to_string()))
                    .and_then(|x| x);
                match local {
                    Ok((hash, _)) if hash == r.sha256 => return Err(e.into()),
                    Ok(_) => format!(
                        "the local file no longer matches the SHA-256 taken when it was registered ({})",
                        reply.message
                    ),
                    Err(io) => format!("the local file cannot be read: {io}"),
                }
            }
            ErrorCode::RecordingTooLarge
            | ErrorCode::AnnouncementConflict
            | ErrorCode::InvalidField => reply.to_string(),
            _ => return Err(e.into()),
        };
        tracing::warn!(recording = %r.recording_id, %reason, "recording refused; local copy kept");
        self.outbox()
            .recording_refused(r.recording_id, &reason)
            .await?;
        Ok(Outcome::Refused)
    }
}
