//! Identity checks of officers' enforcement certificates (DOMAIN R4) and the roster
//! that lets a terminal check offline.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Millis;
use crate::domain::CertificateStatus;
use crate::domain::Standing;
use crate::limits::{InvalidField, Limits};

/// The answer to "may this person enforce?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityVerdict {
    /// The certificate is valid.
    Valid,
    /// The certificate was withdrawn (retirement, transfer, resignation).
    Withdrawn,
    /// The certificate was revoked (dismissal, criminal penalty).
    Revoked,
    /// No such certificate number.
    Unknown,
    /// The certificate is past its expiry date.
    Expired,
    /// Auxiliary staff (协管/辅助人员): not an enforcement officer, whatever the
    /// certificate's status (003).
    Auxiliary,
}

impl IdentityVerdict {
    /// Every verdict, in declaration order.
    pub const ALL: &'static [IdentityVerdict] = &[
        IdentityVerdict::Valid,
        IdentityVerdict::Withdrawn,
        IdentityVerdict::Revoked,
        IdentityVerdict::Unknown,
        IdentityVerdict::Expired,
        IdentityVerdict::Auxiliary,
    ];

    /// The stable spelling (wire, store, metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityVerdict::Valid => "valid",
            IdentityVerdict::Withdrawn => "withdrawn",
            IdentityVerdict::Revoked => "revoked",
            IdentityVerdict::Unknown => "unknown",
            IdentityVerdict::Expired => "expired",
            IdentityVerdict::Auxiliary => "auxiliary",
        }
    }

    /// Parses [`IdentityVerdict::as_str`].
    pub fn parse(word: &str) -> Option<IdentityVerdict> {
        Self::ALL.iter().copied().find(|v| v.as_str() == word)
    }
}

impl From<Option<Standing>> for IdentityVerdict {
    fn from(standing: Option<Standing>) -> Self {
        match standing {
            Some(Standing::Certified) => IdentityVerdict::Valid,
            Some(Standing::Withdrawn) => IdentityVerdict::Withdrawn,
            Some(Standing::Revoked) => IdentityVerdict::Revoked,
            Some(Standing::Expired) => IdentityVerdict::Expired,
            Some(Standing::Auxiliary) => IdentityVerdict::Auxiliary,
            None => IdentityVerdict::Unknown,
        }
    }
}

/// One officer as the roster knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// The enforcement certificate number.
    pub certificate_number: String,
    /// The holder's name.
    pub name: String,
    /// The holder's unit.
    pub unit: String,
    /// The holder's post.
    pub post: String,
    /// The enforcement category the certificate covers.
    pub category: String,
    /// The certificate's status.
    pub status: CertificateStatus,
    /// The roster version at which this entry last changed.
    pub version: u64,
    /// Auxiliary staff: never an enforcement officer (003), so an offline check answers
    /// "auxiliary" whatever the status says.
    #[serde(default)]
    pub auxiliary: bool,
    /// When the certificate expires (gateway time), if it has an expiry date.
    #[serde(default)]
    pub valid_until: Option<Millis>,
}

impl RosterEntry {
    /// What this entry's certificate is worth at instant `at`.
    pub fn standing_at(&self, at: Millis) -> Standing {
        Standing::at(self.status, self.auxiliary, self.valid_until, at)
    }
}

/// A check made on the terminal. Sent online for an answer, or queued when offline
/// with the answer the synced roster gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityCheck {
    /// Made on the device; makes uploads of queued checks idempotent.
    pub check_id: Uuid,
    /// The certificate number that was checked.
    pub certificate_number: String,
    /// When, on the device's clock.
    pub checked_at: Millis,
    /// Where, in words.
    pub location: Option<String>,
    /// The case the check belongs to, if any.
    pub case_number: Option<String>,
    /// For a check made offline: the answer the device's roster gave, and its version.
    pub offline: Option<OfflineAnswer>,
}

/// The answer a device gave from its synced roster while offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineAnswer {
    /// What the roster said.
    pub verdict: IdentityVerdict,
    /// The roster version the device held.
    pub roster_version: u64,
}

impl IdentityCheck {
    /// Checks field lengths.
    pub fn validate(&self, limits: &Limits) -> Result<(), InvalidField> {
        limits.check_short("certificate_number", &self.certificate_number)?;
        if let Some(l) = &self.location {
            limits.check_optional_short("location", l)?;
        }
        if let Some(c) = &self.case_number {
            limits.check_optional_short("case_number", c)?;
        }
        Ok(())
    }
}

/// The gateway's answer to an online check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityResult {
    /// The check answered.
    pub check_id: Uuid,
    /// The answer.
    pub verdict: IdentityVerdict,
    /// The officer, when the number is known.
    pub officer: Option<RosterEntry>,
    /// The roster version the answer came from.
    pub roster_version: u64,
}

/// Checks made offline, uploaded like records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushIdentityChecks {
    /// The queued checks.
    #[serde(deserialize_with = "crate::limits::bounded_list")]
    pub checks: Vec<IdentityCheck>,
}

/// What happened to one uploaded check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// Durably stored now.
    Stored,
    /// Stored before (a replay).
    Duplicate,
    /// Refused; the text says why.
    Rejected(String),
}

/// One ack per uploaded check, sent after the stored ones are durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityCheckAcks {
    /// `(check id, outcome)` in upload order.
    pub acks: Vec<(Uuid, CheckOutcome)>,
}

/// Asks for the roster changes after a version (0 = everything).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterSince {
    /// The version the device holds.
    pub version: u64,
}

/// Roster changes after `from_version`, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterDelta {
    /// The version the delta starts after.
    pub from_version: u64,
    /// The version the device holds after applying it.
    pub to_version: u64,
    /// Changed entries (a withdrawal is an entry with its new status).
    pub entries: Vec<RosterEntry>,
    /// True when more changes follow: ask again from `to_version`.
    pub more: bool,
}
