//! Recordings (audio/video) and their upload (DOMAIN R2).
//!
//! A recording is announced first, so the gateway tracks its deadline before a byte
//! arrives; then it is uploaded in chunks that resume from the gateway's offset. The
//! device may delete its copy only after [`RecordingStored`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Millis;
use crate::hash::Sha256Hash;
use crate::limits::{InvalidField, Limits};

/// What kind of media a recording holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Sound only.
    Audio,
    /// Video (with or without sound).
    Video,
}

/// Tells the gateway a recording exists and when it was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingAnnouncement {
    /// Made on the device.
    pub recording_id: Uuid,
    /// SHA-256 of the whole file.
    pub sha256: Sha256Hash,
    /// Size in bytes.
    pub size: u64,
    /// Audio or video.
    pub media: MediaKind,
    /// When recording started, on the device's clock.
    pub started_at: Millis,
    /// When recording ended, on the device's clock; the deadline runs from here.
    pub ended_at: Millis,
    /// The case it documents, if known.
    pub case_number: Option<String>,
    /// The certificate number of the officer who made it, if known.
    pub officer: Option<String>,
}

impl RecordingAnnouncement {
    /// Checks the size limit and the fields.
    pub fn validate(&self, limits: &Limits) -> Result<(), InvalidField> {
        if self.size > limits.max_recording_bytes {
            return Err(InvalidField::new(
                "size",
                format!(
                    "{} bytes; at most {} are allowed",
                    self.size, limits.max_recording_bytes
                ),
            ));
        }
        if self.ended_at < self.started_at {
            return Err(InvalidField::new("ended_at", "ends before it starts"));
        }
        if let Some(c) = &self.case_number {
            limits.check_optional_short("case_number", c)?;
        }
        if let Some(o) = &self.officer {
            limits.check_optional_short("officer", o)?;
        }
        Ok(())
    }
}

/// The gateway tracks the announced recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingTracked {
    /// The recording.
    pub recording_id: Uuid,
    /// Its upload deadline on gateway time.
    pub deadline: Millis,
    /// How many bytes the gateway already holds (resume from here).
    pub offset: u64,
    /// True when the gateway already holds it durably: the device may delete its copy.
    pub stored: bool,
}

/// Asks how many bytes of a recording the gateway holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadOffsetQuery {
    /// The recording.
    pub recording_id: Uuid,
}

/// How many bytes of a recording the gateway holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadOffset {
    /// The recording.
    pub recording_id: Uuid,
    /// Bytes held; the next chunk must start here.
    pub offset: u64,
    /// True when the recording is stored durably.
    pub stored: bool,
}

/// Precedes `length` raw bytes of a recording on the same stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadHeader {
    /// The recording.
    pub recording_id: Uuid,
    /// Where these bytes start in the file; must equal the gateway's offset.
    pub offset: u64,
    /// How many raw bytes follow this frame.
    pub length: u64,
}

/// The recording is complete, verified and durable: the device may delete its copy
/// (and must, DOMAIN R2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingStored {
    /// The recording.
    pub recording_id: Uuid,
    /// Its verified SHA-256.
    pub sha256: Sha256Hash,
    /// When it became durable, on gateway time.
    pub stored_at: Millis,
}
