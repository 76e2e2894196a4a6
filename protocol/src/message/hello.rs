//! Hello and welcome: the first exchange on every connection.
//!
//! The hello carries the device's clock so the gateway can measure its skew (DOMAIN
//! R2: deadlines are computed on gateway time); the welcome carries what the device
//! needs before it sends anything else. The rules a terminal applies offline
//! ([`DeviceRules`]) travel only when the device's copy differs from the gateway's:
//! the hello names the digest of the copy it holds.

use serde::{Deserialize, Serialize};

use crate::action_kind::ActionKinds;
use crate::hash::Sha256Hash;
use crate::limits::{InvalidField, Limits};
use crate::{DeviceId, Millis};

/// The device introduces itself. Must be the first request on a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The device's clock when it sent the hello.
    pub device_time: Millis,
    /// The agent's software version, for support.
    pub agent_version: String,
    /// The digest ([`DeviceRules::digest`]) of the rules the device holds, if any: the
    /// welcome carries the rules only when they differ.
    #[serde(default)]
    pub rules_digest: Option<Sha256Hash>,
}

impl Hello {
    /// Checks field lengths.
    pub fn validate(&self, limits: &Limits) -> Result<(), InvalidField> {
        limits.check_short("agent_version", &self.agent_version)
    }
}

/// Where a device's chain ends: the next sequence number and the last record's hash
/// (sent in the welcome; how a record advances it is [`crate::chain`]'s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The sequence number the next record must carry (1 for an empty chain).
    pub next_sequence: u64,
    /// The hash of the last record ([`Sha256Hash::ZERO`] for an empty chain).
    pub last_hash: Sha256Hash,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self::GENESIS
    }
}

impl ChainHead {
    /// The head of an empty chain.
    pub const GENESIS: ChainHead = ChainHead {
        next_sequence: 1,
        last_hash: Sha256Hash::ZERO,
    };
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
    /// The gateway's rules for terminals, when the hello named no digest or another
    /// one than theirs.
    #[serde(default)]
    pub rules: Option<DeviceRules>,
}

/// What a terminal needs to apply the rules before it seals a record, offline too: the
/// action-kind vocabulary (refuse an unknown kind, warn about the two-officer and
/// audio-video rules), how many certified officers a two-officer action needs, and how
/// far a device time may lie ahead before the gateway calls the clock implausible.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRules {
    /// The action-kind vocabulary.
    pub action_kinds: ActionKinds,
    /// Certified officers a two-officer action needs.
    pub min_officers: u32,
    /// How far (ms) a device time may lie in the future of the moment the gateway
    /// hears of it before its clock is implausible; `record --at` is refused beyond it.
    pub clock_tolerance_ms: Millis,
}

impl DeviceRules {
    /// The SHA-256 of the rules' CBOR encoding: equal rules give equal digests at both
    /// ends, so a device names its copy in 32 bytes instead of receiving the rules on
    /// every hello.
    pub fn digest(&self) -> Sha256Hash {
        Sha256Hash::of(&super::encode_body(self))
    }
}
