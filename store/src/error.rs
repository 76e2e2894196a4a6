//! What can go wrong in the store, named so that the caller (admin API, enrollment
//! tool, QUIC endpoint) can tell the operator exactly which rule refused the change.
//!
//! Grouped by whose fault it is: the request names something that does not exist, the
//! request conflicts with the registry, the input is malformed, or the store itself
//! failed. A refused change leaves the registry and the audit log untouched.

use std::path::PathBuf;

use sqlx::error::DatabaseError;

use protocol::domain::{AgencyClass, CertificateStatus, Standing, StatusChangeError};
use protocol::{DeviceId, Millis};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // --- the request names something that is not in the registry ---
    /// No agency has this name.
    #[error("no agency is named {0:?}")]
    UnknownAgency(String),
    /// No device has this id.
    #[error("no device has id {0}")]
    UnknownDevice(DeviceId),
    /// No officer holds this certificate number.
    #[error("no officer holds certificate number {0:?}")]
    UnknownOfficer(String),

    // --- the request conflicts with the registry ---
    /// An agency with this name exists already.
    #[error("an agency named {0:?} exists already")]
    DuplicateAgency(String),
    /// The device id was used by an earlier enrollment (in any status): a returning
    /// device gets a new id and a new certificate.
    #[error("device id {0} is already enrolled; a new enrollment needs a new id")]
    DeviceIdTaken(DeviceId),
    /// A live (in service or suspended) device already has this serial.
    #[error("serial {0:?} already belongs to a live device")]
    DuplicateSerial(String),
    /// This certificate was enrolled before; a certificate is enrolled once, ever.
    #[error("certificate {0} is already enrolled")]
    DuplicateFingerprint(String),
    /// The device status rules (`DeviceStatus::check_change`) forbid the change.
    #[error(transparent)]
    StatusChange(#[from] StatusChangeError),
    /// The officer's certificate already has this status.
    #[error("certificate {number:?} is already {status}")]
    CertificateUnchanged {
        /// The certificate number.
        number: String,
        /// Its current (and requested) status.
        status: CertificateStatus,
    },

    /// The officer is not certified now (withdrawn, revoked, expired or auxiliary):
    /// assigning a device to them needs `force` and a reason.
    #[error(
        "officer {number:?} is not certified ({standing}); assign anyway only with force and a reason"
    )]
    OfficerNotCertified {
        /// The certificate number.
        number: String,
        /// What the certificate is worth now.
        standing: Standing,
    },

    // --- the input is malformed ---
    /// Class C needs a target number of devices, and classes A and B take none (their
    /// requirement comes from the officer ratio).
    #[error("agency class {class} {}", if *.class == AgencyClass::C { "needs a target number of devices" } else { "takes no target number of devices" })]
    ClassTarget {
        /// The requested class.
        class: AgencyClass,
    },
    /// A certificate fingerprint is not 64 hex digits.
    #[error("{0:?} is not a certificate fingerprint (64 hex digits)")]
    BadFingerprint(String),
    /// An auxiliary member of staff listed with a valid certificate (003).
    #[error(
        "{0:?} is marked auxiliary: auxiliary staff may not hold a valid enforcement certificate (list it as withdrawn, or not as auxiliary)"
    )]
    AuxiliaryCertified(String),
    /// A certificate change said to take effect in the future.
    #[error(
        "a certificate change cannot take effect in the future (effective_at {at} is after now)"
    )]
    EffectiveInFuture {
        /// The time given.
        at: Millis,
    },
    /// A required text field is blank.
    #[error("{0} must not be empty")]
    EmptyField(&'static str),
    /// A row of an enrollment file is invalid or conflicts with the registry; nothing
    /// from the file was applied.
    #[error("enrollment file line {line}: {reason}")]
    BadEnrollmentRow {
        /// 1-based line number in the file (the header is line 1).
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The store configuration is unusable.
    #[error("store configuration: {0}")]
    BadConfig(String),

    // --- the store failed ---
    /// The SQLite file's folder could not be created, or the file or folder could not
    /// be made private to the gateway's user.
    #[error("cannot create or secure {path}: {source}")]
    DataDir {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database refused or failed a statement.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema migrations could not be applied (for example, an applied migration
    /// was edited after the fact).
    #[error("schema migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value is not valid (a word outside the vocabulary, a bad id): someone
    /// wrote to the database behind the store's back.
    #[error("corrupt {what} in the store: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

/// SQLite's primary result codes for a full disk and an I/O error (extended codes keep
/// the primary code in their low byte, e.g. `SQLITE_IOERR_FSYNC` = 1034).
const SQLITE_FULL: i64 = 13;
const SQLITE_IOERR: i64 = 10;
/// PostgreSQL's SQLSTATE for a full disk.
const PG_DISK_FULL: &str = "53100";

/// The primary result code of a SQLite error (`None` for another database's).
fn sqlite_primary_code(e: &dyn sqlx::error::DatabaseError) -> Option<i64> {
    let sqlite = e.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    sqlite.code()?.parse::<i64>().ok().map(|c| c & 0xff)
}

/// The SQLSTATE of a PostgreSQL error (`None` for another database's).
fn pg_state(e: &dyn sqlx::error::DatabaseError) -> Option<String> {
    let pg = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    Some(pg.code().to_owned())
}

impl StoreError {
    /// True when the database's disk is full (SQLite `SQLITE_FULL`, PostgreSQL
    /// `disk_full`): nothing was written, and the same write can succeed once there
    /// is space.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                sqlite_primary_code(e.as_ref()) == Some(SQLITE_FULL)
                    || pg_state(e.as_ref()).as_deref() == Some(PG_DISK_FULL)
            }
            StoreError::Database(sqlx::Error::Io(e)) => {
                e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT)
            }
            _ => false,
        }
    }

    /// True when SQLite reported an I/O error on the gateway's own database file
    /// (`SQLITE_IOERR` and its extended codes: a failed write, fsync, truncate): after
    /// it nothing written may be trusted to be on disk (see the gateway's `faults`).
    /// PostgreSQL's I/O errors are the database server's to handle (it stops and
    /// recovers from its log), so they are not counted here.
    pub fn is_io_failure(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                sqlite_primary_code(e.as_ref()) == Some(SQLITE_IOERR)
            }
            // What the `ingest.commit` failpoint injects; PostgreSQL's socket errors
            // are other numbers.
            StoreError::Database(sqlx::Error::Io(e)) => e.raw_os_error() == Some(libc::EIO),
            _ => false,
        }
    }

    /// Shorthand for a [`StoreError::Corrupt`] from any displayable error.
    pub(crate) fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}
