//! Every message of the device protocol (ALPN `fieldsync/1`).
//!
//! Each request is one bidirectional QUIC stream carrying one [`Request`] frame (plus,
//! for an upload, raw bytes); the reply is one [`Response`] frame. Both carry the
//! protocol version, so an unknown version gets [`DecodeError::UnsupportedVersion`]
//! instead of a confusing shape error.

mod flags;
mod hello;
mod identity;
mod recordings;
mod records;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use flags::{FLAG_CHANGES_PER_REPLY, FlagChange, FlagChanges, FlagsSince};
pub use hello::{ChainHead, DeviceRules, Hello, Welcome};
pub use identity::{
    CheckOutcome, IdentityCheck, IdentityCheckAcks, IdentityResult, IdentityVerdict, OfflineAnswer,
    PushIdentityChecks, RosterDelta, RosterEntry, RosterSince,
};
pub use recordings::{
    MediaKind, RecordingAnnouncement, RecordingStored, RecordingTracked, UploadHeader,
    UploadOffset, UploadOffsetQuery,
};
pub use records::{
    Coordinates, FieldRecord, PushRecords, RecordAck, RecordAcks, RecordContent, RecordOutcome,
    RejectReason,
};

use crate::codes::{ErrorCode, ErrorReply};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The ALPN protocol id both ends require.
pub const ALPN: &[u8] = b"fieldsync/1";

/// A request from a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The protocol version the device speaks.
    pub version: u16,
    /// What it asks.
    pub body: RequestBody,
}

/// The kinds of request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestBody {
    /// Introduce the device; answered by [`ResponseBody::Welcome`].
    Hello(Hello),
    /// Push field records; answered by [`ResponseBody::RecordAcks`].
    PushRecords(PushRecords),
    /// Check a certificate online; answered by [`ResponseBody::IdentityResult`].
    CheckIdentity(IdentityCheck),
    /// Upload checks made offline; answered by [`ResponseBody::IdentityCheckAcks`].
    PushIdentityChecks(PushIdentityChecks),
    /// Ask for roster changes; answered by [`ResponseBody::RosterDelta`].
    RosterSince(RosterSince),
    /// Announce a recording; answered by [`ResponseBody::RecordingTracked`].
    AnnounceRecording(RecordingAnnouncement),
    /// Ask for an upload's offset; answered by [`ResponseBody::UploadOffset`].
    UploadOffset(UploadOffsetQuery),
    /// Upload bytes (they follow the frame); answered by [`ResponseBody::UploadOffset`]
    /// or, when the recording is complete and durable, [`ResponseBody::RecordingStored`].
    UploadChunk(UploadHeader),
    /// Ask for the flag changes on this device's records; answered by
    /// [`ResponseBody::FlagChanges`]. A gateway older than this message answers
    /// `MalformedMessage`, which the agent takes as "no flags reported".
    FlagsSince(FlagsSince),
}

impl RequestBody {
    /// A short name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestBody::Hello(_) => "hello",
            RequestBody::PushRecords(_) => "push_records",
            RequestBody::CheckIdentity(_) => "check_identity",
            RequestBody::PushIdentityChecks(_) => "push_identity_checks",
            RequestBody::RosterSince(_) => "roster_since",
            RequestBody::AnnounceRecording(_) => "announce_recording",
            RequestBody::UploadOffset(_) => "upload_offset",
            RequestBody::UploadChunk(_) => "upload_chunk",
            RequestBody::FlagsSince(_) => "flags_since",
        }
    }
}

/// A reply from the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The protocol version the gateway speaks.
    pub version: u16,
    /// The answer.
    pub body: ResponseBody,
}

/// The kinds of reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseBody {
    /// Answer to hello.
    Welcome(Welcome),
    /// Answer to a record push.
    RecordAcks(RecordAcks),
    /// Answer to an online identity check.
    IdentityResult(IdentityResult),
    /// Answer to an upload of offline checks.
    IdentityCheckAcks(IdentityCheckAcks),
    /// Answer to a roster request.
    RosterDelta(RosterDelta),
    /// Answer to a recording announcement.
    RecordingTracked(RecordingTracked),
    /// How much of a recording the gateway holds.
    UploadOffset(UploadOffset),
    /// The recording is durable.
    RecordingStored(RecordingStored),
    /// Answer to a flags request.
    FlagChanges(FlagChanges),
    /// The request was refused.
    Error(ErrorReply),
}

impl Request {
    /// Wraps a body with this build's version.
    pub fn new(body: RequestBody) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            body,
        }
    }
}

impl Response {
    /// Wraps a body with this build's version.
    pub fn new(body: ResponseBody) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            body,
        }
    }

    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ResponseBody::Error(ErrorReply::new(code, message)))
    }
}

/// Why a frame body is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message carries a version this build does not speak.
    #[error(
        "protocol version {found} is not supported; this build speaks version {PROTOCOL_VERSION}"
    )]
    UnsupportedVersion {
        /// The version found in the message.
        found: u16,
    },
    /// The bytes are not valid CBOR of the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A valid message was followed by more bytes.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

impl DecodeError {
    /// The error code to reply with.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            DecodeError::Malformed(_) | DecodeError::TrailingBytes(_) => {
                ErrorCode::MalformedMessage
            }
        }
    }
}

/// Something that travels in a frame and carries the protocol version.
pub trait Versioned: Serialize + DeserializeOwned {
    /// The version this message claims.
    fn version(&self) -> u16;
}

impl Versioned for Request {
    fn version(&self) -> u16 {
        self.version
    }
}

impl Versioned for Response {
    fn version(&self) -> u16 {
        self.version
    }
}

/// Only the version field, to explain a message this build cannot parse.
#[derive(Deserialize)]
struct VersionProbe {
    version: u16,
}

/// Encodes a message as a CBOR body (without the length prefix).
pub fn encode_body<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    ciborium::into_writer(message, &mut out).expect("writing CBOR into a Vec cannot fail");
    out
}

/// Decodes a CBOR body into a message, rejecting trailing bytes and versions other
/// than [`PROTOCOL_VERSION`].
pub fn decode_body<T: Versioned>(body: &[u8]) -> Result<T, DecodeError> {
    match decode_exact::<T>(body) {
        Ok(message) if message.version() == PROTOCOL_VERSION => Ok(message),
        Ok(message) => Err(DecodeError::UnsupportedVersion {
            found: message.version(),
        }),
        Err(err) => match decode_exact::<VersionProbe>(body) {
            Ok(probe) if probe.version != PROTOCOL_VERSION => {
                Err(DecodeError::UnsupportedVersion {
                    found: probe.version,
                })
            }
            _ => Err(err),
        },
    }
}

fn decode_exact<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let mut rest = body;
    let value =
        ciborium::from_reader(&mut rest).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok(value)
}
