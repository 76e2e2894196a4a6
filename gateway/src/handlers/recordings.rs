//! Recordings (DOMAIN R2): announce, ask for the offset, upload a chunk.
//!
//! The order that makes "stored" true: bytes go to a staging file and are fsync'd; the
//! SHA-256 is verified; the file is made durable in the content-addressed media store;
//! the store row is committed; only then does the device hear [`RecordingStored`] (or
//! `stored: true`), and only then may it delete its copy.
//!
//! If the gateway dies between the media store and the commit, the next request about
//! the recording finds its content already held (by hash and size) and commits then:
//! the retried upload collapses onto the stored file. If it dies between the commit and
//! the reply, the retry finds the row stored. Either way the device deletes its copy
//! only after hearing "stored" from a gateway that holds it.

use protocol::message::{
    RecordingAnnouncement, RecordingStored, RecordingTracked, UploadHeader, UploadOffset,
    UploadOffsetQuery,
};
use protocol::{ErrorCode, ErrorReply, ResponseBody, Sha256Hash};
use quinn::VarInt;
use uuid::Uuid;

use super::{ConnectionContext, HandlerError};
use crate::faults::{Component, Halted};
use crate::state::GatewayState;
use crate::storage::Folder;
use media::{MediaError, Received, Stop, UploadCap, UploadSlot};
use store::recordings::Announced;
use store::{RecordingRow, StoreError};

/// Why a recording request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The announced size is over `limits.max_recording_bytes`.
    #[error("recording of {size} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// As announced.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A chunk runs past the announced size.
    #[error("{length} bytes from offset {offset} run past the announced size of {size} bytes")]
    PastEnd {
        /// The chunk's offset.
        offset: u64,
        /// The chunk's length.
        length: u64,
        /// The announced size.
        size: u64,
    },
    /// No recording with this id was announced by this device.
    #[error("recording {0} was not announced by this device")]
    Unknown(Uuid),
    /// The id was announced before with another device, size or hash.
    #[error("recording {0} was announced before with a different size or hash")]
    Conflict(Uuid),
    /// The chunk does not start at the gateway's offset.
    #[error("the chunk starts at {got}; the gateway holds {expected} bytes, resume from there")]
    OffsetMismatch {
        /// The gateway's offset.
        expected: u64,
        /// The chunk's offset.
        got: u64,
    },
    /// The bytes do not have the announced SHA-256; they were dropped.
    #[error(
        "the uploaded bytes have SHA-256 {actual}, not the announced {expected}; they were dropped, upload again from offset 0"
    )]
    HashMismatch {
        /// As announced.
        expected: Sha256Hash,
        /// As received.
        actual: Sha256Hash,
    },
    /// The media storage is full.
    #[error(
        "the gateway's media storage is full; it holds {offset} bytes of this recording, retry later from there"
    )]
    StorageFull {
        /// The durable offset.
        offset: u64,
    },
    /// The chunk's bytes came too slowly, or stopped.
    #[error(
        "the chunk's bytes came slower than {min} bytes a second for {period_secs} s; the gateway holds {offset} bytes of this recording, resume from there"
    )]
    Stalled {
        /// The durable offset.
        offset: u64,
        /// The minimum rate.
        min: u64,
        /// The period it is judged over.
        period_secs: u64,
    },
    /// The gateway receives as many chunks as it allows at once.
    #[error("the gateway is receiving as many uploads as it allows ({max}); retry later")]
    Busy {
        /// `media.max_uploads_in_flight`.
        max: u32,
    },
    /// This device sends as many chunks as it may at once.
    #[error(
        "this device already sends {max} uploads at once, as many as the gateway allows; finish one first"
    )]
    TooManyUploads {
        /// `media.max_uploads_per_device`.
        max: u32,
    },
    /// This device has as many unfinished recordings as it may.
    #[error(
        "this device has {max} recordings announced and not yet stored, as many as the gateway allows; upload those first"
    )]
    TooManyPending {
        /// `media.max_pending_recordings_per_device`.
        max: u32,
    },
    /// This device's partial uploads hold as much staging space as it may.
    #[error(
        "this device's unfinished uploads hold {held} bytes on the gateway; {length} more would pass its limit of {max} bytes; finish one first"
    )]
    StagingQuota {
        /// Bytes held now.
        held: u64,
        /// The chunk's length.
        length: u64,
        /// `media.max_staging_bytes_per_device`.
        max: u64,
    },
    /// A storage failure stopped the media store (until the gateway is restarted).
    #[error(transparent)]
    Halted(#[from] Halted),
    /// The gateway is stopping.
    #[error(
        "the gateway is shutting down; it holds {offset} bytes of this recording, resume from there on a new connection"
    )]
    ShuttingDown {
        /// The durable offset.
        offset: u64,
    },
    /// The media store failed.
    #[error("media store: {0}")]
    Media(MediaError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<MediaError> for RecordingError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::StorageFull { offset } => RecordingError::StorageFull { offset },
            MediaError::HashMismatch { expected, actual } => {
                RecordingError::HashMismatch { expected, actual }
            }
            other => RecordingError::Media(other),
        }
    }
}

