//! Recordings in the store (DOMAIN R2): the row the gateway keeps from the moment a
//! recording is announced, its upload progress, the moment it became durable, and every
//! state it was ever in.
//!
//! The arithmetic (deadline, state at a time) is `protocol::deadline`; this module only
//! reads and writes. A state changes with a compare-and-set (`WHERE state = old`), so
//! the deadline watcher and an upload finishing at the same moment never record a
//! transition twice or from a state the row was no longer in, on either backend and
//! across several gateways.

mod flags;
mod holdings;
mod report;

use protocol::clock::{ClockPolicy, on_gateway_time};
use protocol::deadline::{ClockSkew, DeadlinePolicy, UploadState, upload_deadline, upload_state};
use protocol::message::{MediaKind, RecordingAnnouncement};
use protocol::{DeviceId, Millis, Sha256Hash};
use uuid::Uuid;

use super::tx::{Db, TxConn};
use super::{Store, StoreError};

pub use flags::{
    CLOCK_IMPLAUSIBLE, CaseFlag, CaseFlagKind, DeviceFlag, FullProcessRecord, NewCaseFlag, SILENT,
    SilentDevice,
};
pub use report::ReportRecording;

/// A recording as the gateway tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingRow {
    /// Made on the device.
    pub id: Uuid,
    /// The device that announced it (from its certificate).
    pub device_id: DeviceId,
    /// The certificate number of the officer who made it, as announced.
    pub officer: Option<String>,
    /// The case it documents, as announced.
    pub case_number: Option<String>,
    /// Audio or video.
    pub media: MediaKind,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the whole file, as announced; verified before it is stored.
    pub sha256: Sha256Hash,
    /// Start, on the device's clock.
    pub started_at_device: Millis,
    /// End, on the device's clock.
    pub ended_at_device: Millis,
    /// Gateway − device clock, measured at the hello before the announcement.
    pub clock_skew_ms: Millis,
    /// Start, on gateway time.
    pub started_at: Millis,
    /// End, on gateway time.
    pub ended_at: Millis,
    /// Upload deadline, on gateway time.
    pub deadline: Millis,
    /// When the gateway first heard of it.
    pub announced_at: Millis,
    /// Bytes of it held durably (fsync'd) by the gateway that last received some.
    pub bytes_received: u64,
    /// The state last recorded (the deadline watcher moves it as time passes).
    pub state: UploadState,
    /// When `state` was recorded.
    pub state_changed_at: Millis,
    /// When it became durable in the media store, on gateway time.
    pub stored_at: Option<Millis>,
    /// Where the media store holds it.
    pub storage_key: Option<String>,
    /// The device's clock could not be trusted for its times (a time after the
    /// announcement, or a skew beyond the bound): its end and deadline count from the
    /// announcement (DOMAIN R2).
    pub clock_implausible: bool,
}

impl RecordingRow {
    /// The row for a fresh announcement from `device`, whose clock is `skew` behind the
    /// gateway's, heard at gateway time `now`: times corrected to gateway time, the
    /// deadline from the corrected end, the state at `now`. An end the gateway cannot
    /// trust (see `protocol::clock`) is `now`: nobody gains time by a wrong clock.
    pub fn announced(
        announcement: &RecordingAnnouncement,
        device_id: &DeviceId,
        skew: ClockSkew,
        now: Millis,
        policy: &DeadlinePolicy,
        clock: &ClockPolicy,
    ) -> Self {
        let end = on_gateway_time(announcement.ended_at, skew, now, clock);
        let duration = announcement
            .ended_at
            .saturating_sub(announcement.started_at)
            .max(0);
        let (started_at, ended_at) = if end.implausible {
            (end.at.saturating_sub(duration), end.at)
        } else {
            (skew.to_gateway_time(announcement.started_at), end.at)
        };
        let deadline = upload_deadline(ended_at, ClockSkew::ZERO, policy);
        RecordingRow {
            id: announcement.recording_id,
            device_id: device_id.clone(),
            officer: announcement.officer.clone(),
            case_number: announcement.case_number.clone(),
            media: announcement.media,
            size: announcement.size,
            sha256: announcement.sha256,
            started_at_device: announcement.started_at,
            ended_at_device: announcement.ended_at,
            clock_skew_ms: skew.as_millis(),
            started_at,
            ended_at,
            deadline,
            announced_at: now,
            bytes_received: 0,
            state: upload_state(deadline, None, now, policy),
            state_changed_at: now,
            stored_at: None,
            storage_key: None,
            clock_implausible: end.implausible,
        }
    }

