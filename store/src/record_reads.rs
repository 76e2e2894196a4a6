//! Reading field records back: the full-process record of one case or enforcement
//! target, in order, each record's hash and link re-verified (DOMAIN R3: 可回溯,
//! 防删改), and the tamper and two-officer flags supervisors act on.

use protocol::chain::{ChainBreak, record_hash};
use protocol::hash::Sha256Hash;
use protocol::message::{Coordinates, FieldRecord, RecordContent};
use protocol::two_officer::NotCounted;
use protocol::{DeviceId, Millis};
use uuid::Uuid;

use super::records::parse_hash;
use super::rows::convert_all;
use super::{Store, StoreError};

/// A stored field record with where it came from and whether its chain still holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// The device whose chain it belongs to.
    pub device: DeviceId,
    /// The record as the device sealed it.
    pub record: FieldRecord,
    /// Its time on the gateway's clock (device time corrected by the measured skew, or
    /// when it arrived if the device's clock could not be trusted).
    pub made_at_gateway: Millis,
    /// The device's clock could not be trusted for its time (DOMAIN R2).
    pub clock_implausible: bool,
    /// When the gateway stored it.
    pub received_at: Millis,
    /// `None` when the record's hash matches its content and it links to the stored
    /// record before it; otherwise what is wrong (someone edited the database).
    pub chain_break: Option<ChainBreak>,
}

/// Every record of one case or enforcement target, in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordView {
    /// The records, ordered by gateway time, then device and sequence.
    pub records: Vec<StoredRecord>,
}

impl RecordView {
    /// True when every record's hash and link verified.
    pub fn chain_verified(&self) -> bool {
        self.records.iter().all(|r| r.chain_break.is_none())
    }
}

/// A record refused as possible tampering, with the bytes the device sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TamperFlag {
    /// Store-assigned id.
    pub id: i64,
    /// The device that sent it.
    pub device: DeviceId,
    /// The record's sequence number.
    pub sequence: u64,
    /// `fork`, `gap`, `altered` or `broken_link`.
    pub reason: String,
    /// For a gap: the sequence number the chain expected.
    pub expected_sequence: Option<u64>,
    /// The hash the record carried.
    pub record_hash: String,
    /// The record as received (CBOR of the protocol's `FieldRecord`).
    pub evidence: Vec<u8>,
    /// When the gateway flagged it.
    pub flagged_at: Millis,
}

impl TamperFlag {
    /// The refused record, decoded from the evidence bytes.
    pub fn record(&self) -> Result<FieldRecord, StoreError> {
        ciborium::from_reader(self.evidence.as_slice())
            .map_err(|e| StoreError::corrupt("tamper evidence", e))
    }
}

/// A stored record whose officers did not satisfy the two-officer rule at its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwoOfficerFlag {
    /// The device.
    pub device: DeviceId,
    /// The record's sequence number.
    pub sequence: u64,
    /// The record's action kind.
    pub action_kind: String,
    /// Distinct certified officers present.
    pub certified: u32,
    /// Certified officers required.
    pub required: u32,
    /// The listed numbers that did not count, and why.
    pub not_counted: Vec<NotCounted>,
    /// When the gateway flagged it.
    pub flagged_at: Millis,
}

const SELECT_RECORD: &str = "SELECT r.device_id, r.sequence, r.previous_hash, r.hash, \
     r.case_number, r.target, r.stage, r.action_kind, r.text, r.officers, r.location, \
     r.lat_e6, r.lon_e6, r.made_at, r.made_at_gateway, r.recordings, r.corrects, \
     r.received_at, r.clock_implausible, p.hash AS predecessor_hash \
     FROM field_records r LEFT JOIN field_records p \
     ON p.device_id = r.device_id AND p.sequence = r.sequence - 1";

#[derive(sqlx::FromRow)]
struct RawRecord {
    device_id: String,
    sequence: i64,
    previous_hash: String,
    hash: String,
    case_number: String,
    target: String,
    stage: String,
    action_kind: String,
    text: String,
    officers: String,
    location: Option<String>,
    lat_e6: Option<i64>,
    lon_e6: Option<i64>,
    made_at: i64,
    made_at_gateway: i64,
    recordings: String,
    corrects: Option<i64>,
    received_at: i64,
    clock_implausible: bool,
    predecessor_hash: Option<String>,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt("field record", e)
}