impl RecordingError {
    /// The typed error reply for the device.
    pub fn reply(&self) -> ErrorReply {
        let code = match self {
            RecordingError::TooLarge { .. } | RecordingError::PastEnd { .. } => {
                ErrorCode::RecordingTooLarge
            }
            RecordingError::Unknown(_) => ErrorCode::UnknownRecording,
            RecordingError::Conflict(_) => ErrorCode::AnnouncementConflict,
            RecordingError::OffsetMismatch { .. } => ErrorCode::OffsetMismatch,
            RecordingError::HashMismatch { .. } => ErrorCode::HashMismatch,
            RecordingError::StorageFull { .. } => ErrorCode::StorageFull,
            RecordingError::Stalled { .. } => ErrorCode::UploadStalled,
            RecordingError::Busy { .. } => ErrorCode::Busy,
            RecordingError::TooManyUploads { .. } => ErrorCode::TooManyUploads,
            RecordingError::TooManyPending { .. } => ErrorCode::TooManyPendingRecordings,
            RecordingError::StagingQuota { .. } => ErrorCode::StagingQuotaExceeded,
            RecordingError::Halted(_) => ErrorCode::StorageFailed,
            RecordingError::ShuttingDown { .. } => ErrorCode::ShuttingDown,
            RecordingError::Media(_) | RecordingError::Store(_) => ErrorCode::Internal,
        };
        let message = match self {
            // Internals are logged, not sent to devices.
            RecordingError::Media(_) | RecordingError::Store(_) => {
                "the gateway could not complete the request; retry".into()
            }
            RecordingError::Halted(_) => super::STORAGE_FAILED_MESSAGE.into(),
            other => other.to_string(),
        };
        ErrorReply::new(code, message)
    }
}

/// Where an upload stands: stored, or how many bytes the gateway holds.
enum Position {
    Stored(Box<RecordingRow>),
    Held(u64),
}

/// Stops the media store when a write, fsync or rename failed (see [`crate::faults`];
/// the device hears `StorageFailed`), and logs the gateway's other failures (the
/// device only hears "retry").
fn finished(
    state: &GatewayState,
    result: Result<ResponseBody, HandlerError>,
) -> Result<ResponseBody, HandlerError> {
    if let Err(HandlerError::Recording(RecordingError::Media(
        failure @ MediaError::Durability { .. },
    ))) = &result
    {
        return Err(RecordingError::Halted(state.faults.halt(Component::Media, failure)).into());
    }
    if let Err(
        e @ (HandlerError::Store(_)
        | HandlerError::Recording(RecordingError::Store(_) | RecordingError::Media(_))),
    ) = &result
    {
        tracing::error!(error = %e, "recording request failed in the gateway");
    }
    result
}

/// Serves an announcement: the recording is tracked at once, with its deadline.
pub(super) async fn announce(
    state: &GatewayState,
    ctx: &ConnectionContext,
    announcement: RecordingAnnouncement,
) -> Result<ResponseBody, HandlerError> {
    finished(state, announce_inner(state, ctx, announcement).await)
}