    /// True once the gateway holds it durably.
    pub fn is_stored(&self) -> bool {
        self.stored_at.is_some()
    }
}

/// What an announcement did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announced {
    /// The recording is tracked from now on.
    New(RecordingRow),
    /// It was announced before with the same device, size and hash (a retry).
    Existing(RecordingRow),
    /// The id is taken by a recording of another device, size or hash; nothing changed.
    Conflict(RecordingRow),
}

/// One entry of a recording's state history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The recording.
    pub recording_id: Uuid,
    /// The state before (`None` for the announcement).
    pub from: Option<UploadState>,
    /// The state after.
    pub to: UploadState,
    /// Gateway time of the change.
    pub at: Millis,
    /// Why: `announced`, `deadline` (time passed) or `stored`.
    pub reason: String,
}

/// Reasons written into the state history.
pub mod reasons {
    /// The recording was announced.
    pub const ANNOUNCED: &str = "announced";
    /// Gateway time passed a boundary (due soon, deadline).
    pub const DEADLINE: &str = "deadline";
    /// The recording became durable.
    pub const STORED: &str = "stored";
}

const COLUMNS: &str = "id, device_id, officer, case_number, media, size, sha256, \
     started_at_device, ended_at_device, clock_skew_ms, started_at, ended_at, deadline, \
     announced_at, bytes_received, state, state_changed_at, stored_at, storage_key, \
     clock_implausible";

#[derive(sqlx::FromRow)]
struct RawRecording {
    id: String,
    device_id: String,
    officer: Option<String>,
    case_number: Option<String>,
    media: String,
    size: i64,
    sha256: String,
    started_at_device: i64,
    ended_at_device: i64,
    clock_skew_ms: i64,
    started_at: i64,
    ended_at: i64,
    deadline: i64,
    announced_at: i64,
    bytes_received: i64,
    state: String,
    state_changed_at: i64,
    stored_at: Option<i64>,
    storage_key: Option<String>,
    clock_implausible: bool,
}

/// The stable spelling of a media kind (the serde spelling).
pub fn media_word(media: MediaKind) -> &'static str {
    match media {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

fn parse_media(word: &str) -> Result<MediaKind, StoreError> {
    match word {
        "audio" => Ok(MediaKind::Audio),
        "video" => Ok(MediaKind::Video),
        other => Err(StoreError::corrupt("media kind", format!("{other:?}"))),
    }
}

/// Parses a state word written by [`UploadState::as_str`].
pub fn parse_state(word: &str) -> Result<UploadState, StoreError> {
    UploadState::ALL
        .iter()
        .copied()
        .find(|s| s.as_str() == word)
        .ok_or_else(|| StoreError::corrupt("upload state", format!("{word:?}")))
}

fn to_u64(what: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|e| StoreError::corrupt(what, e))
}

