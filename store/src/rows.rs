//! The registry's rows as the rest of the gateway sees them (typed: `DeviceId`,
//! `DeviceStatus`, ...), the raw rows as the database returns them (TEXT words,
//! integers), and the checked conversion between the two.
//!
//! The raw rows are decoded with `sqlx::FromRow`, which is generic over the database,
//! so one struct serves SQLite and PostgreSQL.

use protocol::domain::{AgencyClass, CertificateStatus, DeviceKind, DeviceStatus};
use protocol::{DeviceId, Millis};

use super::StoreError;

/// An enforcement agency and its allocation class (DOMAIN R1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgencyRow {
    /// Store-assigned id.
    pub id: i64,
    /// Unique name, as operators type it.
    pub name: String,
    /// Allocation class.
    pub class: AgencyClass,
    /// For class C only: the target number of devices set for this agency by need.
    pub class_c_target: Option<u32>,
    /// When the agency was created.
    pub created_at: Millis,
}

/// A new agency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAgency {
    /// Unique name.
    pub name: String,
    /// Allocation class.
    pub class: AgencyClass,
    /// Target number of devices; required for class C, absent for A and B.
    pub class_c_target: Option<u32>,
}

/// An officer and their enforcement certificate (DOMAIN R4), as the roster carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficerRow {
    /// Certificate number (行政执法证件号), the officer's key.
    pub certificate_number: String,
    /// Name.
    pub name: String,
    /// Issuing unit.
    pub unit: String,
    /// Post.
    pub post: String,
    /// Enforcement category.
    pub category: String,
    /// Certificate status: only `valid` may enforce.
    pub certificate_status: CertificateStatus,
    /// Auxiliary staff: never counted as certified officers.
    pub auxiliary: bool,
    /// The agency the officer belongs to, if known.
    pub agency_id: Option<i64>,
    /// The roster version of the officer's last change (as on the wire).
    pub roster_version: u64,
    /// When the officer's row last changed.
    pub updated_at: Millis,
    /// When the certificate expires, if it has an expiry date.
    pub valid_until: Option<Millis>,
}

impl OfficerRow {
    /// What the certificate is worth at `at` (auxiliary staff are never certified).
    pub fn standing_at(&self, at: Millis) -> protocol::domain::Standing {
        protocol::domain::Standing::at(
            self.certificate_status,
            self.auxiliary,
            self.valid_until,
            at,
        )
    }
}

/// An officer as the roster import or the admin API submits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficerRecord {
    /// Certificate number.
    pub certificate_number: String,
    /// Name.
    pub name: String,
    /// Issuing unit.
    pub unit: String,
    /// Post.
    pub post: String,
    /// Enforcement category.
    pub category: String,
    /// Certificate status.
    pub certificate_status: CertificateStatus,
    /// Auxiliary staff.
    pub auxiliary: bool,
    /// Agency name, if any.
    pub agency: Option<String>,
    /// When the certificate expires, if it has an expiry date.
    pub valid_until: Option<Millis>,
    /// When a status change took effect (it may be before it is entered); `None`:
    /// when it is entered.
    pub effective_at: Option<Millis>,
}

/// What [`Store::upsert_officer`](super::Store::upsert_officer) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfficerChange {
    /// A new officer (took a new roster version).
    Inserted(OfficerRow),
    /// An existing officer changed (took a new roster version).
    Updated(OfficerRow),
    /// The submitted record matches the stored one: nothing written, nothing audited.
    Unchanged(OfficerRow),
}

impl OfficerChange {
    /// The officer as stored after the call.
    pub fn row(&self) -> &OfficerRow {
        match self {
            OfficerChange::Inserted(r)
            | OfficerChange::Updated(r)
            | OfficerChange::Unchanged(r) => r,
        }
    }
}

/// One page of roster changes (see [`Store::roster_page`](super::Store::roster_page)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterPage {
    /// Changed officers, oldest change first.
    pub officers: Vec<OfficerRow>,
    /// The version the terminal holds after applying this page.
    pub to_version: u64,
    /// True when more changes follow: ask again from `to_version`.
    pub more: bool,
}

/// An enrolled device: one certificate, one id, for the life of that enrollment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    /// Device id (the certificate's URI SAN).
    pub id: DeviceId,
    /// Recorder or terminal.
    pub kind: DeviceKind,
    /// Hardware serial (the certificate's CN).
    pub serial: String,
    /// Owning agency, if assigned.
    pub agency_id: Option<i64>,
    /// Certificate number of the officer it is issued to, if any.
    pub assigned_officer: Option<String>,
    /// Fleet status; only `in_service` is admitted.
    pub status: DeviceStatus,
    /// SHA-256 of the device certificate (64 lowercase hex digits).
    pub certificate_fingerprint: String,
    /// When the certificate expires.
    pub certificate_not_after: Millis,
    /// When the device was enrolled.
    pub enrolled_at: Millis,
    /// Last accepted hello, gateway time.
    pub last_seen: Option<Millis>,
    /// Device clock minus gateway clock at the last hello.
    pub clock_skew_ms: Option<i64>,
    /// When the status last changed (the enrollment time at first).
    pub status_changed_at: Millis,
}

