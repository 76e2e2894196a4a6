//! The protocol's limits. They are part of the protocol: the gateway announces them in
//! its welcome, and both ends enforce them before allocating or storing anything.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The most items any push (records, identity checks) may carry, whatever a gateway
/// configures. The decoder stops at the first item past it, so a push that declares or
/// holds more is refused while it is decoded, before its items are allocated; a
/// gateway's configured limit (at most this) is then checked on the decoded push.
pub const PUSH_ITEMS_CEILING: u32 = 4096;

/// Limits a gateway enforces and announces to devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest frame body in bytes; a longer length prefix is refused unread.
    pub max_frame_bytes: u32,
    /// Most field records in one push.
    pub max_records_per_push: u32,
    /// Most identity checks in one push.
    pub max_identity_checks_per_push: u32,
    /// Largest recording in bytes.
    pub max_recording_bytes: u64,
    /// Largest text of one field record in bytes.
    pub max_text_bytes: u32,
    /// Longest short field (case number, target, action kind, certificate number,
    /// location, agent version) in bytes.
    pub max_field_bytes: u32,
    /// Most officers named in one field record.
    pub max_officers_per_record: u32,
    /// Most recordings linked from one field record.
    pub max_recordings_per_record: u32,
    /// Most roster entries in one delta.
    pub max_roster_entries: u32,
    /// Most requests (streams) a device may have open at once. An agent sends one
    /// request at a time plus at most one upload, so 4 leaves room; quinn keeps a slot
    /// per allowed stream in every connection, idle or not, so each one costs memory
    /// on every device the gateway holds.
    pub max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 1 << 20,
            max_records_per_push: 256,
            max_identity_checks_per_push: 256,
            max_recording_bytes: 8 << 30,
            max_text_bytes: 16 << 10,
            max_field_bytes: 256,
            max_officers_per_record: 16,
            max_recordings_per_record: 32,
            max_roster_entries: 1000,
            max_concurrent_streams: 4,
        }
    }
}

/// A field that breaks a limit or a shape rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidField {
    /// The field's name as it appears in the message.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl InvalidField {
    /// Builds the error.
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

impl Limits {
    /// Checks a short required field: not blank, within `max_field_bytes`.
    pub fn check_short(&self, field: &'static str, value: &str) -> Result<(), InvalidField> {
        if value.trim().is_empty() {
            return Err(InvalidField::new(field, "must not be empty"));
        }
        self.check_optional_short(field, value)
    }

    /// Checks a short optional field's length.
    pub fn check_optional_short(
        &self,
        field: &'static str,
        value: &str,
    ) -> Result<(), InvalidField> {
        check_len(field, value.len(), self.max_field_bytes as usize)
    }

    /// Checks a count against a maximum.
    pub fn check_count(field: &'static str, count: usize, max: u32) -> Result<(), InvalidField> {
        if count > max as usize {
            return Err(InvalidField::new(
                field,
                format!("{count} items; at most {max} are allowed"),
            ));
        }
        Ok(())
    }
}

/// Checks a byte length against a maximum.
pub(crate) fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), InvalidField> {
    if len > max {
        return Err(InvalidField::new(
            field,
            format!("{len} bytes; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// Deserializes a push's item list, refusing more than [`PUSH_ITEMS_CEILING`] items as
/// soon as the declared length or the item count passes it (used with
/// `#[serde(deserialize_with = ...)]`).
pub(crate) fn bounded_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {PUSH_ITEMS_CEILING} items")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let ceiling = PUSH_ITEMS_CEILING as usize;
            let too_many = |n: usize| {
                serde::de::Error::custom(format!(
                    "{n} items; a push holds at most {PUSH_ITEMS_CEILING}"
                ))
            };
            let declared = seq.size_hint().unwrap_or(0);
            if declared > ceiling {
                return Err(too_many(declared));
            }
            let mut items = Vec::with_capacity(declared.min(256));
            while let Some(item) = seq.next_element()? {
                if items.len() == ceiling {
                    return Err(too_many(ceiling + 1));
                }
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_seq(Bounded(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Push {
        #[serde(deserialize_with = "bounded_list")]
        items: Vec<u8>,
    }

    #[derive(Serialize)]
    struct Plain {
        items: Vec<u8>,
    }

    fn decode(n: usize) -> Result<Push, ciborium::de::Error<std::io::Error>> {
        let mut bytes = Vec::new();
        ciborium::into_writer(&Plain { items: vec![1; n] }, &mut bytes).unwrap();
        ciborium::from_reader(bytes.as_slice())
    }

    #[test]
    fn a_push_at_the_ceiling_decodes_and_one_more_item_is_refused() {
        let ceiling = PUSH_ITEMS_CEILING as usize;
        assert_eq!(decode(ceiling).unwrap().items.len(), ceiling);
        let err = decode(ceiling + 1).unwrap_err().to_string();
        assert!(err.contains("at most 4096"), "{err}");
    }

    #[test]
    fn a_declared_length_past_the_ceiling_is_refused_before_any_item() {
        // A definite-length CBOR array header claiming 2^32 - 1 items, and no items.
        let mut bytes = Vec::new();
        ciborium::into_writer(&Plain { items: vec![] }, &mut bytes).unwrap();
        let header = bytes.len() - 1;
        bytes.truncate(header);
        bytes.extend_from_slice(&[0x9a, 0xff, 0xff, 0xff, 0xff]);
        let err = ciborium::from_reader::<Push, _>(bytes.as_slice())
            .unwrap_err()
            .to_string();
        assert!(err.contains("4294967295 items"), "{err}");
    }
}