async fn announce_inner(
    state: &GatewayState,
    ctx: &ConnectionContext,
    announcement: RecordingAnnouncement,
) -> Result<ResponseBody, HandlerError> {
    let limits = &state.config.limits;
    if announcement.size > limits.max_recording_bytes {
        return Err(RecordingError::TooLarge {
            size: announcement.size,
            max: limits.max_recording_bytes,
        }
        .into());
    }
    announcement.validate(limits)?;
    let skew = ctx.skew.get().copied().ok_or(HandlerError::HelloRequired)?;
    let max = state.config.media.max_pending_recordings_per_device;
    if state.store.pending_recordings(&ctx.device_id, max).await? >= max
        && state
            .store
            .recording(announcement.recording_id)
            .await?
            .is_none()
    {
        return Err(refused(state, RecordingError::TooManyPending { max }));
    }
    let now = state.clock.now();
    let fresh = RecordingRow::announced(
        &announcement,
        &ctx.device_id,
        skew,
        now,
        &state.config.policy.deadline,
        &state.config.policy.clock,
    );
    let row = match state.store.announce_recording(&fresh).await? {
        Announced::New(row) => {
            if row.clock_implausible {
                state.recording_metrics.clock_implausible.inc();
                super::clock::raise(state, &ctx.device_id, "recording times", now).await?;
            }
            tracing::info!(
                recording = %row.id, size = row.size, deadline = row.deadline,
                state = row.state.as_str(), "recording announced"
            );
            row
        }
        Announced::Existing(row) => row,
        Announced::Conflict(_) => return Err(RecordingError::Conflict(fresh.id).into()),
    };
    // Tracked (its deadline counts); what the gateway holds of it is the media
    // store's to say, and a stopped one says nothing.
    state
        .faults
        .check(Component::Media)
        .map_err(RecordingError::from)?;
    let deadline = row.deadline;
    let id = row.id;
    let (offset, stored) = match position(state, row).await? {
        Position::Stored(row) => (row.size, true),
        Position::Held(offset) => (offset, false),
    };
    Ok(ResponseBody::RecordingTracked(RecordingTracked {
        recording_id: id,
        deadline,
        offset,
        stored,
    }))
}

/// Serves an offset query.
pub(super) async fn offset(
    state: &GatewayState,
    ctx: &ConnectionContext,
    query: UploadOffsetQuery,
) -> Result<ResponseBody, HandlerError> {
    finished(state, offset_inner(state, ctx, query).await)
}

async fn offset_inner(
    state: &GatewayState,
    ctx: &ConnectionContext,
    query: UploadOffsetQuery,
) -> Result<ResponseBody, HandlerError> {
    state
        .faults
        .check(Component::Media)
        .map_err(RecordingError::from)?;
    let row = own_recording(state, ctx, query.recording_id).await?;
    Ok(ResponseBody::UploadOffset(
        match position(state, row).await? {
            Position::Stored(row) => UploadOffset {
                recording_id: row.id,
                offset: row.size,
                stored: true,
            },
            Position::Held(offset) => UploadOffset {
                recording_id: query.recording_id,
                offset,
                stored: false,
            },
        },
    ))
}

/// Serves a chunk: `header.length` raw bytes follow the header on `recv`. Whatever
/// the outcome, the bytes that arrived are durable before the reply; a refused chunk's
/// bytes are not read (the stream is stopped).
pub(super) async fn upload_chunk(
    state: &GatewayState,
    ctx: &ConnectionContext,
    header: UploadHeader,
    recv: &mut quinn::RecvStream,
) -> Result<ResponseBody, HandlerError> {
    let result = finished(state, receive_chunk(state, ctx, header, recv).await);
    if result.is_err() {
        // Tell the device to stop sending: nothing more of this chunk will be read.
        let _ = recv.stop(VarInt::from_u32(0));
    }
    result
}

