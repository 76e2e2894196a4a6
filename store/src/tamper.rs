//! Tamper flags: records refused as chain breaks, kept as evidence (the bytes the
//! device sent) up to a cap per device, and counted beyond it.
//!
//! Why a cap: a flag holds the refused record, and a device (or a stolen certificate)
//! can refuse itself thousands of records per push — forks at every sequence number
//! it ever used. Unbounded, that filled the disk with evidence of one device and
//! lengthened the group commit every other device waits on. Up to the cap each
//! distinct break is one row (unique on device, sequence, hash and reason, so a record
//! sent again adds nothing); beyond it the device has ONE counter row (how many
//! breaks, first and last time) that supervisors see beside the flags: the device is
//! as visible as before, its evidence is what the first flags hold.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use protocol::chain::ChainBreak;
use protocol::message::{FieldRecord, encode_body};
use protocol::{DeviceId, Millis};

use super::certificate_history::on_conn;
use super::sql::{in_bound_list, json_list, values_list};
use super::tx::TxConn;
use super::{Store, StoreError};

/// Flags per multi-row INSERT (7 columns each).
const FLAGS_PER_INSERT: usize = 100;

/// A tamper flag ready to insert.
pub(crate) struct NewTamperFlag<'a> {
    pub(crate) device: &'a DeviceId,
    pub(crate) record: &'a FieldRecord,
    pub(crate) chain_break: &'a ChainBreak,
}

impl NewTamperFlag<'_> {
    /// What the table's uniqueness is on (besides the device).
    fn key(&self) -> (u64, protocol::hash::Sha256Hash, &'static str) {
        (
            self.record.sequence,
            self.record.hash,
            tamper_reason(self.chain_break).0,
        )
    }
}

/// The stored reason (and, for a gap, the sequence expected) of a chain break.
pub(crate) fn tamper_reason(b: &ChainBreak) -> (&'static str, Option<i64>) {
    match b {
        ChainBreak::Gap { expected, .. } => ("gap", Some(*expected as i64)),
        ChainBreak::Fork { .. } => ("fork", None),
        ChainBreak::Altered { .. } => ("altered", None),
        ChainBreak::BrokenLink { .. } => ("broken_link", None),
    }
}

/// What a group does with its chain breaks.
#[derive(Default)]
pub(crate) struct CappedFlags<'f, 'a> {
    /// Flags to keep as rows (each distinct break once).
    pub(crate) keep: Vec<&'f NewTamperFlag<'a>>,
    /// Per device, breaks beyond its cap: counted, not kept.
    pub(crate) counted: BTreeMap<&'a DeviceId, u64>,
}

/// Splits a group's breaks at the cap: a device that holds `kept[device]` flags keeps at
/// most `cap` in all, distinct breaks first come first kept; the rest are counted
/// (repeats of a break already counted included: without its row nobody can tell).
pub(crate) fn split_at_cap<'f, 'a>(
    flags: &'f [NewTamperFlag<'a>],
    kept: &HashMap<DeviceId, u64>,
    cap: u64,
) -> CappedFlags<'f, 'a> {
    let mut room: HashMap<&DeviceId, u64> = HashMap::new();
    let mut seen = HashSet::new();
    let mut out = CappedFlags::default();
    for flag in flags {
        let left = room
            .entry(flag.device)
            .or_insert_with(|| cap.saturating_sub(kept.get(flag.device).copied().unwrap_or(0)));
        if !seen.insert((flag.device, flag.key())) {
            continue; // The same break twice in one group: one row.
        }
        if *left > 0 {
            *left -= 1;
            out.keep.push(flag);
        } else {
            *out.counted.entry(flag.device).or_default() += 1;
        }
    }
    out
}

/// How many flags each of `devices` holds (devices with none are absent), in one
/// statement. Bounded by the cap, so this count reads at most `cap` index entries per
/// device.
async fn kept_flags(
    conn: &mut TxConn,
    devices: &[&str],
) -> Result<HashMap<DeviceId, u64>, StoreError> {
    let sql = format!(
        "SELECT device_id, COUNT(*) FROM tamper_flags WHERE {} GROUP BY device_id",
        in_bound_list("device_id", 1, conn.placeholders())
    );
    let rows: Vec<(String, i64)> = match conn {
        TxConn::Sqlite(t) => {
            sqlx::query_as(&sql)
                .bind(json_list(devices))
                .fetch_all(&mut **t)
                .await?
        }
        TxConn::Postgres(t) => {
            sqlx::query_as(&sql)
                .bind(devices)
                .fetch_all(&mut **t)
                .await?
        }
    };
    rows.into_iter()
        .map(|(device, count)| {
            let device = DeviceId::new(device).map_err(|e| StoreError::corrupt("device id", e))?;
            Ok((device, u64::try_from(count).unwrap_or(0)))
        })
        .collect()
}

