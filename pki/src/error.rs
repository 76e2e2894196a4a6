//! The one error type of the PKI library, grouped by whose fault the failure is.
//!
//! Every message names the thing at fault (a path, a flag, a device) and the problem,
//! because the person reading it is an operator at a terminal, not a debugger. The
//! binary maps [`PkiError::is_usage`] to exit code 64 and everything else to 1.

use std::io;
use std::path::PathBuf;

use time::OffsetDateTime;

/// Why making, loading or writing a piece of the development PKI failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    // ---- The request is invalid (usage errors). ----
    /// `devices` was 0: a PKI without devices is of no use to anyone.
    #[error("--devices must be at least 1: a development PKI needs at least one device")]
    NoDevices,
    /// More devices than one run makes (protects the disk from a typo).
    #[error("--devices {requested} is more than the {max} devices this tool makes in one run")]
    TooManyDevices {
        /// The number asked for.
        requested: u32,
        /// The limit, [`crate::MAX_DEVICES`].
        max: u32,
    },
    /// A validity period given in days was 0 or too long to represent.
    #[error("{what}: {reason}")]
    InvalidValidity {
        /// Which validity (for example `"--device-days"`).
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A validity whose end is not after its start.
    #[error(
        "{what} would never be valid: not_after {not_after} is not later than not_before {not_before}"
    )]
    EmptyValidity {
        /// Which certificate.
        what: String,
        /// Start of the validity period.
        not_before: OffsetDateTime,
        /// End of the validity period.
        not_after: OffsetDateTime,
    },
    /// A gateway name that is neither an IP address nor a DNS name.
    #[error(
        "gateway name {name:?} is neither an IP address nor a DNS name \
         (labels of letters, digits and '-', separated by '.', optionally starting with '*.')"
    )]
    InvalidGatewayName {
        /// The rejected name.
        name: String,
    },
    /// The output folder path is empty.
    #[error("--out must name a folder; it is empty")]
    EmptyOutputPath,
    /// The gateway certificate would name no host at all.
    #[error("a gateway certificate needs at least one name (DNS name or IP address)")]
    NoGatewayNames,
    /// A device serial that cannot be a certificate common name.
    #[error("device serial {serial:?} cannot be used as a certificate common name: {reason}")]
    InvalidSerial {
        /// The rejected serial.
        serial: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    // ---- The output folder is not in a state we may write into. ----
    /// The folder already holds a fleet CA and `force` was not set.
    #[error(
        "{} already holds a fleet CA ({}); refusing to overwrite it \
         (every device enrolled with it would stop working): pass --force to replace the whole PKI",
        dir.display(), crate::layout::CA_CERT_FILE
    )]
    CaExists {
        /// The output folder.
        dir: PathBuf,
    },
    /// The folder holds other files and `force` was not set.
    #[error(
        "{} is not empty (it contains {entry:?}); refusing to write a PKI among other files: \
         use a new or empty folder, or pass --force",
        dir.display()
    )]
    DirNotEmpty {
        /// The output folder.
        dir: PathBuf,
        /// One entry found in it.
        entry: String,
    },
    /// Something that must be a folder is not one.
    #[error("{} exists and is not a folder", path.display())]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// The folder that would hold the output folder does not exist.
    #[error("cannot create {}: its parent folder {} does not exist", dir.display(), parent.display())]
    ParentMissing {
        /// The output folder.
        dir: PathBuf,
        /// Its missing parent.
        parent: PathBuf,
    },

    // ---- Material we were given is invalid. ----
    /// A certificate that does not parse or is unusable for its role.
    #[error("{what} is not a usable certificate: {reason}")]
    BadCertificate {
        /// Which certificate (a path or a role).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A private key that does not parse or does not fit its certificate.
    #[error("{what} is not a usable private key: {reason}")]
    BadKey {
        /// Which key (a path or a role).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate signing request that is malformed, badly signed or unsupported.
    #[error("the certificate signing request for device {device} is refused: {reason}")]
    BadCsr {
        /// The device it was to be signed for.
        device: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CSR itself names a different device than the one it is being signed for.
    #[error(
        "the certificate signing request names device {named}, but it was submitted for device \
         {requested}: refusing to give one device's key another device's identity"
    )]
    CsrNamesOtherDevice {
        /// The device the caller asked to sign for.
        requested: String,
        /// The device the CSR's URI SAN names.
        named: String,
    },
    /// An enrollment file that does not follow the format.
    #[error("{what} is not a valid enrollment file: {reason}")]
    BadEnrollment {
        /// Which file (or "enrollment data").
        what: String,
        /// What is wrong, with the line when known.
        reason: String,
    },

    // ---- We failed. ----
    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What we were doing, phrased to follow "cannot".
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// Key generation or certificate signing failed inside rcgen.
    #[error("cannot {what}: {source}")]
    Sign {
        /// What we were making, phrased to follow "cannot".
        what: String,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },
    /// The operating system's random number generator failed.
    #[error("cannot read random bytes from the operating system for {what}: {reason}")]
    Randomness {
        /// What the bytes were for.
        what: &'static str,
        /// The reason reported.
        reason: String,
    },
}

impl PkiError {
    /// True when the caller asked for something invalid (exit code 64, `EX_USAGE`), as
    /// opposed to a problem with the file system, existing files or input material.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            PkiError::NoDevices
                | PkiError::EmptyOutputPath
                | PkiError::TooManyDevices { .. }
                | PkiError::InvalidValidity { .. }
                | PkiError::EmptyValidity { .. }
                | PkiError::InvalidGatewayName { .. }
                | PkiError::NoGatewayNames
                | PkiError::InvalidSerial { .. }
        )
    }

    /// Shorthand for [`PkiError::Io`].
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PkiError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`PkiError::Sign`].
    pub(crate) fn sign(what: impl Into<String>, source: rcgen::Error) -> Self {
        PkiError::Sign {
            what: what.into(),
            source,
        }
    }
}