async fn receive_chunk(
    state: &GatewayState,
    ctx: &ConnectionContext,
    header: UploadHeader,
    recv: &mut quinn::RecvStream,
) -> Result<ResponseBody, HandlerError> {
    let media = &state.config.media;
    let _in_flight = state.media.caps.try_begin(&ctx.device_id).map_err(|cap| {
        refused(
            state,
            match cap {
                UploadCap::Gateway => RecordingError::Busy {
                    max: media.max_uploads_in_flight,
                },
                UploadCap::Device => RecordingError::TooManyUploads {
                    max: media.max_uploads_per_device,
                },
            },
        )
    })?;
    state
        .faults
        .check(Component::Media)
        .map_err(RecordingError::from)?;
    let row = own_recording(state, ctx, header.recording_id).await?;
    if row.is_stored() {
        return Ok(stored_reply(&row));
    }
    if header.offset.saturating_add(header.length) > row.size {
        return Err(RecordingError::PastEnd {
            offset: header.offset,
            length: header.length,
            size: row.size,
        }
        .into());
    }
    let held = state.store.staging_bytes(&ctx.device_id).await?;
    if held.saturating_add(header.length) > media.max_staging_bytes_per_device {
        return Err(refused(
            state,
            RecordingError::StagingQuota {
                held,
                length: header.length,
                max: media.max_staging_bytes_per_device,
            },
        ));
    }
    if let Some(row) = collapse(state, &row).await? {
        return Ok(stored_reply(&row));
    }
    let mut slot = state.media.acquire(row.id).await;
    let start = slot
        .offset(row.bytes_received)
        .await
        .map_err(RecordingError::from)?;
    if header.offset != start {
        return Err(RecordingError::OffsetMismatch {
            expected: start,
            got: header.offset,
        }
        .into());
    }
    // Refused before a byte is read while the chunk would eat into the reserve.
    if let Err(no_room) = state.storage.room_for(Folder::Media, header.length) {
        tracing::warn!(recording = %row.id, error = %no_room, "chunk refused: the media folder is full");
        return Err(RecordingError::StorageFull { offset: start }.into());
    }
    let received = slot
        .receive(
            recv,
            header.length,
            &state.shutdown,
            state.config.media.pace(),
            &state.recording_metrics.bytes_streamed,
        )
        .await;
    let offset = match &received {
        Ok(Received::Complete { offset } | Received::Stopped { offset, .. }) => *offset,
        Err(MediaError::StorageFull { offset }) => *offset,
        Err(_) => start,
    };
    if offset > start {
        durable::failpoint::crash_point("upload.chunk_fsynced");
        state
            .recording_metrics
            .bytes_received
            .inc_by(offset - start);
        state.store.set_recording_progress(row.id, offset).await?;
        durable::failpoint::crash_point("upload.offset_stored");
    }
    match received.map_err(RecordingError::from)? {
        Received::Complete { offset } if offset == row.size => {
            let row = complete(state, &mut slot, &row).await?;
            Ok(stored_reply(&row))
        }
        Received::Stopped {
            why: Stop::Cancelled,
            offset,
        } if state.shutdown.is_cancelled() => Err(RecordingError::ShuttingDown { offset }.into()),
        Received::Stopped {
            why: Stop::Stalled,
            offset,
        } => Err(refused(
            state,
            RecordingError::Stalled {
                offset,
                min: media.min_upload_bytes_per_sec,
                period_secs: media.stall_timeout_secs,
            },
        )),
        Received::Complete { offset } | Received::Stopped { offset, .. } => {
            Ok(ResponseBody::UploadOffset(UploadOffset {
                recording_id: row.id,
                offset,
                stored: false,
            }))
        }
    }
}

/// A refusal by one of the upload bounds, counted by reason on `/metrics`.
fn refused(state: &GatewayState, e: RecordingError) -> HandlerError {
    let reason = match &e {
        RecordingError::Stalled { .. } => "stalled",
        RecordingError::Busy { .. } => "busy",
        RecordingError::TooManyUploads { .. } => "too_many_uploads",
        RecordingError::TooManyPending { .. } => "too_many_pending",
        RecordingError::StagingQuota { .. } => "staging_quota",
        _ => "other",
    };
    state
        .recording_metrics
        .upload_refusals
        .with_label_values(&[reason])
        .inc();
    e.into()
}

/// The recording, if this device announced it.
async fn own_recording(
    state: &GatewayState,
    ctx: &ConnectionContext,
    id: Uuid,
) -> Result<RecordingRow, HandlerError> {
    match state.store.recording(id).await? {
        Some(row) if row.device_id == ctx.device_id => Ok(row),
        _ => Err(RecordingError::Unknown(id).into()),
    }
}