/// Writes a group's tamper flags: rows up to each device's cap, one counter row per
/// device beyond it. Returns how many breaks were counted rather than kept.
pub(crate) async fn write_flags(
    conn: &mut TxConn,
    flags: &[NewTamperFlag<'_>],
    cap: u64,
    now: Millis,
) -> Result<CountedBreaks, StoreError> {
    if flags.is_empty() {
        return Ok(CountedBreaks::default());
    }
    let devices: Vec<&str> = flags
        .iter()
        .map(|f| f.device.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let kept = kept_flags(conn, &devices).await?;
    let split = split_at_cap(flags, &kept, cap);
    for chunk in split.keep.chunks(FLAGS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO tamper_flags (device_id, sequence, reason, expected_sequence, \
             record_hash, evidence, flagged_at) VALUES {} \
             ON CONFLICT (device_id, sequence, record_hash, reason) DO NOTHING",
            values_list(chunk.len(), 7, conn.placeholders())
        );
        on_conn!(conn, c => {
            let mut q = sqlx::query(&sql);
            for flag in chunk {
                let (reason, expected) = tamper_reason(flag.chain_break);
                q = q
                    .bind(flag.device.as_str())
                    .bind(flag.record.sequence as i64)
                    .bind(reason)
                    .bind(expected)
                    .bind(flag.record.hash.to_hex())
                    .bind(encode_body(flag.record))
                    .bind(now);
            }
            q.execute(&mut *c).await?;
        });
    }
    for (device, count) in &split.counted {
        on_conn!(conn, c => {
            sqlx::query(
                "INSERT INTO tamper_flag_counts (device_id, breaks, first_at, last_at) \
                 VALUES ($1, $2, $3, $3) ON CONFLICT (device_id) DO UPDATE SET \
                 breaks = tamper_flag_counts.breaks + excluded.breaks, \
                 last_at = excluded.last_at",
            )
            .bind(device.as_str())
            .bind(i64::try_from(*count).unwrap_or(i64::MAX))
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
    }
    for flag in &split.keep {
        tracing::warn!(
            device = %flag.device, sequence = flag.record.sequence,
            reason = %flag.chain_break, "field record refused as possible tampering"
        );
    }
    for (device, count) in &split.counted {
        tracing::warn!(
            device = %device, count,
            "field records refused as possible tampering beyond the device's cap of flags: counted, not kept"
        );
    }
    Ok(CountedBreaks(split.counted.values().sum()))
}

/// Chain breaks of a group counted beyond their devices' caps (not kept as rows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CountedBreaks(pub(crate) u64);

/// A device's chain breaks beyond its cap of tamper flags: how many, and when the
/// first and the last were refused. Supervisors see it beside the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TamperFlagCount {
    /// The device.
    pub device: DeviceId,
    /// Records refused as chain breaks after the device's flags reached the cap
    /// (each refusal counted, a record sent again included).
    pub breaks: u64,
    /// When the first of them was refused.
    pub first_at: Millis,
    /// When the last of them was refused.
    pub last_at: Millis,
}

impl Store {
    /// Every device's count of chain breaks beyond its cap of tamper flags, by device.
    pub async fn tamper_flag_counts(&self) -> Result<Vec<TamperFlagCount>, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT device_id, breaks, first_at, last_at FROM tamper_flag_counts \
                 ORDER BY device_id",
            )
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(device, breaks, first_at, last_at)| {
                Ok(TamperFlagCount {
                    device: DeviceId::new(device)
                        .map_err(|e| StoreError::corrupt("device id", e))?,
                    breaks: u64::try_from(breaks)
                        .map_err(|e| StoreError::corrupt("tamper flag count", e))?,
                    first_at,
                    last_at,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::chain::{ChainHead, seal};
    use protocol::test_util::numbered_content as content;

    fn device(n: u32) -> DeviceId {
        DeviceId::new(format!("dev-{n}")).unwrap()
    }

    #[test]
    fn breaks_beyond_the_cap_are_counted_per_device() {
        let d = device(1);
        let e = device(2);
        let fork = ChainBreak::Fork { sequence: 1 };
        let records: Vec<FieldRecord> = (0..5)
            .map(|i| seal(&d, &ChainHead::GENESIS, content(i)))
            .collect();
        let other = seal(&e, &ChainHead::GENESIS, content(9));
        let mut flags: Vec<NewTamperFlag<'_>> = records
            .iter()
            .map(|record| NewTamperFlag {
                device: &d,
                record,
                chain_break: &fork,
            })
            .collect();
        // The same break twice in one group is one row, not a count.
        flags.push(NewTamperFlag {
            device: &d,
            record: &records[0],
            chain_break: &fork,
        });
        flags.push(NewTamperFlag {
            device: &e,
            record: &other,
            chain_break: &fork,
        });
        // Device 1 already holds 1 flag of a cap of 3: two more are kept, three counted.
        let kept = HashMap::from([(d.clone(), 1)]);
        let split = split_at_cap(&flags, &kept, 3);
        assert_eq!(split.keep.len(), 3);
        assert_eq!(split.keep.iter().filter(|f| f.device == &d).count(), 2);
        assert_eq!(split.keep.iter().filter(|f| f.device == &e).count(), 1);
        assert_eq!(split.counted, BTreeMap::from([(&d, 3)]));
    }

    #[test]
    fn a_device_at_its_cap_keeps_nothing_more() {
        let d = device(1);
        let fork = ChainBreak::Fork { sequence: 1 };
        let record = seal(&d, &ChainHead::GENESIS, content(1));
        let flags = [NewTamperFlag {
            device: &d,
            record: &record,
            chain_break: &fork,
        }];
        let split = split_at_cap(&flags, &HashMap::from([(d.clone(), 7)]), 7);
        assert!(split.keep.is_empty());
        assert_eq!(split.counted, BTreeMap::from([(&d, 1)]));
    }
}
