//! The gateway's clock is the workspace's one [`clock`] crate; this re-export keeps the
//! gateway's `crate::clock` paths until the gateway's modules are reorganised.

pub use ::clock::{Clock, DAY, ManualClock, SharedClock, SystemClock};