/// Where an upload stands. Finishes it when every byte is already held (the gateway
/// stopped after the last chunk's fsync) or the content is already in the media store
/// (it stopped before the commit).
async fn position(state: &GatewayState, row: RecordingRow) -> Result<Position, HandlerError> {
    if row.is_stored() {
        return Ok(Position::Stored(Box::new(row)));
    }
    if let Some(stored) = collapse(state, &row).await? {
        return Ok(Position::Stored(Box::new(stored)));
    }
    let mut slot = state.media.acquire(row.id).await;
    let offset = slot
        .offset(row.bytes_received)
        .await
        .map_err(RecordingError::from)?;
    if offset == row.size {
        return Ok(Position::Stored(Box::new(
            complete(state, &mut slot, &row).await?,
        )));
    }
    Ok(Position::Held(offset))
}

/// If the media store already holds this content, commits the recording as stored now.
async fn collapse(
    state: &GatewayState,
    row: &RecordingRow,
) -> Result<Option<RecordingRow>, HandlerError> {
    let Some(key) = state
        .media
        .holds(&row.sha256, row.size)
        .await
        .map_err(RecordingError::from)?
    else {
        return Ok(None);
    };
    tracing::info!(recording = %row.id, %key, "content already held: committing it as stored");
    commit(state, row, &key).await.map(Some)
}

/// Verifies and publishes a complete staging file, then commits the row.
async fn complete(
    state: &GatewayState,
    slot: &mut UploadSlot,
    row: &RecordingRow,
) -> Result<RecordingRow, HandlerError> {
    match state.media.publish(slot, row.sha256, row.size).await {
        Ok(published) => {
            state
                .recording_metrics
                .read_back_seconds
                .observe(published.read_back.as_secs_f64());
            durable::failpoint::crash_point("publish.folder_synced");
            let stored = commit(state, row, &published.key).await?;
            durable::failpoint::crash_point("publish.row_committed");
            Ok(stored)
        }
        Err(MediaError::HashMismatch { expected, actual }) => {
            state.recording_metrics.hash_mismatches.inc();
            state.store.set_recording_progress(row.id, 0).await?;
            tracing::warn!(recording = %row.id, %expected, %actual, "hash mismatch: upload dropped");
            Err(RecordingError::HashMismatch { expected, actual }.into())
        }
        Err(e @ MediaError::StagedDiffers { .. }) => {
            // The bytes arrived right (their running hash matched) but the disk does
            // not hold them: nothing is published, the device sends them again.
            state.recording_metrics.staged_damaged.inc();
            state.store.set_recording_progress(row.id, 0).await?;
            tracing::error!(recording = %row.id, error = %e, "staged copy damaged on disk: dropped, not published");
            Err(RecordingError::Media(e).into())
        }
        // Every byte is durable in staging; only the store is out of room.
        Err(MediaError::StorageFull { .. }) => {
            Err(RecordingError::StorageFull { offset: row.size }.into())
        }
        Err(e) => Err(RecordingError::from(e).into()),
    }
}

async fn commit(
    state: &GatewayState,
    row: &RecordingRow,
    key: &str,
) -> Result<RecordingRow, HandlerError> {
    let now = state.clock.now();
    let stored = state
        .store
        .mark_recording_stored(row.id, key, now, &state.config.policy.deadline)
        .await?
        .ok_or(HandlerError::Internal(
            "a tracked recording vanished from the store",
        ))?;
    if stored.stored_at == Some(now) {
        state
            .recording_metrics
            .stored
            .with_label_values(&[stored.state.as_str()])
            .inc();
        tracing::info!(recording = %row.id, state = stored.state.as_str(), "recording stored");
    }
    Ok(stored)
}

fn stored_reply(row: &RecordingRow) -> ResponseBody {
    ResponseBody::RecordingStored(RecordingStored {
        recording_id: row.id,
        sha256: row.sha256,
        stored_at: row.stored_at.unwrap_or_default(),
    })
}

impl From<RecordingError> for HandlerError {
    fn from(e: RecordingError) -> Self {
        HandlerError::Recording(e)
    }
}
