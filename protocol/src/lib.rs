//! The fieldsync protocol: what a device and the gateway say to each other, and the
//! domain arithmetic both ends must agree on.
//!
//! Everything here is pure: no sockets, no database, no clock reads. Time is always a
//! parameter (milliseconds since the Unix epoch, UTC), so the hard cases are unit and
//! property tests instead of sleeps.
#![warn(missing_docs)]

pub mod action_kind;
pub mod allocation;
pub mod archive;
pub mod chain;
pub mod clock;
pub mod codes;
pub mod deadline;
pub mod device;
pub mod domain;
pub mod error_text;
pub mod frame;
pub mod hash;
pub mod limits;
pub mod message;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod two_officer;

/// A point in time: milliseconds since the Unix epoch, UTC.
///
/// One integer type for every timestamp on the wire and in the store, so that no
/// time-zone or calendar arithmetic hides in the protocol.
pub type Millis = i64;

pub use codes::{CloseCode, ErrorCode, ErrorReply};
pub use device::{DeviceId, DeviceIdError, certificate_fingerprint};
pub use hash::Sha256Hash;
pub use limits::{InvalidField, Limits};
pub use message::{ALPN, PROTOCOL_VERSION, Request, RequestBody, Response, ResponseBody};
