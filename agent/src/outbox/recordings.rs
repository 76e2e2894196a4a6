//! Recordings registered on the device and their upload state (DOMAIN R2). The row
//! is the agent's promise: its file is deleted only once the row says `stored`, and
//! that happens only on the gateway's word.

use std::path::PathBuf;

use protocol::message::{MediaKind, RecordingAnnouncement};
use protocol::{Millis, Sha256Hash};
use uuid::Uuid;

use super::{Outbox, StoreError, hash_column};

/// Hours from a recording's end to its upload deadline, by default (DOMAIN R2). The
/// gateway's policy decides; this only orders uploads before the first announcement.
pub const DEFAULT_DEADLINE_HOURS: i64 = 24;

/// Where a recording is in its life on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Being moved into the media folder.
    Adding,
    /// Waiting for upload (announced or not).
    Pending,
    /// The gateway holds it durably; the local copy is deleted.
    Stored,
    /// The gateway refused it (for example the bytes no longer match the hash); the
    /// local copy is kept.
    Refused,
}

impl RecordingState {
    fn as_str(self) -> &'static str {
        match self {
            RecordingState::Adding => "adding",
            RecordingState::Pending => "pending",
            RecordingState::Stored => "stored",
            RecordingState::Refused => "refused",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "adding" => RecordingState::Adding,
            "pending" => RecordingState::Pending,
            "stored" => RecordingState::Stored,
            "refused" => RecordingState::Refused,
            other => return Err(StoreError::corrupt("recording state", other)),
        })
    }
}

/// A recording the agent knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRecording {
    /// Its id (made on the device).
    pub recording_id: Uuid,
    /// The file in the media folder.
    pub path: PathBuf,
    /// Where the file came from, while it is being added.
    pub source: Option<PathBuf>,
    /// SHA-256 of the whole file, computed when it was added.
    pub sha256: Sha256Hash,
    /// Size in bytes.
    pub size: u64,
    /// Audio or video.
    pub media: MediaKind,
    /// Recording start (device clock).
    pub started_at: Millis,
    /// Recording end (device clock): the deadline runs from here.
    pub ended_at: Millis,
    /// The case, if known.
    pub case_number: Option<String>,
    /// The officer's certificate number, if known.
    pub officer: Option<String>,
    /// Its state.
    pub state: RecordingState,
    /// True once the gateway tracks it.
    pub announced: bool,
    /// The deadline the gateway computed (gateway time), once announced.
    pub gateway_deadline: Option<Millis>,
    /// The last byte offset the gateway reported holding.
    pub gateway_offset: u64,
    /// When the gateway stored it (gateway time).
    pub stored_at: Option<Millis>,
    /// Why the gateway refused it.
    pub reason: Option<String>,
}

impl LocalRecording {
    /// The announcement for the gateway.
    pub fn announcement(&self) -> RecordingAnnouncement {
        RecordingAnnouncement {
            recording_id: self.recording_id,
            sha256: self.sha256,
            size: self.size,
            media: self.media,
            started_at: self.started_at,
            ended_at: self.ended_at,
            case_number: self.case_number.clone(),
            officer: self.officer.clone(),
        }
    }
}

