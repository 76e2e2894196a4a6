//! The record hash chain: every device's field records form one chain, each record's
//! hash covering the previous record's hash, so an edit, a deletion or an insertion
//! anywhere is visible (DOMAIN R3, 留痕 / 防删改).
//!
//! `hash = SHA-256(previous_hash ‖ canonical_bytes(device, sequence, content))`.
//!
//! The canonical bytes are an explicit length-prefixed encoding, not serde output, so
//! that they never change with a library version and can be recomputed by any
//! verifier from this description:
//!
//! ```text
//! lp(x) = u32 big-endian byte length ‖ bytes of x
//! opt(x) = 0x00 | 0x01 ‖ x
//! lp("fieldsync/record/v1") ‖ lp(device id) ‖ u64 sequence
//! ‖ lp(case number) ‖ lp(target) ‖ lp(stage word) ‖ lp(action kind) ‖ lp(text)
//! ‖ u32 officer count ‖ lp(officer)…
//! ‖ opt(lp(location)) ‖ opt(i32 latitude ‖ i32 longitude)
//! ‖ i64 made_at ‖ u32 recording count ‖ 16-byte recording id…
//! ‖ opt(u64 corrected sequence)
//! ```
//! All integers are big-endian.

use crate::DeviceId;
use crate::hash::Sha256Hash;
pub use crate::message::ChainHead;
use crate::message::{FieldRecord, RecordContent, RejectReason};

/// Tag that starts every record's canonical bytes (domain separation).
pub const RECORD_TAG: &str = "fieldsync/record/v1";

impl ChainHead {
    /// The head after appending `record` (which must have passed [`check_record`]).
    pub fn advance(&self, record: &FieldRecord) -> ChainHead {
        ChainHead {
            next_sequence: record.sequence + 1,
            last_hash: record.hash,
        }
    }
}

fn put_lp(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("fields are bounded by the protocol limits");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_opt(out: &mut Vec<u8>, present: bool) {
    out.push(u8::from(present));
}

/// The canonical bytes of a record's content at a place in a device's chain.
pub fn canonical_bytes(device: &DeviceId, sequence: u64, content: &RecordContent) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + content.text.len());
    put_lp(&mut out, RECORD_TAG.as_bytes());
    put_lp(&mut out, device.as_str().as_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    put_lp(&mut out, content.case_number.as_bytes());
    put_lp(&mut out, content.target.as_bytes());
    put_lp(&mut out, content.stage.as_str().as_bytes());
    put_lp(&mut out, content.action_kind.as_bytes());
    put_lp(&mut out, content.text.as_bytes());
    out.extend_from_slice(&(content.officers.len() as u32).to_be_bytes());
    for officer in &content.officers {
        put_lp(&mut out, officer.as_bytes());
    }
    put_opt(&mut out, content.location.is_some());
    if let Some(location) = &content.location {
        put_lp(&mut out, location.as_bytes());
    }
    put_opt(&mut out, content.coordinates.is_some());
    if let Some(c) = content.coordinates {
        out.extend_from_slice(&c.lat_e6.to_be_bytes());
        out.extend_from_slice(&c.lon_e6.to_be_bytes());
    }
    out.extend_from_slice(&content.made_at.to_be_bytes());
    out.extend_from_slice(&(content.recordings.len() as u32).to_be_bytes());
    for id in &content.recordings {
        out.extend_from_slice(id.as_bytes());
    }
    put_opt(&mut out, content.corrects.is_some());
    if let Some(seq) = content.corrects {
        out.extend_from_slice(&seq.to_be_bytes());
    }
    out
}

/// The hash a record at `sequence` after `previous` must carry.
pub fn record_hash(
    device: &DeviceId,
    sequence: u64,
    previous: &Sha256Hash,
    content: &RecordContent,
) -> Sha256Hash {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(previous.0);
    hasher.update(canonical_bytes(device, sequence, content));
    Sha256Hash(hasher.finalize().into())
}

/// Seals new content as the next record of a chain (the device side).
pub fn seal(device: &DeviceId, head: &ChainHead, content: RecordContent) -> FieldRecord {
    let hash = record_hash(device, head.next_sequence, &head.last_hash, &content);
    FieldRecord {
        sequence: head.next_sequence,
        previous_hash: head.last_hash,
        hash,
        content,
    }
}

/// A record that may join the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The next record: append it and advance the head.
    Append,
    /// The same record is already stored at its sequence number (a replay).
    Duplicate,
}

/// Why a record cannot join the chain: possible tampering, kept as evidence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The record skips sequence numbers.
    #[error("gap: record {got} arrived when {expected} was expected")]
    Gap {
        /// The next sequence number of the chain.
        expected: u64,
        /// The record's sequence number.
        got: u64,
    },
    /// A different record is stored at this sequence number.
    #[error("fork: a different record is already stored at sequence {sequence}")]
    Fork {
        /// The sequence number used twice.
        sequence: u64,
    },
    /// The record's hash does not match its content.
    #[error("altered: record {sequence} does not match its hash")]
    Altered {
        /// The record's sequence number.
        sequence: u64,
    },
    /// The record does not link to the previous stored record.
    #[error("broken link: record {sequence} does not follow the stored record before it")]
    BrokenLink {
        /// The record's sequence number.
        sequence: u64,
    },
}