impl TryFrom<RawRecord> for StoredRecord {
    type Error = StoreError;
    fn try_from(r: RawRecord) -> Result<Self, StoreError> {
        let device = DeviceId::new(r.device_id).map_err(corrupt)?;
        let sequence = u64::try_from(r.sequence).map_err(corrupt)?;
        let coordinates = match (r.lat_e6, r.lon_e6) {
            (Some(lat), Some(lon)) => Some(Coordinates {
                lat_e6: i32::try_from(lat).map_err(corrupt)?,
                lon_e6: i32::try_from(lon).map_err(corrupt)?,
            }),
            _ => None,
        };
        let content = RecordContent {
            case_number: r.case_number,
            target: r.target,
            stage: r.stage.parse().map_err(corrupt)?,
            action_kind: r.action_kind,
            text: r.text,
            officers: serde_json::from_str(&r.officers).map_err(corrupt)?,
            location: r.location,
            coordinates,
            made_at: r.made_at,
            recordings: serde_json::from_str::<Vec<Uuid>>(&r.recordings).map_err(corrupt)?,
            corrects: r.corrects.map(u64::try_from).transpose().map_err(corrupt)?,
        };
        let record = FieldRecord {
            sequence,
            previous_hash: parse_hash(&r.previous_hash)?,
            hash: parse_hash(&r.hash)?,
            content,
        };
        let predecessor = r.predecessor_hash.as_deref().map(parse_hash).transpose()?;
        let chain_break = verify_stored(&device, &record, predecessor);
        Ok(StoredRecord {
            device,
            record,
            made_at_gateway: r.made_at_gateway,
            clock_implausible: r.clock_implausible,
            received_at: r.received_at,
            chain_break,
        })
    }
}

/// Re-verifies a stored record: its hash covers its content, and it links to the
/// stored record before it (or to the zero hash when it is the first).
fn verify_stored(
    device: &DeviceId,
    record: &FieldRecord,
    predecessor: Option<Sha256Hash>,
) -> Option<ChainBreak> {
    let sequence = record.sequence;
    if record_hash(device, sequence, &record.previous_hash, &record.content) != record.hash {
        return Some(ChainBreak::Altered { sequence });
    }
    let expected = match (sequence, predecessor) {
        (1, _) => Sha256Hash::ZERO,
        (_, Some(hash)) => hash,
        (_, None) => {
            return Some(ChainBreak::Gap {
                expected: sequence - 1,
                got: sequence,
            });
        }
    };
    (record.previous_hash != expected).then_some(ChainBreak::BrokenLink { sequence })
}

#[derive(sqlx::FromRow)]
struct RawTamperFlag {
    id: i64,
    device_id: String,
    sequence: i64,
    reason: String,
    expected_sequence: Option<i64>,
    record_hash: String,
    evidence: Vec<u8>,
    flagged_at: i64,
}