/// A byte count as the database stores it (sizes are limited far below `i64::MAX`).
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl TryFrom<RawRecording> for RecordingRow {
    type Error = StoreError;
    fn try_from(r: RawRecording) -> Result<Self, StoreError> {
        Ok(RecordingRow {
            id: Uuid::parse_str(&r.id).map_err(|e| StoreError::corrupt("recording id", e))?,
            device_id: DeviceId::new(r.device_id)
                .map_err(|e| StoreError::corrupt("device id", e))?,
            officer: r.officer,
            case_number: r.case_number,
            media: parse_media(&r.media)?,
            size: to_u64("recording size", r.size)?,
            sha256: Sha256Hash::from_hex(&r.sha256)
                .map_err(|e| StoreError::corrupt("recording sha256", e))?,
            started_at_device: r.started_at_device,
            ended_at_device: r.ended_at_device,
            clock_skew_ms: r.clock_skew_ms,
            started_at: r.started_at,
            ended_at: r.ended_at,
            deadline: r.deadline,
            announced_at: r.announced_at,
            bytes_received: to_u64("bytes received", r.bytes_received)?,
            state: parse_state(&r.state)?,
            state_changed_at: r.state_changed_at,
            stored_at: r.stored_at,
            storage_key: r.storage_key,
            clock_implausible: r.clock_implausible,
        })
    }
}

/// A write transaction for recordings. Recording writes are not registry changes and
/// are not audited, so they do not take the audit head; on SQLite they still take the
/// write lock up front (`BEGIN IMMEDIATE`) so that a read-then-write never deadlocks.
pub(crate) struct RecordingTx {
    pub(crate) conn: TxConn,
}

