//! The protocol's limits. They are part of the protocol: the gateway announces them in
//! its welcome, and both ends enforce them before allocating or storing anything.

use serde::{Deserialize, Serialize};

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