/// A device to enroll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDevice {
    /// Device id: never used before.
    pub id: DeviceId,
    /// Recorder or terminal.
    pub kind: DeviceKind,
    /// Hardware serial.
    pub serial: String,
    /// Certificate fingerprint (64 hex digits; stored lowercase).
    pub certificate_fingerprint: String,
    /// When the certificate expires.
    pub certificate_not_after: Millis,
    /// Owning agency name, if known at enrollment.
    pub agency: Option<String>,
}

/// A device's status changed: what the QUIC endpoint needs to close a live connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceStatusEvent {
    /// One device's status changed (on this gateway or, with PostgreSQL, any gateway).
    Changed {
        /// The device.
        device_id: DeviceId,
        /// Its certificate fingerprint.
        fingerprint: String,
        /// The new status.
        status: DeviceStatus,
    },
    /// Changes may have been missed (the notification connection was lost and is back):
    /// re-check every live connection against the store. A receiver that lags behind
    /// the channel (`RecvError::Lagged`) must do the same.
    Resync,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawAgency {
    id: i64,
    name: String,
    class: String,
    class_c_target: Option<i64>,
    created_at: i64,
}

impl TryFrom<RawAgency> for AgencyRow {
    type Error = StoreError;
    fn try_from(r: RawAgency) -> Result<Self, StoreError> {
        Ok(AgencyRow {
            id: r.id,
            class: r
                .class
                .parse()
                .map_err(|e| StoreError::corrupt("agency class", e))?,
            class_c_target: r
                .class_c_target
                .map(u32::try_from)
                .transpose()
                .map_err(|e| StoreError::corrupt("agency class C target", e))?,
            name: r.name,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawOfficer {
    certificate_number: String,
    name: String,
    unit: String,
    post: String,
    category: String,
    certificate_status: String,
    auxiliary: bool,
    agency_id: Option<i64>,
    roster_version: i64,
    updated_at: i64,
    valid_until: Option<i64>,
}

impl TryFrom<RawOfficer> for OfficerRow {
    type Error = StoreError;
    fn try_from(r: RawOfficer) -> Result<Self, StoreError> {
        Ok(OfficerRow {
            certificate_status: r
                .certificate_status
                .parse()
                .map_err(|e| StoreError::corrupt("certificate status", e))?,
            certificate_number: r.certificate_number,
            name: r.name,
            unit: r.unit,
            post: r.post,
            category: r.category,
            auxiliary: r.auxiliary,
            agency_id: r.agency_id,
            roster_version: u64::try_from(r.roster_version)
                .map_err(|e| StoreError::corrupt("roster version", e))?,
            updated_at: r.updated_at,
            valid_until: r.valid_until,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawDevice {
    id: String,
    kind: String,
    serial: String,
    agency_id: Option<i64>,
    assigned_officer: Option<String>,
    status: String,
    certificate_fingerprint: String,
    certificate_not_after: i64,
    enrolled_at: i64,
    last_seen: Option<i64>,
    clock_skew_ms: Option<i64>,
    status_changed_at: i64,
}

impl TryFrom<RawDevice> for DeviceRow {
    type Error = StoreError;
    fn try_from(r: RawDevice) -> Result<Self, StoreError> {
        Ok(DeviceRow {
            id: DeviceId::new(r.id).map_err(|e| StoreError::corrupt("device id", e))?,
            kind: r
                .kind
                .parse()
                .map_err(|e| StoreError::corrupt("device kind", e))?,
            status: r
                .status
                .parse()
                .map_err(|e| StoreError::corrupt("device status", e))?,
            serial: r.serial,
            agency_id: r.agency_id,
            assigned_officer: r.assigned_officer,
            certificate_fingerprint: r.certificate_fingerprint,
            certificate_not_after: r.certificate_not_after,
            enrolled_at: r.enrolled_at,
            last_seen: r.last_seen,
            clock_skew_ms: r.clock_skew_ms,
            status_changed_at: r.status_changed_at,
        })
    }
}

/// Converts raw rows, failing on the first corrupt one.
pub(crate) fn convert_all<R, T>(raw: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    raw.into_iter().map(T::try_from).collect()
}

/// Checks and normalizes a certificate fingerprint: 64 hex digits, stored lowercase.
pub(crate) fn normalize_fingerprint(fp: &str) -> Result<String, StoreError> {
    let fp = fp.trim();
    if fp.len() == 64 && fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(fp.to_ascii_lowercase())
    } else {
        Err(StoreError::BadFingerprint(fp.to_owned()))
    }
}

/// Refuses an empty (or blank) required text field.
pub(crate) fn non_empty(what: &'static str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        Err(StoreError::EmptyField(what))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalized() {
        let upper = "AB".repeat(32);
        assert_eq!(normalize_fingerprint(&upper).unwrap(), "ab".repeat(32));
        assert!(matches!(
            normalize_fingerprint("abc"),
            Err(StoreError::BadFingerprint(_))
        ));
        assert!(normalize_fingerprint(&"g".repeat(64)).is_err());
    }

    #[test]
    fn corrupt_words_are_reported() {
        let raw = RawAgency {
            id: 1,
            name: "x".into(),
            class: "z".into(),
            class_c_target: None,
            created_at: 0,
        };
        assert!(matches!(
            AgencyRow::try_from(raw),
            Err(StoreError::Corrupt {
                what: "agency class",
                ..
            })
        ));
    }
}
