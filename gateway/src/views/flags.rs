//! The flags supervisors act on, across every case: records refused as possible
//! tampering (with the refused record's content, decoded from the evidence), records
//! that broke the two-officer rule, and the open full-process flags
//! (missing audio-video, archive overdue). They show case content, so the API and the
//! pages that show them require [`crate::access::ReadCaseContent`].

use protocol::DeviceId;
use protocol::Millis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ViewError;
use super::cases::{CaseFlagEntry, TamperEntry};
use store::recordings::CaseFlagKind;
use store::{Store, TamperFlagCount, TwoOfficerFlag};

/// Every tamper flag (optionally of one device), oldest first.
pub async fn tamper_flags(
    store: &Store,
    device: Option<&str>,
) -> Result<Vec<TamperEntry>, ViewError> {
    let device = device
        .map(|d| DeviceId::new(d.trim()).map_err(|e| ViewError::Invalid(e.to_string())))
        .transpose()?;
    Ok(store
        .tamper_flags(device.as_ref())
        .await?
        .iter()
        .map(TamperEntry::of)
        .collect())
}

/// A device's chain breaks beyond its cap of tamper flags (`ingest.tamper_flags_per_device`):
/// refused like the flagged ones, counted rather than kept one by one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TamperCountEntry {
    /// The device.
    pub device_id: String,
    /// Records refused as chain breaks after its flags reached the cap (a record sent
    /// again counts again).
    pub breaks: u64,
    /// When the first of them was refused.
    pub first_at: Millis,
    /// When the last of them was refused.
    pub last_at: Millis,
}

impl From<&TamperFlagCount> for TamperCountEntry {
    fn from(c: &TamperFlagCount) -> Self {
        TamperCountEntry {
            device_id: c.device.as_str().to_owned(),
            breaks: c.breaks,
            first_at: c.first_at,
            last_at: c.last_at,
        }
    }
}

/// Every device's count of chain breaks beyond its cap of tamper flags, by device.
pub async fn tamper_counts(store: &Store) -> Result<Vec<TamperCountEntry>, ViewError> {
    Ok(store
        .tamper_flag_counts()
        .await?
        .iter()
        .map(TamperCountEntry::from)
        .collect())
}

/// A stored record whose officers did not satisfy the two-officer rule at its time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TwoOfficerEntry {
    /// The device.
    pub device_id: String,
    /// The record's sequence number.
    pub sequence: u64,
    /// The record's action kind.
    pub action_kind: String,
    /// Distinct certified officers present.
    pub certified: u32,
    /// Certified officers required.
    pub required: u32,
    /// Listed numbers that did not count, with why.
    pub not_counted: Vec<String>,
    /// When the gateway flagged it.
    pub flagged_at: Millis,
}

impl From<&TwoOfficerFlag> for TwoOfficerEntry {
    fn from(f: &TwoOfficerFlag) -> Self {
        TwoOfficerEntry {
            device_id: f.device.as_str().to_owned(),
            sequence: f.sequence,
            action_kind: f.action_kind.clone(),
            certified: f.certified,
            required: f.required,
            not_counted: f.not_counted.iter().map(ToString::to_string).collect(),
            flagged_at: f.flagged_at,
        }
    }
}

/// Every open full-process flag on any case: missing audio-video, then archive overdue.
pub async fn open_case_flags(store: &Store) -> Result<Vec<CaseFlagEntry>, ViewError> {
    let mut out = Vec::new();
    for kind in [
        CaseFlagKind::MissingAudioVideo,
        CaseFlagKind::ArchiveOverdue,
    ] {
        out.extend(
            store
                .open_case_flags(kind)
                .await?
                .into_iter()
                .map(CaseFlagEntry::from),
        );
    }
    Ok(out)
}