impl From<&ChainBreak> for RejectReason {
    fn from(b: &ChainBreak) -> Self {
        match b {
            ChainBreak::Gap { expected, .. } => RejectReason::Gap {
                expected: *expected,
            },
            ChainBreak::Fork { .. } => RejectReason::Fork,
            ChainBreak::Altered { .. } => RejectReason::Altered,
            ChainBreak::BrokenLink { .. } => RejectReason::BrokenLink,
        }
    }
}

/// Decides whether `record` may join a chain whose head is `head`.
///
/// `stored_at_sequence` is the hash stored at `record.sequence` when that sequence is
/// already used (the caller looks it up; it is only consulted for
/// `record.sequence < head.next_sequence`).
pub fn check_record(
    device: &DeviceId,
    head: &ChainHead,
    record: &FieldRecord,
    stored_at_sequence: Option<Sha256Hash>,
) -> Result<Accepted, ChainBreak> {
    let sequence = record.sequence;
    if record_hash(device, sequence, &record.previous_hash, &record.content) != record.hash {
        return Err(ChainBreak::Altered { sequence });
    }
    if sequence == 0 {
        return Err(ChainBreak::Gap {
            expected: head.next_sequence,
            got: 0,
        });
    }
    if sequence < head.next_sequence {
        return match stored_at_sequence {
            Some(stored) if stored == record.hash => Ok(Accepted::Duplicate),
            _ => Err(ChainBreak::Fork { sequence }),
        };
    }
    if sequence > head.next_sequence {
        return Err(ChainBreak::Gap {
            expected: head.next_sequence,
            got: sequence,
        });
    }
    if record.previous_hash != head.last_hash {
        return Err(ChainBreak::BrokenLink { sequence });
    }
    Ok(Accepted::Append)
}

/// Verifies a whole stored chain from its first record, in sequence order.
pub fn verify_chain<'a>(
    device: &DeviceId,
    records: impl IntoIterator<Item = &'a FieldRecord>,
) -> Result<ChainHead, ChainBreak> {
    let mut head = ChainHead::GENESIS;
    for record in records {
        match check_record(device, &head, record, None)? {
            Accepted::Append => head = head.advance(record),
            Accepted::Duplicate => {
                return Err(ChainBreak::Fork {
                    sequence: record.sequence,
                });
            }
        }
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{numbered_content as content, seal_chain};

    fn device() -> DeviceId {
        DeviceId::new("dev-1").unwrap()
    }

    fn chain(n: u64) -> Vec<FieldRecord> {
        seal_chain(&device(), ChainHead::GENESIS, (1..=n).map(content)).0
    }

    #[test]
    fn a_sealed_chain_verifies() {
        let records = chain(5);
        let head = verify_chain(&device(), &records).unwrap();
        assert_eq!(head.next_sequence, 6);
        assert_eq!(head.last_hash, records[4].hash);
    }

    #[test]
    fn the_same_content_on_another_device_has_another_hash() {
        let other = DeviceId::new("dev-2").unwrap();
        let r = chain(1).remove(0);
        assert_ne!(
            record_hash(&other, 1, &Sha256Hash::ZERO, &r.content),
            r.hash
        );
    }

    #[test]
    fn gap_is_detected() {
        let records = chain(3);
        let head = ChainHead::GENESIS.advance(&records[0]);
        assert_eq!(
            check_record(&device(), &head, &records[2], None),
            Err(ChainBreak::Gap {
                expected: 2,
                got: 3
            })
        );
        let missing_middle = [records[0].clone(), records[2].clone()];
        assert!(matches!(
            verify_chain(&device(), &missing_middle),
            Err(ChainBreak::Gap { .. })
        ));
    }

    #[test]
    fn fork_and_duplicate_are_told_apart() {
        let records = chain(2);
        let head = ChainHead::GENESIS.advance(&records[0]).advance(&records[1]);
        assert_eq!(
            check_record(&device(), &head, &records[0], Some(records[0].hash)),
            Ok(Accepted::Duplicate)
        );
        let other = seal(&device(), &ChainHead::GENESIS, content(99));
        assert_eq!(
            check_record(&device(), &head, &other, Some(records[0].hash)),
            Err(ChainBreak::Fork { sequence: 1 })
        );
    }

    #[test]
    fn a_single_altered_byte_is_detected() {
        let records = chain(3);
        let mut altered = records.clone();
        altered[1].content.text.replace_range(0..1, "E");
        assert_eq!(
            verify_chain(&device(), &altered),
            Err(ChainBreak::Altered { sequence: 2 })
        );
        let mut flipped = records[1].clone();
        flipped.hash.0[31] ^= 1;
        let head = ChainHead::GENESIS.advance(&records[0]);
        assert_eq!(
            check_record(&device(), &head, &flipped, None),
            Err(ChainBreak::Altered { sequence: 2 })
        );
    }

    #[test]
    fn a_resealed_record_breaks_the_link() {
        let records = chain(3);
        let head = ChainHead::GENESIS.advance(&records[0]);
        let mut forged = records[1].clone();
        forged.previous_hash = Sha256Hash::of(b"not the first record");
        forged.hash = record_hash(&device(), 2, &forged.previous_hash, &forged.content);
        assert_eq!(
            check_record(&device(), &head, &forged, None),
            Err(ChainBreak::BrokenLink { sequence: 2 })
        );
    }

    #[test]
    fn canonical_bytes_distinguish_field_boundaries() {
        let mut a = content(1);
        let mut b = content(1);
        a.case_number = "AB".into();
        a.target = "C".into();
        b.case_number = "A".into();
        b.target = "BC".into();
        assert_ne!(
            canonical_bytes(&device(), 1, &a),
            canonical_bytes(&device(), 1, &b)
        );
    }
}