fn media_word(m: MediaKind) -> &'static str {
    match m {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

type Row = (
    String,
    String,
    Option<String>,
    Vec<u8>,
    i64,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
);

const SELECT: &str = "SELECT recording_id, path, source, sha256, size, media, started_at, ended_at,
        case_number, officer, state, announced, gateway_deadline, gateway_offset, stored_at,
        reason FROM recordings";

fn decode(row: Row) -> Result<LocalRecording, StoreError> {
    let (id, path, source, sha, size, media, started, ended, case_number, officer, state) = (
        row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10,
    );
    Ok(LocalRecording {
        recording_id: Uuid::parse_str(&id).map_err(|e| StoreError::corrupt("recording id", e))?,
        path: PathBuf::from(path),
        source: source.map(PathBuf::from),
        sha256: hash_column("recording hash", &sha)?,
        size: size.max(0) as u64,
        media: match media.as_str() {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            other => return Err(StoreError::corrupt("recording media", other)),
        },
        started_at: started,
        ended_at: ended,
        case_number,
        officer,
        state: RecordingState::parse(&state)?,
        announced: row.11 != 0,
        gateway_deadline: row.12,
        gateway_offset: row.13.max(0) as u64,
        stored_at: row.14,
        reason: row.15,
    })
}

impl Outbox {
    /// Registers a recording in state `adding` (its file not yet in the media folder).
    pub async fn insert_recording(
        &self,
        r: &LocalRecording,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO recordings (recording_id, path, source, sha256, size, media, started_at,
                 ended_at, case_number, officer, added_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(r.recording_id.to_string())
        .bind(r.path.to_string_lossy().into_owned())
        .bind(r.source.as_ref().map(|p| p.to_string_lossy().into_owned()))
        .bind(r.sha256.0.to_vec())
        .bind(i64::try_from(r.size).unwrap_or(i64::MAX))
        .bind(media_word(r.media))
        .bind(r.started_at)
        .bind(r.ended_at)
        .bind(&r.case_number)
        .bind(&r.officer)
        .bind(now)
        .bind(r.state.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One recording by id.
    pub async fn recording(&self, id: Uuid) -> Result<Option<LocalRecording>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE recording_id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(decode).transpose()
    }

    /// Recordings in a state, oldest end first.
    pub async fn recordings_in(
        &self,
        state: RecordingState,
    ) -> Result<Vec<LocalRecording>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "{SELECT} WHERE state = $1 ORDER BY ended_at, recording_id"
        ))
        .bind(state.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(decode).collect()
    }

    async fn exec(
        &self,
        sql: &str,
        id: Uuid,
        a: Option<i64>,
        b: Option<i64>,
        text: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut q = sqlx::query(sql).bind(id.to_string());
        if let Some(a) = a {
            q = q.bind(a);
        }
        if let Some(b) = b {
            q = q.bind(b);
        }
        if let Some(t) = text {
            q = q.bind(t);
        }
        q.execute(self.pool()).await?;
        Ok(())
    }

    /// The file is in the media folder and hashed: the recording waits for upload.
    pub async fn recording_added(
        &self,
        id: Uuid,
        sha256: Sha256Hash,
        size: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE recordings SET state = 'pending', source = NULL, sha256 = $2, size = $3
             WHERE recording_id = $1 AND state = 'adding'",
        )
        .bind(id.to_string())
        .bind(sha256.0.to_vec())
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets a recording whose file could not be added (nothing was taken).
    pub async fn forget_adding_recording(&self, id: Uuid) -> Result<(), StoreError> {
        self.exec(
            "DELETE FROM recordings WHERE recording_id = $1 AND state = 'adding'",
            id,
            None,
            None,
            None,
        )
        .await
    }

    /// The gateway tracks the recording.
    pub async fn recording_announced(
        &self,
        id: Uuid,
        deadline: Millis,
        offset: u64,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE recordings SET announced = 1, gateway_deadline = $2, gateway_offset = $3
             WHERE recording_id = $1",
            id,
            Some(deadline),
            Some(i64::try_from(offset).unwrap_or(i64::MAX)),
            None,
        )
        .await
    }

    /// The gateway reports holding `offset` bytes.
    pub async fn recording_offset(&self, id: Uuid, offset: u64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE recordings SET gateway_offset = $2 WHERE recording_id = $1",
            id,
            Some(i64::try_from(offset).unwrap_or(i64::MAX)),
            None,
            None,
        )
        .await
    }

    /// The gateway said stored: commit that first, then the caller deletes the file.
    pub async fn recording_stored(&self, id: Uuid, stored_at: Millis) -> Result<(), StoreError> {
        self.exec(
            "UPDATE recordings SET state = 'stored', stored_at = $2
             WHERE recording_id = $1 AND state IN ('pending', 'refused')",
            id,
            Some(stored_at),
            None,
            None,
        )
        .await
    }

    /// Registrations left `adding` since before `cutoff` (device time): a crash cut
    /// them. Younger ones may still be in the hands of the process registering them.
    pub async fn adding_recordings_before(
        &self,
        cutoff: Millis,
    ) -> Result<Vec<LocalRecording>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "{SELECT} WHERE state = 'adding' AND added_at < $1 ORDER BY ended_at"
        ))
        .bind(cutoff)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(decode).collect()
    }

    /// Stored recordings whose local copy may still exist (a crash came between
    /// the commit of "stored" and the deletion).
    pub async fn stored_with_copy(&self) -> Result<Vec<LocalRecording>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "{SELECT} WHERE state = 'stored' AND copy_deleted = 0 ORDER BY ended_at"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(decode).collect()
    }

    /// The local copy of a stored recording is gone.
    pub async fn recording_copy_deleted(&self, id: Uuid) -> Result<(), StoreError> {
        self.exec(
            "UPDATE recordings SET copy_deleted = 1 WHERE recording_id = $1 AND state = 'stored'",
            id,
            None,
            None,
            None,
        )
        .await
    }

    /// The gateway refused the recording: keep the file, say why.
    pub async fn recording_refused(&self, id: Uuid, reason: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE recordings SET state = 'refused', reason = $2
             WHERE recording_id = $1 AND state = 'pending'",
            id,
            None,
            None,
            Some(reason),
        )
        .await
    }

    /// Recordings the gateway refused (their copies kept).
    pub async fn refused_recording_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM recordings WHERE state = 'refused'")
            .fetch_one(self.pool())
            .await?;
        Ok(n as u64)
    }

    /// Pending recordings and the earliest device-time deadline among them.
    pub async fn pending_recordings_summary(&self) -> Result<(u64, Option<Millis>), StoreError> {
        let (n, first): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*), min(ended_at) FROM recordings WHERE state IN ('adding', 'pending')",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((
            n as u64,
            first.map(|t| t.saturating_add(DEFAULT_DEADLINE_HOURS * 3_600_000)),
        ))
    }
}
