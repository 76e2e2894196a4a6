//! The fieldsync protocol: what a device and the gateway say to each other, and the
//! domain arithmetic both ends must agree on.
//!
//! Everything here is pure: no sockets, no database, no clock reads. Time is always a
//! parameter (milliseconds since the Unix epoch, UTC), so the hard cases are unit and
//! property tests instead of sleeps.
#![warn(missing_docs)]

pub mod device;
pub mod domain;

pub use device::{DeviceId, DeviceIdError, certificate_fingerprint};
