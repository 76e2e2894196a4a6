//! Hello and welcome: the first exchange on every connection.
//!
//! The hello carries the device's clock so the gateway can measure its skew (DOMAIN
//! R2: deadlines are computed on gateway time); the welcome carries what the device
//! needs before it sends anything else.

use serde::{Deserialize, Serialize};

use crate::chain::ChainHead;
use crate::limits::{InvalidField, Limits};
use crate::{DeviceId, Millis};

/// The device introduces itself. Must be the first request on a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The device's clock when it sent the hello.
    pub device_time: Millis,
    /// The agent's software version, for support.
    pub agent_version: String,
}

impl Hello {
    /// Checks field lengths.
    pub fn validate(&self, limits: &Limits) -> Result<(), InvalidField> {
        limits.check_short("agent_version", &self.agent_version)
    }
}

/// The gateway's answer to a hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The device as the gateway knows it (from its certificate).
    pub device_id: DeviceId,
    /// The gateway's clock when it answered.
    pub gateway_time: Millis,
    /// Gateway time minus device time, as measured from the hello.
    pub clock_skew_ms: i64,
    /// The limits this gateway enforces.
    pub limits: Limits,
    /// The newest roster version, so the device knows whether to fetch a delta.
    pub roster_version: u64,
    /// Where the gateway's copy of this device's record chain ends, so a device can
    /// tell which of its records are already stored.
    pub chain: ChainHead,
}
