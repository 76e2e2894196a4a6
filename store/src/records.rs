//! Ingest of field records (DOMAIN R3): one transaction per group commit that checks
//! every pushed record against its device's stored hash chain, appends the ones that
//! continue it, keeps the ones that break it as tamper evidence, and flags stored
//! records that break the two-officer rule (DOMAIN R4) as the certificates stood at
//! the record's time. Nothing is acknowledged unless this transaction commits.
//!
//! Locking: on SQLite the transaction begins `IMMEDIATE` (the database write lock);
//! on PostgreSQL it takes a transaction-scoped advisory lock per device, in one sorted
//! statement, so two gateways never interleave one device's chain and never wait on
//! the audit head that registry changes hold.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use protocol::action_kind;
use protocol::chain::ChainHead;
use protocol::clock::{GatewayTime, on_gateway_time};
use protocol::deadline::ClockSkew;
use protocol::hash::Sha256Hash;
use protocol::message::{FieldRecord, RecordAck};
use protocol::two_officer::{self, TwoOfficerOutcome};
use protocol::{DeviceId, Millis};

use super::certificate_history::{self, on_conn};
use super::flag_reviews;
use super::ingest_rules::IngestRules;
use super::officer_lookups::OfficerLookups;
use super::record_plan::{self, PushRef};
use super::sql::{in_bound_list, json_list, values_list};
use super::tamper::{self, NewTamperFlag};
use super::tx::{Db, TxConn, lock_chains};
use super::{Store, StoreError};

/// Rows per multi-row INSERT: few statements per commit, far below either backend's
/// limit on bound parameters.
const ROWS_PER_INSERT: usize = 100;

/// One device's push of records, as the committer hands it to the store.
#[derive(Clone, Debug)]
pub struct RecordBatch {
    /// The device, from the connection's certificate.
    pub device: DeviceId,
    /// The clock skew the device's hello measured, to put record times on gateway time.
    pub skew: ClockSkew,
    /// The records, in the order pushed (already checked against the protocol limits).
    pub records: Vec<FieldRecord>,
}

/// What one group commit did, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    /// Records appended.
    pub stored: u64,
    /// Records that were already stored.
    pub duplicate: u64,
    /// Records refused as chain breaks (kept as tamper flags up to the device's cap).
    pub rejected: u64,
    /// Of those, the ones counted beyond their device's cap of tamper flags rather
    /// than kept one by one.
    pub tamper_counted: u64,
    /// Stored records flagged under the two-officer rule.
    pub two_officer_violations: u64,
    /// Stored records whose device time was implausible (future, or a skew beyond the
    /// bound): their gateway time is when they arrived.
    pub clock_implausible: u64,
    /// Stored corrections: each queued a review of the record it corrects.
    pub corrections: u64,
}

/// The transaction of one group commit.
struct IngestTx {
    conn: TxConn,
}

impl IngestTx {
    async fn begin(db: &Db, devices: &BTreeSet<&DeviceId>) -> Result<Self, StoreError> {
        let mut conn = match db {
            Db::Sqlite(pool) => TxConn::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
        };
        lock_chains(&mut conn, devices.iter().map(|d| d.as_str())).await?;
        Ok(Self { conn })
    }

    /// Commits the group. Failpoints (test builds): `ingest.group_written` stops the
    /// process with the rows written and not committed; `ingest.commit` fails the
    /// commit as an I/O error would.
    async fn commit(self) -> Result<(), StoreError> {
        durable::failpoint::crash_point("ingest.group_written");
        durable::failpoint::io_point("ingest.commit").map_err(sqlx::Error::Io)?;
        match self.conn {
            TxConn::Sqlite(t) => t.commit().await?,
            TxConn::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// Devices whose chain heads one statement reads (SQLite allows 500 terms in a
/// compound SELECT).
const HEADS_PER_STATEMENT: usize = 100;

/// The heads of several devices' stored chains (genesis for a device with none), in
/// one statement per [`HEADS_PER_STATEMENT`] devices: one indexed lookup of each
/// device's last record, joined with `UNION ALL`. Why: a group commit holds pushes from
/// many devices, and a round trip per device lengthens the committer's serial chain —
/// on PostgreSQL each is a network round trip. (On SQLite at 1,000 devices the load
/// test's figures did not move: 49,000 records/s either way.)
async fn chain_heads_in(
    conn: &mut TxConn,
    devices: &BTreeSet<&DeviceId>,
) -> Result<HashMap<DeviceId, ChainHead>, StoreError> {
    let devices: Vec<&DeviceId> = devices.iter().copied().collect();
    let mut heads: HashMap<DeviceId, ChainHead> = devices
        .iter()
        .map(|d| ((*d).clone(), ChainHead::GENESIS))
        .collect();
    for chunk in devices.chunks(HEADS_PER_STATEMENT) {
        // Padded to a power of two (repeating the last device, whose row then comes
        // back twice) so that a few statement texts serve every group size and stay
        // in the connection's prepared-statement cache.
        let terms = chunk.len().next_power_of_two().min(HEADS_PER_STATEMENT);
        let sql = (1..=terms)
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT device_id, sequence, hash FROM field_records \
                     WHERE device_id = ${i} ORDER BY sequence DESC LIMIT 1) AS h{i}"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows: Vec<(String, i64, String)> = on_conn!(conn, c => {
            let mut q = sqlx::query_as(&sql);
            let last = chunk[chunk.len() - 1];
            for i in 0..terms {
                q = q.bind(chunk.get(i).unwrap_or(&last).as_str());
            }
            q.fetch_all(&mut *c).await?
        });
        for (device, sequence, hash) in rows {
            let device = DeviceId::new(device).map_err(|e| StoreError::corrupt("device id", e))?;
            heads.insert(device, head_after(Some((sequence, hash)))?);
        }
    }
    Ok(heads)
}

