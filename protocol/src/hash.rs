//! A SHA-256 digest as a value type, encoded as a CBOR byte string.
//!
//! Used for record hashes, recording content hashes and audit entries. A plain
//! `[u8; 32]` would serialize as an array of 32 integers; this type keeps the wire
//! compact and the hex form readable in logs.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sha256Hash(pub [u8; 32]);

impl Sha256Hash {
    /// The all-zero hash that stands before the first record of every chain.
    pub const ZERO: Sha256Hash = Sha256Hash([0; 32]);

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, HashParseError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).map_err(|_| HashParseError(s.to_owned()))?;
        Ok(Self(out))
    }

    /// Builds a hash from a byte slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashParseError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| HashParseError(format!("{} bytes", bytes.len())))
    }
}

/// A string or byte slice that is not a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SHA-256 digest (64 hex digits / 32 bytes)")]
pub struct HashParseError(pub String);

impl fmt::Debug for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hash({})", self.to_hex())
    }
}

impl fmt::Display for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Sha256Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Sha256Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HashVisitor;
        impl<'de> Visitor<'de> for HashVisitor {
            type Value = Sha256Hash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SHA-256 digest (32 bytes or 64 hex digits)")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Sha256Hash::from_slice(v).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Sha256Hash::from_hex(v).map_err(E::custom)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(HashVisitor)
        } else {
            d.deserialize_bytes(HashVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Sha256Hash::of(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(Sha256Hash::from_hex("abc").is_err());
        assert!(Sha256Hash::from_slice(&[0; 31]).is_err());
    }
}
