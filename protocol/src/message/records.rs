//! Field records (DOMAIN R3) and their per-record acknowledgements.
//!
//! A field record is one entry of a case's full-process record, made on the device
//! and sealed into the device's hash chain (see [`crate::chain`]) when it is made.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Millis;
use crate::domain::Stage;
use crate::hash::Sha256Hash;
use crate::limits::{InvalidField, Limits, check_len};

/// Coordinates in millionths of a degree (integers keep the canonical encoding exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coordinates {
    /// Latitude × 10⁶, −90e6..=90e6.
    pub lat_e6: i32,
    /// Longitude × 10⁶, −180e6..=180e6.
    pub lon_e6: i32,
}

/// What a field record says. Everything here is covered by the record's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordContent {
    /// The case number the record belongs to.
    pub case_number: String,
    /// The enforcement target (person or organisation), so all records about one
    /// target can be read together (一户式集中储存).
    pub target: String,
    /// The stage of the enforcement action.
    pub stage: Stage,
    /// The action kind (for example `inspection`, `seizure`, `penalty_decision`);
    /// policy lists decide which kinds need two officers or audio-video.
    pub action_kind: String,
    /// The record's text.
    pub text: String,
    /// Certificate numbers of the officers present.
    pub officers: Vec<String>,
    /// Where, in words.
    pub location: Option<String>,
    /// Where, as coordinates.
    pub coordinates: Option<Coordinates>,
    /// When, on the device's clock.
    pub made_at: Millis,
    /// Recordings (audio/video) that document this record.
    pub recordings: Vec<Uuid>,
    /// The sequence number of an earlier record this one corrects: records are never
    /// edited, corrections are new records (防删改).
    pub corrects: Option<u64>,
}

impl RecordContent {
    /// Checks every field against the limits and shape rules.
    pub fn validate(&self, limits: &Limits) -> Result<(), InvalidField> {
        limits.check_short("case_number", &self.case_number)?;
        limits.check_short("target", &self.target)?;
        limits.check_short("action_kind", &self.action_kind)?;
        check_len("text", self.text.len(), limits.max_text_bytes as usize)?;
        Limits::check_count(
            "officers",
            self.officers.len(),
            limits.max_officers_per_record,
        )?;
        for officer in &self.officers {
            limits.check_short("officers", officer)?;
        }
        if let Some(location) = &self.location {
            limits.check_optional_short("location", location)?;
        }
        if let Some(c) = self.coordinates
            && (!(-90_000_000..=90_000_000).contains(&c.lat_e6)
                || !(-180_000_000..=180_000_000).contains(&c.lon_e6))
        {
            return Err(InvalidField::new(
                "coordinates",
                "latitude or longitude out of range",
            ));
        }
        Limits::check_count(
            "recordings",
            self.recordings.len(),
            limits.max_recordings_per_record,
        )?;
        self.check_no_nul()
    }

    /// No text field may hold a NUL character: PostgreSQL text cannot store one, and a
    /// record one gateway store cannot keep must be refused by every gateway (and by the
    /// agent before it seals the record into its chain).
    fn check_no_nul(&self) -> Result<(), InvalidField> {
        let texts = [
            ("case_number", Some(self.case_number.as_str())),
            ("target", Some(self.target.as_str())),
            ("action_kind", Some(self.action_kind.as_str())),
            ("text", Some(self.text.as_str())),
            ("location", self.location.as_deref()),
        ];
        let officers = self.officers.iter().map(|o| ("officers", Some(o.as_str())));
        for (field, value) in texts.into_iter().chain(officers) {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(InvalidField::new(field, "must not contain NUL characters"));
            }
        }
        Ok(())
    }
}

/// A sealed field record: its content plus its place in the device's hash chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldRecord {
    /// Per-device sequence number, starting at 1, without gaps.
    pub sequence: u64,
    /// The hash of the device's previous record ([`Sha256Hash::ZERO`] for the first).
    pub previous_hash: Sha256Hash,
    /// SHA-256 over (previous hash ‖ canonical bytes); see [`crate::chain`].
    pub hash: Sha256Hash,
    /// What the record says.
    pub content: RecordContent,
}

/// A batch of field records, in sequence order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecords {
    /// The records, oldest first.
    #[serde(deserialize_with = "crate::limits::bounded_list")]
    pub records: Vec<FieldRecord>,
}

/// Why the gateway refused one record. The record is kept as evidence (a tamper
/// flag); refusing it only means it did not join the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The sequence number skips ahead of the chain's next one.
    Gap {
        /// The sequence number the gateway expected.
        expected: u64,
    },
    /// Another record is already stored at this sequence number.
    Fork,
    /// The record's hash does not match its content: it was altered.
    Altered,
    /// The record's previous hash does not match the stored chain.
    BrokenLink,
    /// A field is invalid.
    Invalid {
        /// What is wrong.
        problem: String,
    },
    /// The action kind is not in the gateway's vocabulary (DOMAIN R3: a misspelt kind
    /// is refused, never silently exempt).
    UnknownActionKind {
        /// The kind as sealed.
        action_kind: String,
        /// The codes the gateway knows.
        known: Vec<String>,
    },
}

/// What happened to one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordOutcome {
    /// Durably stored now.
    Stored,
    /// Already stored earlier (a replay); no second copy was made.
    Duplicate,
    /// Not added to the chain.
    Rejected(RejectReason),
}

impl RecordOutcome {
    /// True when the device may drop the record from its outbox.
    pub fn is_durable(&self) -> bool {
        matches!(self, RecordOutcome::Stored | RecordOutcome::Duplicate)
    }
}

/// The acknowledgement of one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAck {
    /// The record's sequence number.
    pub sequence: u64,
    /// What happened to it.
    pub outcome: RecordOutcome,
}

/// The answer to [`PushRecords`]: one ack per record, sent only after the stored ones
/// are durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAcks {
    /// One ack per pushed record, in the same order.
    pub acks: Vec<RecordAck>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> RecordContent {
        crate::test_util::record_content("CASE-1", "checked the licence", 1_700_000_000_000)
    }

    #[test]
    fn a_nul_character_in_any_text_field_is_refused_by_name() {
        let limits = Limits::default();
        assert!(content().validate(&limits).is_ok());
        type Spoil = fn(&mut RecordContent);
        let cases: [(&str, Spoil); 4] = [
            ("text", |c| c.text.push('\0')),
            ("case_number", |c| c.case_number.push('\0')),
            ("location", |c| c.location = Some("a\0b".into())),
            ("officers", |c| c.officers.push("B\0".into())),
        ];
        for (field, spoil) in cases {
            let mut c = content();
            spoil(&mut c);
            let err = c.validate(&limits).unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }
}