impl RecordingTx {
    pub(crate) async fn begin(db: &Db) -> Result<Self, StoreError> {
        let conn = match db {
            Db::Sqlite(pool) => TxConn::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
        };
        Ok(Self { conn })
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self.conn {
            TxConn::Sqlite(t) => t.commit().await?,
            TxConn::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    async fn recording(&mut self, id: Uuid) -> Result<Option<RecordingRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE id = $1");
        let raw: Option<RawRecording> = on_tx!(self, c => {
            sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(&mut *c).await?
        });
        raw.map(RecordingRow::try_from).transpose()
    }

    async fn append_change(
        &mut self,
        id: Uuid,
        from: Option<UploadState>,
        to: UploadState,
        at: Millis,
        reason: &str,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO recording_state_changes (recording_id, from_state, to_state, at, reason) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id.to_string())
            .bind(from.map(UploadState::as_str))
            .bind(to.as_str())
            .bind(at)
            .bind(reason)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Moves an unstored recording from `from` to `to` if it is still in `from`;
    /// records the change. Returns whether it moved.
    async fn move_state(
        &mut self,
        id: Uuid,
        from: UploadState,
        to: UploadState,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let moved = on_tx!(self, c => {
            sqlx::query(
                "UPDATE recordings SET state = $1, state_changed_at = $2 \
                 WHERE id = $3 AND state = $4 AND stored_at IS NULL",
            )
            .bind(to.as_str())
            .bind(now)
            .bind(id.to_string())
            .bind(from.as_str())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if moved == 1 {
            self.append_change(id, Some(from), to, now, reasons::DEADLINE)
                .await?;
        }
        Ok(moved == 1)
    }
}

impl Store {
    /// Tracks an announced recording (from the moment it is announced, its deadline is
    /// visible), or recognises a retry of an earlier announcement.
    ///
    /// A retry must come from the same device with the same size and hash; anything
    /// else is [`Announced::Conflict`] and changes nothing.
    pub async fn announce_recording(&self, row: &RecordingRow) -> Result<Announced, StoreError> {
        let mut tx = RecordingTx::begin(self.db()).await?;
        let inserted = on_tx!(tx, c => {
            sqlx::query(&format!(
                "INSERT INTO recordings ({COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
                 ON CONFLICT (id) DO NOTHING"
            ))
            .bind(row.id.to_string())
            .bind(row.device_id.as_str())
            .bind(row.officer.as_deref())
            .bind(row.case_number.as_deref())
            .bind(media_word(row.media))
            .bind(to_i64(row.size))
            .bind(row.sha256.to_hex())
            .bind(row.started_at_device)
            .bind(row.ended_at_device)
            .bind(row.clock_skew_ms)
            .bind(row.started_at)
            .bind(row.ended_at)
            .bind(row.deadline)
            .bind(row.announced_at)
            .bind(to_i64(row.bytes_received))
            .bind(row.state.as_str())
            .bind(row.state_changed_at)
            .bind(row.stored_at)
            .bind(row.storage_key.as_deref())
            .bind(row.clock_implausible)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            tx.append_change(
                row.id,
                None,
                row.state,
                row.announced_at,
                reasons::ANNOUNCED,
            )
            .await?;
            tx.commit().await?;
            return Ok(Announced::New(row.clone()));
        }
        let existing = tx
            .recording(row.id)
            .await?
            .ok_or_else(|| StoreError::corrupt("recording", "vanished during announcement"))?;
        tx.commit().await?;
        let same = existing.device_id == row.device_id
            && existing.size == row.size
            && existing.sha256 == row.sha256;
        Ok(if same {
            Announced::Existing(existing)
        } else {
            Announced::Conflict(existing)
        })
    }

    /// The recording with this id, if it was announced.
    pub async fn recording(&self, id: Uuid) -> Result<Option<RecordingRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE id = $1");
        let raw: Option<RawRecording> = on_pool!(self.db(), p => {
            sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(p).await?
        });
        raw.map(RecordingRow::try_from).transpose()
    }

    /// Every recording of one device, by deadline.
    pub async fn recordings_of_device(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<RecordingRow>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM recordings WHERE device_id = $1 ORDER BY deadline, id");
        let raw: Vec<RawRecording> = on_pool!(self.db(), p => {
            sqlx::query_as(&sql).bind(device.as_str()).fetch_all(p).await?
        });
        raw.into_iter().map(RecordingRow::try_from).collect()
    }

    /// Every recording of one case, by start time (for the case view, DOMAIN R3).
    pub async fn recordings_of_case(
        &self,
        case_number: &str,
    ) -> Result<Vec<RecordingRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings WHERE case_number = $1 ORDER BY started_at, id"
        );
        let raw: Vec<RawRecording> = on_pool!(self.db(), p => {
            sqlx::query_as(&sql).bind(case_number).fetch_all(p).await?
        });
        raw.into_iter().map(RecordingRow::try_from).collect()
    }

    /// Records upload progress: `bytes` are durable (fsync'd) in this gateway's staging.
    /// The next upload resumes from at most this far, so it must only be called after
    /// the bytes are durable.
    pub async fn set_recording_progress(&self, id: Uuid, bytes: u64) -> Result<(), StoreError> {
        on_pool!(self.db(), p => {
            sqlx::query(
                "UPDATE recordings SET bytes_received = $1 WHERE id = $2 AND stored_at IS NULL",
            )
            .bind(to_i64(bytes))
            .bind(id.to_string())
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Commits that a recording is durable in the media store under `storage_key` at
    /// gateway time `now`: its final state (on time or late) is recorded. Idempotent:
    /// a recording stored earlier is returned unchanged. `None` if it was never
    /// announced.
    pub async fn mark_recording_stored(
        &self,
        id: Uuid,
        storage_key: &str,
        now: Millis,
        policy: &DeadlinePolicy,
    ) -> Result<Option<RecordingRow>, StoreError> {
        let mut tx = RecordingTx::begin(self.db()).await?;
        let Some(before) = tx.recording(id).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        if before.is_stored() {
            tx.commit().await?;
            return Ok(Some(before));
        }
        let state = upload_state(before.deadline, Some(now), now, policy);
        // Inside a write transaction (SQLite's write lock, or PostgreSQL's row lock
        // taken by this UPDATE) the state read above cannot have moved unnoticed: the
        // compare-and-set fails instead, and the caller retries.
        let updated = on_tx!(tx, c => {
            sqlx::query(
                "UPDATE recordings SET stored_at = $1, storage_key = $2, bytes_received = size, \
                 state = $3, state_changed_at = $1 \
                 WHERE id = $4 AND stored_at IS NULL AND state = $5",
            )
            .bind(now)
            .bind(storage_key)
            .bind(state.as_str())
            .bind(id.to_string())
            .bind(before.state.as_str())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if updated != 1 {
            drop(tx);
            // Another writer moved the row between our read and write; read again.
            return Box::pin(self.mark_recording_stored(id, storage_key, now, policy)).await;
        }
        tx.append_change(id, Some(before.state), state, now, reasons::STORED)
            .await?;
        tx.commit().await?;
        Ok(Some(RecordingRow {
            bytes_received: before.size,
            state,
            state_changed_at: now,
            stored_at: Some(now),
            storage_key: Some(storage_key.to_owned()),
            ..before
        }))
    }

    /// Moves every unstored recording whose state `now` changes (pending → due soon →
    /// overdue) and records each change. Returns the changes made, in deadline order.
    pub async fn advance_recording_states(
        &self,
        now: Millis,
        policy: &DeadlinePolicy,
    ) -> Result<Vec<StateChange>, StoreError> {
        // Only recordings within the due-soon window of their deadline can change.
        let horizon = now.saturating_add(Millis::from(policy.due_soon_hours) * 3_600_000);
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings \
             WHERE stored_at IS NULL AND state <> 'overdue' AND deadline <= $1 \
             ORDER BY deadline, id"
        );
        let raw: Vec<RawRecording> = on_pool!(self.db(), p => {
            sqlx::query_as(&sql).bind(horizon).fetch_all(p).await?
        });
        let mut candidates = Vec::with_capacity(raw.len());
        for r in raw {
            let row = RecordingRow::try_from(r)?;
            let to = upload_state(row.deadline, None, now, policy);
            if to != row.state && to > row.state {
                candidates.push((row.id, row.state, to));
            }
        }
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = RecordingTx::begin(self.db()).await?;
        let mut changes = Vec::with_capacity(candidates.len());
        for (id, from, to) in candidates {
            if tx.move_state(id, from, to, now).await? {
                changes.push(StateChange {
                    recording_id: id,
                    from: Some(from),
                    to,
                    at: now,
                    reason: reasons::DEADLINE.to_owned(),
                });
            }
        }
        tx.commit().await?;
        Ok(changes)
    }

    /// How many recordings are overdue at `now`: not stored, deadline passed.
    pub async fn count_overdue_recordings(&self, now: Millis) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self.db(), p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM recordings WHERE stored_at IS NULL AND deadline < $1",
            )
            .bind(now)
            .fetch_one(p)
            .await?
        });
        to_u64("overdue count", n)
    }

    /// The state history of one recording, oldest first.
    pub async fn recording_state_changes(&self, id: Uuid) -> Result<Vec<StateChange>, StoreError> {
        let rows: Vec<(Option<String>, String, i64, String)> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT from_state, to_state, at, reason FROM recording_state_changes \
                 WHERE recording_id = $1 ORDER BY seq",
            )
            .bind(id.to_string())
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(from, to, at, reason)| {
                Ok(StateChange {
                    recording_id: id,
                    from: from.as_deref().map(parse_state).transpose()?,
                    to: parse_state(&to)?,
                    at,
                    reason,
                })
            })
            .collect()
    }

    /// A stored recording of the same content (hash and size), if any: content is
    /// stored once, so a second recording of identical bytes points at the same key.
    pub async fn stored_key_for_content(
        &self,
        sha256: &Sha256Hash,
        size: u64,
    ) -> Result<Option<String>, StoreError> {
        let key: Option<Option<String>> = on_pool!(self.db(), p => {
            sqlx::query_scalar(
                "SELECT storage_key FROM recordings \
                 WHERE sha256 = $1 AND size = $2 AND storage_key IS NOT NULL LIMIT 1",
            )
            .bind(sha256.to_hex())
            .bind(to_i64(size))
            .fetch_optional(p)
            .await?
        });
        Ok(key.flatten())
    }
}