/// The head of a chain whose last stored record is `last` (`(sequence, hash)`).
fn head_after(last: Option<(i64, String)>) -> Result<ChainHead, StoreError> {
    match last {
        None => Ok(ChainHead::GENESIS),
        Some((sequence, hash)) => Ok(ChainHead {
            next_sequence: u64::try_from(sequence)
                .map_err(|e| StoreError::corrupt("record sequence", e))?
                + 1,
            last_hash: parse_hash(&hash)?,
        }),
    }
}

pub(crate) fn parse_hash(hex: &str) -> Result<Sha256Hash, StoreError> {
    Sha256Hash::from_hex(hex).map_err(|e| StoreError::corrupt("record hash", e))
}

/// Stored hashes of `device` at exactly the sequence numbers `sequences`, in one
/// statement. Why not a range: a device that replays sequence 1 and its latest record
/// would make a range read its whole chain inside the group commit.
async fn stored_hashes(
    conn: &mut TxConn,
    device: &DeviceId,
    sequences: &[i64],
) -> Result<Vec<(u64, Sha256Hash)>, StoreError> {
    let sql = format!(
        "SELECT sequence, hash FROM field_records WHERE device_id = $1 AND {}",
        in_bound_list("sequence", 2, conn.placeholders())
    );
    let rows: Vec<(i64, String)> = match conn {
        TxConn::Sqlite(t) => {
            sqlx::query_as(&sql)
                .bind(device.as_str())
                .bind(json_list(sequences))
                .fetch_all(&mut **t)
                .await?
        }
        TxConn::Postgres(t) => {
            sqlx::query_as(&sql)
                .bind(device.as_str())
                .bind(sequences)
                .fetch_all(&mut **t)
                .await?
        }
    };
    rows.into_iter()
        .map(|(s, h)| Ok((s as u64, parse_hash(&h)?)))
        .collect()
}

/// A record ready to insert.
struct NewRecord<'a> {
    device: &'a DeviceId,
    record: &'a FieldRecord,
    skew: ClockSkew,
    /// Its time on the gateway's clock (DOMAIN R2: never after it arrived).
    at: GatewayTime,
    officers: String,
    recordings: String,
}

/// A two-officer flag ready to insert.
struct NewTwoOfficerFlag<'a> {
    device: &'a DeviceId,
    record: &'a FieldRecord,
    certified: u32,
    required: u32,
    not_counted: String,
}

