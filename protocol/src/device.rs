//! Device identity as it appears in certificates: the device id, the URI SAN that
//! carries it, and the certificate fingerprint the gateway enrolls.
//!
//! Kept here (pure, no X.509 parsing) so that `certs-dev`, the gateway and the agent
//! agree on one spelling of each.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix of the URI subject alternative name that names a device in its certificate.
pub const DEVICE_URI_PREFIX: &str = "urn:fieldsync:device:";

/// Longest device id accepted anywhere (ids appear in URIs, file names and logs).
pub const MAX_DEVICE_ID_LEN: usize = 64;

/// A device's id: ASCII letters, digits, `-`, `_` and `.`; 1 to 64 characters.
///
/// Restricted so that it is safe as a file name, in a URI and in a log line without
/// escaping. Shared, not copied, when cloned: the gateway keeps a connected device's id
/// in its connection, its live-table entry and its guard, for every idle device.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(Arc<str>);

/// Why a string is not a valid [`DeviceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    /// The id is empty.
    #[error("device id is empty")]
    Empty,
    /// The id is longer than [`MAX_DEVICE_ID_LEN`].
    #[error("device id is {0} characters long; at most {MAX_DEVICE_ID_LEN} are allowed")]
    TooLong(usize),
    /// The id holds a character outside `[A-Za-z0-9._-]`.
    #[error("device id contains {0:?}; only letters, digits, '-', '_' and '.' are allowed")]
    BadCharacter(char),
    /// A URI did not start with [`DEVICE_URI_PREFIX`].
    #[error("URI {0:?} does not start with {DEVICE_URI_PREFIX}")]
    NotADeviceUri(String),
}

impl DeviceId {
    /// Validates and wraps a device id.
    pub fn new(id: impl Into<String>) -> Result<Self, DeviceIdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(DeviceIdError::Empty);
        }
        if id.len() > MAX_DEVICE_ID_LEN {
            return Err(DeviceIdError::TooLong(id.len()));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(DeviceIdError::BadCharacter(c));
        }
        if id == "." || id == ".." {
            return Err(DeviceIdError::BadCharacter('.'));
        }
        Ok(Self(id.into()))
    }

    /// Parses the id out of a `urn:fieldsync:device:<id>` URI SAN.
    pub fn from_uri(uri: &str) -> Result<Self, DeviceIdError> {
        match uri.strip_prefix(DEVICE_URI_PREFIX) {
            Some(id) => Self::new(id),
            None => Err(DeviceIdError::NotADeviceUri(uri.to_owned())),
        }
    }

    /// The URI SAN that names this device in its certificate.
    pub fn uri(&self) -> String {
        format!("{DEVICE_URI_PREFIX}{}", self.0)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DeviceId {
    type Error = DeviceIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<DeviceId> for String {
    fn from(id: DeviceId) -> Self {
        id.0.as_ref().to_owned()
    }
}

impl std::str::FromStr for DeviceId {
    type Err = DeviceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// SHA-256 of a certificate's DER bytes, as 64 lowercase hex digits.
///
/// This is what the gateway enrolls and checks on every handshake: a certificate that
/// chains to the fleet CA is still refused unless this fingerprint is enrolled and in
/// service, so a revoked device cannot come back with its old certificate.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trip() {
        let id = DeviceId::new("dev-00042").unwrap();
        assert_eq!(id.uri(), "urn:fieldsync:device:dev-00042");
        assert_eq!(DeviceId::from_uri(&id.uri()).unwrap(), id);
    }

    #[test]
    fn rejects_unsafe_ids() {
        assert_eq!(DeviceId::new(""), Err(DeviceIdError::Empty));
        assert_eq!(DeviceId::new("a/b"), Err(DeviceIdError::BadCharacter('/')));
        assert_eq!(DeviceId::new(".."), Err(DeviceIdError::BadCharacter('.')));
        assert!(matches!(
            DeviceId::new("x".repeat(65)),
            Err(DeviceIdError::TooLong(65))
        ));
        assert!(matches!(
            DeviceId::from_uri("urn:other:dev-1"),
            Err(DeviceIdError::NotADeviceUri(_))
        ));
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            certificate_fingerprint(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
