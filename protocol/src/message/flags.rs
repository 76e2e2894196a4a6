//! Flags on a device's own records (DOMAIN R4; issue 21, point 6: "tell the officer"):
//! the terminal asks for the two-officer flag changes after the last one it holds, so
//! `agent sync` can say which of its records were flagged or cleared since the last
//! sync — at ingest, or later when the registry changed or a correction arrived.

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::two_officer::NotCounted;

/// Flag changes a reply carries at most (each is a few hundred bytes, so a full reply
/// stays far below the frame limit); `more` says to ask again.
pub const FLAG_CHANGES_PER_REPLY: u32 = 256;

/// Asks for the flag changes on this device's records after change `after` (0: from
/// the start). Answered by [`super::ResponseBody::FlagChanges`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagsSince {
    /// The last change the device holds.
    pub after: u64,
}

/// One raise or clear of the two-officer flag on one of the device's records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagChange {
    /// Its place in the gateway's log: the device's cursor.
    pub id: u64,
    /// The record's sequence number in the device's chain.
    pub sequence: u64,
    /// The action kind judged (a correction's, when the record was corrected).
    pub action_kind: String,
    /// True when the flag was raised, false when it was cleared.
    pub raised: bool,
    /// Distinct certified officers present.
    pub certified: u32,
    /// Certified officers required.
    pub required: u32,
    /// The listed numbers that did not count, and why.
    pub not_counted: Vec<NotCounted>,
    /// What judged the record (`ingest`, `registry`, `correction`, `upgrade`): text,
    /// so a cause a later gateway adds still decodes.
    pub cause: String,
    /// The certificate number (registry) or `<device>/<sequence>` (correction).
    pub cause_ref: Option<String>,
    /// When (gateway time).
    pub at: Millis,
}

/// The flag changes after [`FlagsSince::after`], oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagChanges {
    /// The changes.
    pub changes: Vec<FlagChange>,
    /// True when more follow: ask again after the last change's id.
    pub more: bool,
}