impl IngestTx {
    async fn insert_records(
        &mut self,
        rows: &[NewRecord<'_>],
        now: Millis,
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO field_records (device_id, sequence, previous_hash, hash, \
                 case_number, target, stage, action_kind, text, officers, location, lat_e6, \
                 lon_e6, made_at, made_at_gateway, recordings, corrects, clock_skew_ms, \
                 received_at, action_code, clock_implausible) VALUES {}",
                values_list(chunk.len(), 21, self.conn.placeholders())
            );
            on_tx!(self, c => {
                let mut q = sqlx::query(&sql);
                for row in chunk {
                    let content = &row.record.content;
                    q = q
                        .bind(row.device.as_str())
                        .bind(row.record.sequence as i64)
                        .bind(row.record.previous_hash.to_hex())
                        .bind(row.record.hash.to_hex())
                        .bind(content.case_number.as_str())
                        .bind(content.target.as_str())
                        .bind(content.stage.as_str())
                        .bind(content.action_kind.as_str())
                        .bind(content.text.as_str())
                        .bind(row.officers.as_str())
                        .bind(content.location.as_deref())
                        .bind(content.coordinates.map(|c| i64::from(c.lat_e6)))
                        .bind(content.coordinates.map(|c| i64::from(c.lon_e6)))
                        .bind(content.made_at)
                        .bind(row.at.at)
                        .bind(row.recordings.as_str())
                        .bind(content.corrects.map(|s| s as i64))
                        .bind(row.skew.as_millis())
                        .bind(now)
                        .bind(action_kind::normalize(&content.action_kind))
                        .bind(row.at.implausible);
                }
                q.execute(&mut *c).await?;
            });
        }
        let links: Vec<(&DeviceId, u64, String)> = rows
            .iter()
            .flat_map(|row| {
                row.record
                    .content
                    .recordings
                    .iter()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|id| (row.device, row.record.sequence, id.to_string()))
            })
            .collect();
        for chunk in links.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO field_record_recordings (device_id, sequence, recording_id) VALUES {}",
                values_list(chunk.len(), 3, self.conn.placeholders())
            );
            on_tx!(self, c => {
                let mut q = sqlx::query(&sql);
                for (device, sequence, id) in chunk {
                    q = q.bind(device.as_str()).bind(*sequence as i64).bind(id.as_str());
                }
                q.execute(&mut *c).await?;
            });
        }
        Ok(())
    }

    /// Each flag is one entry of the append-only change log (`flag_reviews`), which
    /// keeps the cause of every raise and clear.
    async fn insert_two_officer_flags(
        &mut self,
        flags: &[NewTwoOfficerFlag<'_>],
        now: Millis,
    ) -> Result<(), StoreError> {
        for flag in flags {
            flag_reviews::append_change(
                &mut self.conn,
                (flag.device.as_str(), flag.record.sequence as i64),
                &flag.record.content.action_kind,
                true,
                flag.certified,
                flag.required,
                &flag.not_counted,
                ("ingest", None),
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// Indexes the officers of the records the two-officer rule may judge again (those
    /// of a two-officer kind, and corrections), so a registry change finds them
    /// without reading every record (`flag_reviews`).
    async fn insert_officer_index(
        &mut self,
        rows: &[NewRecord<'_>],
        rules: &IngestRules,
    ) -> Result<(), StoreError> {
        let entries: Vec<(String, Millis, &DeviceId, u64)> = rows
            .iter()
            .filter(|r| {
                r.record.content.corrects.is_some()
                    || rules
                        .action_kinds
                        .needs_two_officers(&r.record.content.action_kind)
            })
            .flat_map(|r| {
                r.record
                    .content
                    .officers
                    .iter()
                    .map(|o| o.trim())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|o| (o.to_owned(), r.at.at, r.device, r.record.sequence))
            })
            .collect();
        for chunk in entries.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO field_record_officers (certificate_number, made_at_gateway,                  device_id, sequence) VALUES {}",
                values_list(chunk.len(), 4, self.conn.placeholders())
            );
            on_tx!(self, c => {
                let mut q = sqlx::query(&sql);
                for (number, at, device, sequence) in chunk {
                    q = q.bind(number.as_str()).bind(*at).bind(device.as_str()).bind(*sequence as i64);
                }
                q.execute(&mut *c).await?;
            });
        }
        Ok(())
    }

    /// Queues a review of the record each stored correction corrects (when it is
    /// stored): the gateway's review job judges it again with its audit entry.
    async fn queue_correction_reviews(
        &mut self,
        rows: &[NewRecord<'_>],
    ) -> Result<u64, StoreError> {
        let mut queued = 0;
        for row in rows {
            let Some(corrected) = row.record.content.corrects else {
                continue;
            };
            let correction = format!("{}/{}", row.device, row.record.sequence);
            on_tx!(self, c => {
                sqlx::query(
                    "INSERT INTO two_officer_reviews_due (device_id, sequence, cause, cause_ref)                      SELECT device_id, sequence, 'correction', $3 FROM field_records                      WHERE device_id = $1 AND sequence = $2                      ON CONFLICT DO NOTHING",
                )
                .bind(row.device.as_str())
                .bind(corrected as i64)
                .bind(correction.as_str())
                .execute(&mut *c)
                .await?;
            });
            queued += 1;
        }
        Ok(queued)
    }

    /// Applies the two-officer rule to the records about to be stored, with each
    /// certificate as it stood at the record's gateway time.
    ///
    /// The officers are looked up in one statement (none when every number named is
    /// known absent at the current roster version, see [`OfficerLookups`]).
    async fn two_officer_flags<'a>(
        &mut self,
        rows: &[NewRecord<'a>],
        rules: &IngestRules,
        lookups: &OfficerLookups,
    ) -> Result<Vec<NewTwoOfficerFlag<'a>>, StoreError> {
        let needing: Vec<&NewRecord<'a>> = rows
            .iter()
            .filter(|r| {
                rules
                    .action_kinds
                    .needs_two_officers(&r.record.content.action_kind)
            })
            .collect();
        if needing.is_empty() {
            return Ok(Vec::new());
        }
        let numbers: Vec<&str> = needing
            .iter()
            .flat_map(|r| r.record.content.officers.iter().map(|o| o.trim()))
            .collect();
        let histories = lookups.histories(&mut self.conn, &numbers).await?;
        let mut flags = Vec::new();
        for row in needing {
            let present =
                certificate_history::presence(&histories, &row.record.content.officers, row.at.at);
            if let TwoOfficerOutcome::Violated {
                certified,
                required,
                not_counted,
            } = two_officer::check(true, &present, &rules.two_officer)
            {
                flags.push(NewTwoOfficerFlag {
                    device: row.device,
                    record: row.record,
                    certified,
                    required,
                    not_counted: serde_json::to_string(&not_counted)
                        .map_err(|e| StoreError::corrupt("two-officer outcome", e))?,
                });
            }
        }
        Ok(flags)
    }
}

impl Store {
    /// Ingests a group of pushes (from one or many devices) in ONE transaction and
    /// returns one ack list per push, in order. The acks are returned only after the
    /// commit: an error means nothing of the group was stored or acknowledged.
    pub async fn ingest_records(
        &self,
        batches: &[RecordBatch],
        rules: &IngestRules,
        now: Millis,
    ) -> Result<(Vec<Vec<RecordAck>>, IngestSummary), StoreError> {
        let pushes: Vec<PushRef<'_>> = batches
            .iter()
            .map(|b| PushRef {
                device: &b.device,
                records: &b.records,
            })
            .collect();
        let devices: BTreeSet<&DeviceId> = batches.iter().map(|b| &b.device).collect();
        let mut tx = IngestTx::begin(self.ingest_db(), &devices).await?;
        let heads = chain_heads_in(&mut tx.conn, &devices).await?;
        let mut replayed: BTreeMap<&DeviceId, BTreeSet<i64>> = BTreeMap::new();
        for (device, sequence) in record_plan::replayed(&pushes, &heads) {
            // Below the head, so at most the stored head's sequence (an i64).
            replayed.entry(device).or_default().insert(sequence as i64);
        }
        let mut stored = HashMap::new();
        for (device, sequences) in replayed {
            let sequences: Vec<i64> = sequences.into_iter().collect();
            for (sequence, hash) in stored_hashes(&mut tx.conn, device, &sequences).await? {
                stored.insert((device.clone(), sequence), hash);
            }
        }
        let plan = record_plan::plan(&pushes, &heads, &stored);

        let rows = plan
            .appends
            .iter()
            .map(|&(p, r)| {
                let batch = &batches[p];
                let record = &batch.records[r];
                Ok(NewRecord {
                    device: &batch.device,
                    record,
                    skew: batch.skew,
                    at: on_gateway_time(record.content.made_at, batch.skew, now, &rules.clock),
                    officers: serde_json::to_string(&record.content.officers)
                        .map_err(|e| StoreError::corrupt("officers", e))?,
                    recordings: serde_json::to_string(&record.content.recordings)
                        .map_err(|e| StoreError::corrupt("recordings", e))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let tamper: Vec<NewTamperFlag<'_>> = plan
            .breaks
            .iter()
            .map(|(p, r, chain_break)| NewTamperFlag {
                device: &batches[*p].device,
                record: &batches[*p].records[*r],
                chain_break,
            })
            .collect();
        let violations = tx
            .two_officer_flags(&rows, rules, &self.inner.officer_lookups)
            .await?;
        tx.insert_records(&rows, now).await?;
        let counted =
            tamper::write_flags(&mut tx.conn, &tamper, rules.tamper_flags_per_device, now).await?;
        tx.insert_two_officer_flags(&violations, now).await?;
        tx.insert_officer_index(&rows, rules).await?;
        let corrections = tx.queue_correction_reviews(&rows).await?;
        tx.commit().await?;
        let summary = IngestSummary {
            stored: rows.len() as u64,
            duplicate: plan
                .acks
                .iter()
                .flatten()
                .filter(|a| a.outcome == protocol::message::RecordOutcome::Duplicate)
                .count() as u64,
            rejected: tamper.len() as u64,
            tamper_counted: counted.0,
            two_officer_violations: violations.len() as u64,
            clock_implausible: rows.iter().filter(|r| r.at.implausible).count() as u64,
            corrections,
        };
        Ok((plan.acks, summary))
    }

    /// The head of a device's stored chain (what its next record must follow), for the
    /// welcome.
    pub async fn chain_head(&self, device: &DeviceId) -> Result<ChainHead, StoreError> {
        let last: Option<(i64, String)> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT sequence, hash FROM field_records WHERE device_id = $1 \
                 ORDER BY sequence DESC LIMIT 1",
            )
            .bind(device.as_str())
            .fetch_optional(p)
            .await?
        });
        head_after(last)
    }
}
