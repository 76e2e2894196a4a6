//! Stable numbers that cross the wire: request error codes and QUIC application close
//! codes.
//!
//! Grouped by whose fault it is (as rustls does): 1xx the peer broke the protocol,
//! 2xx the input is invalid, 5xx the gateway failed. The numbers never change meaning;
//! a code this build does not know decodes as [`ErrorCode::Unrecognized`] instead of
//! failing, so an older agent still shows a newer gateway's message.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::DeviceStatus;

macro_rules! error_codes {
    ($( $(#[$m:meta])* $name:ident = $num:literal ),+ $(,)?) => {
        /// Why a request was refused. Carried in [`ErrorReply`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "u16", into = "u16")]
        pub enum ErrorCode {
            $( $(#[$m])* $name, )+
            /// A code this build does not know (from a newer peer).
            Unrecognized(u16),
        }

        impl From<u16> for ErrorCode {
            fn from(n: u16) -> Self {
                match n { $( $num => ErrorCode::$name, )+ other => ErrorCode::Unrecognized(other) }
            }
        }

        impl From<ErrorCode> for u16 {
            fn from(c: ErrorCode) -> u16 {
                match c { $( ErrorCode::$name => $num, )+ ErrorCode::Unrecognized(n) => n }
            }
        }

        impl ErrorCode {
            /// Every known code, for tests and documentation.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),+];
        }
    };
}

error_codes! {
    /// The message names a protocol version this gateway does not speak.
    UnsupportedVersion = 100,
    /// The frame body is not a valid message (bad CBOR, wrong shape, trailing bytes).
    MalformedMessage = 101,
    /// The length prefix exceeds the maximum frame size.
    FrameTooLarge = 102,
    /// A well-formed message that makes no sense here (a reply kind sent as a request).
    UnexpectedMessage = 103,
    /// A request came before the hello.
    HelloRequired = 104,
    /// A field is missing, empty, too long or out of range; the message says which.
    InvalidField = 200,
    /// More records or identity checks in one push than the limit.
    TooManyItems = 201,
    /// A recording larger than the limit was announced or uploaded.
    RecordingTooLarge = 202,
    /// An upload names a recording that was never announced.
    UnknownRecording = 203,
    /// The uploaded bytes do not have the announced SHA-256; nothing was kept.
    HashMismatch = 204,
    /// An upload chunk does not start at the gateway's current offset.
    OffsetMismatch = 205,
    /// A recording was announced again with a different size or hash.
    AnnouncementConflict = 206,
    /// This device already has as many uploads in flight as the gateway allows it;
    /// retry once one has finished.
    TooManyUploads = 207,
    /// This device already has as many announced recordings not yet stored as the
    /// gateway allows it; upload those first, then announce more.
    TooManyPendingRecordings = 208,
    /// This device's partial uploads already hold as many bytes of the gateway's
    /// staging space as it allows; finish one first.
    StagingQuotaExceeded = 209,
    /// The chunk's bytes came slower than the gateway's minimum rate (or stopped); what
    /// arrived is kept, and the message names the offset to resume from.
    UploadStalled = 210,
    /// The gateway failed; the request may be retried.
    Internal = 500,
    /// The gateway's storage is full; nothing of this request was acknowledged.
    StorageFull = 501,
    /// The gateway is shutting down; retry on a new connection.
    ShuttingDown = 502,
    /// The gateway is overloaded; retry later.
    Busy = 503,
    /// The gateway's storage failed (an I/O error): it acknowledges nothing more until
    /// it is restarted. Keep the data and retry later, perhaps through another gateway.
    StorageFailed = 504,
}

impl ErrorCode {
    /// True when retrying the same request later can succeed (the fault is ours or
    /// transient), false when the request itself must change.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Internal
                | ErrorCode::StorageFull
                | ErrorCode::ShuttingDown
                | ErrorCode::Busy
                | ErrorCode::TooManyUploads
                | ErrorCode::TooManyPendingRecordings
                | ErrorCode::StagingQuotaExceeded
                | ErrorCode::UploadStalled
                | ErrorCode::StorageFailed
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({})", u16::from(*self))
    }
}

/// A typed error reply: a stable numeric code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, as a stable code.
    pub code: ErrorCode,
    /// Human-readable detail naming the problem (field, limit, value).
    pub message: String,
}

impl ErrorReply {
    /// Builds a reply.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorReply {}

/// QUIC application close codes the gateway uses to end a device connection.
///
/// Distinct codes let the agent tell "you are revoked, stop trying" from "the gateway
/// is restarting, come back".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// Normal close by either side.
    Normal,
    /// The gateway is shutting down; reconnect later.
    GoingAway,
    /// A newer connection of the same device was admitted; this one is closed. Not a
    /// refusal: the device is still admitted (another copy of it, or its own
    /// reconnect after a network change, took over).
    Replaced,
    /// The certificate chains to the fleet CA but its fingerprint is not enrolled.
    UnknownDevice,
    /// The device's certificate is revoked.
    DeviceRevoked,
    /// The device is suspended.
    DeviceSuspended,
    /// The device was reported lost or stolen.
    DeviceLost,
    /// The device was retired.
    DeviceRetired,
    /// The device certificate is outside its validity period on the gateway's clock
    /// (seen on a resumed TLS session, whose handshake did not check it again).
    CertificateExpired,
    /// The peer kept breaking the protocol.
    ProtocolViolation,
    /// A close code this build does not know.
    Unrecognized(u32),
}

impl CloseCode {
    /// The numeric code sent in the QUIC CONNECTION_CLOSE frame.
    pub fn to_u32(self) -> u32 {
        match self {
            CloseCode::Normal => 0,
            CloseCode::GoingAway => 1,
            CloseCode::Replaced => 2,
            CloseCode::UnknownDevice => 0x100,
            CloseCode::DeviceRevoked => 0x101,
            CloseCode::DeviceSuspended => 0x102,
            CloseCode::DeviceLost => 0x103,
            CloseCode::DeviceRetired => 0x104,
            CloseCode::CertificateExpired => 0x105,
            CloseCode::ProtocolViolation => 0x200,
            CloseCode::Unrecognized(n) => n,
        }
    }

    /// Decodes a numeric close code.
    pub fn from_u32(n: u32) -> Self {
        match n {
            0 => CloseCode::Normal,
            1 => CloseCode::GoingAway,
            2 => CloseCode::Replaced,
            0x100 => CloseCode::UnknownDevice,
            0x101 => CloseCode::DeviceRevoked,
            0x102 => CloseCode::DeviceSuspended,
            0x103 => CloseCode::DeviceLost,
            0x104 => CloseCode::DeviceRetired,
            0x105 => CloseCode::CertificateExpired,
            0x200 => CloseCode::ProtocolViolation,
            other => CloseCode::Unrecognized(other),
        }
    }

    /// The close code for a device that is not admitted in `status`, or `None` when the
    /// status is admitted.
    pub fn for_status(status: DeviceStatus) -> Option<Self> {
        match status {
            DeviceStatus::InService => None,
            DeviceStatus::Suspended => Some(CloseCode::DeviceSuspended),
            DeviceStatus::Lost => Some(CloseCode::DeviceLost),
            DeviceStatus::Revoked => Some(CloseCode::DeviceRevoked),
            DeviceStatus::Retired => Some(CloseCode::DeviceRetired),
        }
    }

    /// True when the device should stop reconnecting: its enrollment is not admitted.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            CloseCode::UnknownDevice
                | CloseCode::DeviceRevoked
                | CloseCode::DeviceSuspended
                | CloseCode::DeviceLost
                | CloseCode::DeviceRetired
                | CloseCode::CertificateExpired
        )
    }

    /// A short reason phrase sent with the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal close",
            CloseCode::GoingAway => "gateway going away",
            CloseCode::Replaced => "replaced by a newer connection of this device",
            CloseCode::UnknownDevice => "device not enrolled",
            CloseCode::DeviceRevoked => "device revoked",
            CloseCode::DeviceSuspended => "device suspended",
            CloseCode::DeviceLost => "device reported lost",
            CloseCode::DeviceRetired => "device retired",
            CloseCode::CertificateExpired => "device certificate expired",
            CloseCode::ProtocolViolation => "protocol violation",
            CloseCode::Unrecognized(_) => "unrecognized",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from(u16::from(*c)), *c);
        }
        assert_eq!(ErrorCode::from(999), ErrorCode::Unrecognized(999));
        for n in [0, 1, 2, 0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x200, 77] {
            assert_eq!(CloseCode::from_u32(n).to_u32(), n);
        }
    }

    #[test]
    fn a_replaced_connection_is_not_a_refusal_and_an_expired_certificate_is() {
        // The agent reconnects after "replaced" (issue 19) and stops on a refusal.
        assert!(!CloseCode::Replaced.is_refusal());
        assert!(CloseCode::CertificateExpired.is_refusal());
        assert_ne!(CloseCode::Replaced.reason(), CloseCode::GoingAway.reason());
    }

    #[test]
    fn every_refused_status_has_its_own_code() {
        let codes: std::collections::HashSet<_> = DeviceStatus::ALL
            .iter()
            .filter_map(|s| CloseCode::for_status(*s))
            .collect();
        assert_eq!(codes.len(), DeviceStatus::ALL.len() - 1);
        assert!(codes.iter().all(|c| c.is_refusal()));
    }
}