impl TryFrom<RawTamperFlag> for TamperFlag {
    type Error = StoreError;
    fn try_from(r: RawTamperFlag) -> Result<Self, StoreError> {
        Ok(TamperFlag {
            id: r.id,
            device: DeviceId::new(r.device_id).map_err(corrupt)?,
            sequence: r.sequence as u64,
            reason: r.reason,
            expected_sequence: r.expected_sequence.map(|s| s as u64),
            record_hash: r.record_hash,
            evidence: r.evidence,
            flagged_at: r.flagged_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawTwoOfficerFlag {
    device_id: String,
    sequence: i64,
    action_kind: String,
    certified: i64,
    required: i64,
    not_counted: String,
    flagged_at: i64,
}

impl TryFrom<RawTwoOfficerFlag> for TwoOfficerFlag {
    type Error = StoreError;
    fn try_from(r: RawTwoOfficerFlag) -> Result<Self, StoreError> {
        Ok(TwoOfficerFlag {
            device: DeviceId::new(r.device_id).map_err(corrupt)?,
            sequence: r.sequence as u64,
            action_kind: r.action_kind,
            certified: u32::try_from(r.certified).map_err(corrupt)?,
            required: u32::try_from(r.required).map_err(corrupt)?,
            not_counted: serde_json::from_str(&r.not_counted).map_err(corrupt)?,
            flagged_at: r.flagged_at,
        })
    }
}

impl Store {
    async fn record_view(&self, column: &str, value: &str) -> Result<RecordView, StoreError> {
        let sql = format!(
            "{SELECT_RECORD} WHERE r.{column} = $1 \
             ORDER BY r.made_at_gateway, r.device_id, r.sequence"
        );
        let raw: Vec<RawRecord> = on_pool!(self.db(), p => {
            sqlx::query_as(&sql).bind(value).fetch_all(p).await?
        });
        Ok(RecordView {
            records: convert_all(raw)?,
        })
    }

    /// Every record of one case, in time order, each re-verified (DOMAIN R3).
    pub async fn case_records(&self, case_number: &str) -> Result<RecordView, StoreError> {
        self.record_view("case_number", case_number).await
    }

    /// Every record about one enforcement target, in time order, each re-verified
    /// (一户式集中储存).
    pub async fn target_records(&self, target: &str) -> Result<RecordView, StoreError> {
        self.record_view("target", target).await
    }

    /// One device's stored chain, in sequence order, each record re-verified.
    pub async fn device_records(&self, device: &DeviceId) -> Result<Vec<StoredRecord>, StoreError> {
        let sql = format!("{SELECT_RECORD} WHERE r.device_id = $1 ORDER BY r.sequence");
        let raw: Vec<RawRecord> = on_pool!(self.db(), p => {
            sqlx::query_as(&sql).bind(device.as_str()).fetch_all(p).await?
        });
        convert_all(raw)
    }

    /// Tamper flags, oldest first, optionally of one device.
    pub async fn tamper_flags(
        &self,
        device: Option<&DeviceId>,
    ) -> Result<Vec<TamperFlag>, StoreError> {
        let raw: Vec<RawTamperFlag> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT id, device_id, sequence, reason, expected_sequence, record_hash, \
                 evidence, flagged_at FROM tamper_flags \
                 WHERE $1 IS NULL OR device_id = $1 ORDER BY id",
            )
            .bind(device.map(|d| d.as_str()))
            .fetch_all(p)
            .await?
        });
        convert_all(raw)
    }

    /// Two-officer flags in force (each record's latest change, when it raised the
    /// flag), oldest first.
    pub async fn two_officer_flags(&self) -> Result<Vec<TwoOfficerFlag>, StoreError> {
        let raw: Vec<RawTwoOfficerFlag> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT c.device_id, c.sequence, c.action_kind, c.certified, c.required, \
                 c.not_counted, c.at AS flagged_at FROM two_officer_flag_changes c \
                 WHERE c.raised AND c.id = (SELECT MAX(n.id) FROM two_officer_flag_changes n \
                 WHERE n.device_id = c.device_id AND n.sequence = c.sequence) \
                 ORDER BY c.at, c.device_id, c.sequence",
            )
            .fetch_all(p)
            .await?
        });
        convert_all(raw)
    }

    /// How many field records are stored in all (for tests and reports).
    pub async fn record_count(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self.db(), p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM field_records").fetch_one(p).await?
        });
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::chain::{ChainHead, seal};
    use protocol::domain::Stage;
    use protocol::test_util::record_content;

    fn content() -> RecordContent {
        RecordContent {
            stage: Stage::Archive,
            ..record_content("C", "x", 1)
        }
    }

    #[test]
    fn stored_records_are_reverified() {
        let d = DeviceId::new("dev-1").unwrap();
        let first = seal(&d, &ChainHead::GENESIS, content());
        let second = seal(&d, &ChainHead::GENESIS.advance(&first), content());
        assert_eq!(verify_stored(&d, &first, None), None);
        assert_eq!(verify_stored(&d, &second, Some(first.hash)), None);
        assert_eq!(
            verify_stored(&d, &second, None),
            Some(ChainBreak::Gap {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            verify_stored(&d, &second, Some(Sha256Hash::ZERO)),
            Some(ChainBreak::BrokenLink { sequence: 2 })
        );
        let mut edited = second.clone();
        edited.content.text = "y".into();
        assert_eq!(
            verify_stored(&d, &edited, Some(first.hash)),
            Some(ChainBreak::Altered { sequence: 2 })
        );
    }
}
