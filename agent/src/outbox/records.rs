//! Field records in the outbox: sealed into the device's hash chain when they are
//! made, kept until the gateway's ack says stored or duplicate.
//!
//! A refused record stays in the file, marked with the gateway's reason, and `status`
//! reports it. It must not block the records after it forever, yet they link to it by
//! hash, so the gateway would refuse every one of them as a gap. The outbox therefore
//! *re-chains* ([`super::rechain`]): the records still queued are sealed again, with
//! unchanged content, onto the chain head the gateway reports.

use protocol::chain::{ChainHead, seal};
use protocol::message::{FieldRecord, RecordContent, RejectReason};
use protocol::{InvalidField, Limits, Millis, Sha256Hash};
use sqlx::{Sqlite, Transaction};

use super::acks::{AckPlan, describe};
use super::state::{add, keys};
use super::{Outbox, StoreError, hash_column};

/// A record just made: where it sits in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedRecord {
    /// Its sequence number.
    pub sequence: u64,
    /// Its hash.
    pub hash: Sha256Hash,
}

/// A queued record with its outbox row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRecord {
    /// The outbox row.
    pub entry: i64,
    /// The sealed record.
    pub record: FieldRecord,
}

/// A record the gateway refused, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRecord {
    /// The outbox row.
    pub entry: i64,
    /// Its sequence number when it was pushed.
    pub sequence: u64,
    /// The case it belongs to.
    pub case_number: String,
    /// The gateway's reason, in words.
    pub reason: String,
    /// When the refusal arrived (device time).
    pub rejected_at: Millis,
    /// The sequence number of its re-sealed copy, when its content was sealed again.
    pub resealed_as: Option<u64>,
}

/// Why a record cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A field breaks the protocol's limits: nothing was stored.
    #[error("the record is not valid: {0}")]
    Invalid(#[from] InvalidField),
    /// A rule of the vocabulary or the clock refuses it: nothing was stored.
    #[error(transparent)]
    Refused(#[from] crate::rules::RuleRefusal),
    /// The store failed: nothing was stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) type Row = (i64, i64, Vec<u8>, Vec<u8>, String);
type RejectedRow = (i64, i64, String, Option<String>, Option<i64>, Option<i64>);

pub(super) const QUEUED_SQL: &str =
    "SELECT entry, sequence, previous_hash, hash, content FROM outbox_records
     WHERE state = 'queued' ORDER BY sequence LIMIT $1";

pub(super) fn decode(row: Row) -> Result<OutboxRecord, StoreError> {
    let (entry, sequence, previous, hash, content) = row;
    let content: RecordContent = serde_json::from_str(&content)
        .map_err(|e| StoreError::corrupt("record content", format!("entry {entry}: {e}")))?;
    Ok(OutboxRecord {
        entry,
        record: FieldRecord {
            sequence: u64::try_from(sequence)
                .map_err(|_| StoreError::corrupt("record sequence", sequence))?,
            previous_hash: hash_column("record previous hash", &previous)?,
            hash: hash_column("record hash", &hash)?,
            content,
        },
    })
}

pub(super) async fn read_head(tx: &mut Transaction<'_, Sqlite>) -> Result<ChainHead, StoreError> {
    let (next, last): (i64, Vec<u8>) =
        sqlx::query_as("SELECT next_sequence, last_hash FROM chain_head WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?;
    Ok(ChainHead {
        next_sequence: u64::try_from(next).map_err(|_| StoreError::corrupt("chain head", next))?,
        last_hash: hash_column("chain head hash", &last)?,
    })
}

pub(super) async fn write_head(
    tx: &mut Transaction<'_, Sqlite>,
    head: &ChainHead,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE chain_head SET next_sequence = $1, last_hash = $2 WHERE id = 1")
        .bind(seq_i64(head.next_sequence)?)
        .bind(head.last_hash.0.to_vec())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) fn seq_i64(sequence: u64) -> Result<i64, StoreError> {
    i64::try_from(sequence).map_err(|_| StoreError::corrupt("sequence number", sequence))
}

pub(super) async fn insert_queued(
    tx: &mut Transaction<'_, Sqlite>,
    record: &FieldRecord,
    now: Millis,
    resealed_from: Option<i64>,
) -> Result<(), StoreError> {
    let content = serde_json::to_string(&record.content).expect("record content serializes");
    sqlx::query(
        "INSERT INTO outbox_records
             (sequence, previous_hash, hash, content, made_at, queued_at, state, resealed_from)
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7)
",
    )
    .bind(seq_i64(record.sequence)?)
    .bind(record.previous_hash.0.to_vec())
    .bind(record.hash.0.to_vec())
    .bind(content)
    .bind(record.content.made_at)
    .bind(now)
    .bind(resealed_from)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Outbox {
    /// Seals `content` as the next record of this device's chain and stores it.
    /// Returns only after the transaction has committed (durable on disk).
    pub async fn record(
        &self,
        content: RecordContent,
        limits: &Limits,
        now: Millis,
    ) -> Result<QueuedRecord, RecordError> {
        // The protocol's checks include what any gateway store refuses, so a record the
        // gateway would refuse as invalid never enters the chain.
        content.validate(limits)?;
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::from)?;
        let head = read_head(&mut tx).await?;
        if let Some(corrected) = content.corrects
            && (corrected == 0 || corrected >= head.next_sequence)
        {
            return Err(InvalidField::new(
                "corrects",
                format!(
                    "record {corrected} does not exist yet; this record will be {}",
                    head.next_sequence
                ),
            )
            .into());
        }
        let record = seal(self.device(), &head, content);
        insert_queued(&mut tx, &record, now, None).await?;
        write_head(&mut tx, &head.advance(&record)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(QueuedRecord {
            sequence: record.sequence,
            hash: record.hash,
        })
    }

    /// The local chain head: the sequence the next record gets.
    pub async fn chain_head(&self) -> Result<ChainHead, StoreError> {
        let mut tx = self.pool().begin().await?;
        let head = read_head(&mut tx).await?;
        tx.commit().await?;
        Ok(head)
    }

    /// The oldest queued records, at most `limit`, in sequence order.
    pub async fn queued_records(&self, limit: u32) -> Result<Vec<OutboxRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(QUEUED_SQL)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// How many records wait for the gateway.
    pub async fn queued_record_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox_records WHERE state = 'queued'")
                .fetch_one(self.pool())
                .await?;
        Ok(n as u64)
    }

    /// Device time of the oldest queued record, if any.
    pub async fn oldest_queued_record(&self) -> Result<Option<Millis>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT min(queued_at) FROM outbox_records WHERE state = 'queued'")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Applies a batch's acks in one transaction: removes the durable records, marks
    /// the first refused one with its reason, and counts both.
    pub async fn apply_record_acks(&self, plan: &AckPlan, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        if !plan.durable.is_empty() {
            // One statement for the whole batch: a DELETE per record was most of the
            // agent's cost of a push.
            let entries = serde_json::to_string(&plan.durable).expect("integers serialize");
            sqlx::query(
                "DELETE FROM outbox_records WHERE state = 'queued'
                 AND entry IN (SELECT value FROM json_each($1))",
            )
            .bind(entries)
            .execute(&mut *tx)
            .await?;
        }
        if let Some((entry, reason)) = &plan.rejected {
            sqlx::query(
                "UPDATE outbox_records SET state = 'rejected', reason = $2, rejected_at = $3
                 WHERE entry = $1 AND state = 'queued'",
            )
            .bind(entry)
            .bind(serde_json::to_string(reason).expect("reasons serialize"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        add(&mut tx, keys::RECORDS_STORED, plan.stored as i64).await?;
        add(&mut tx, keys::RECORDS_DUPLICATE, plan.duplicate as i64).await?;
        add(
            &mut tx,
            keys::RECORDS_REJECTED,
            i64::from(plan.rejected.is_some()),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the gateway refused, newest first.
    pub async fn rejected_records(&self) -> Result<Vec<RejectedRecord>, StoreError> {
        let rows: Vec<RejectedRow> = sqlx::query_as(
            "SELECT entry, sequence, content, reason, rejected_at, resealed_as
             FROM outbox_records WHERE state = 'rejected' ORDER BY entry DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(entry, sequence, content, reason, at, copy)| {
                let content: RecordContent = serde_json::from_str(&content)
                    .map_err(|e| StoreError::corrupt("record content", e))?;
                let reason = match reason.as_deref().map(serde_json::from_str::<RejectReason>) {
                    Some(Ok(r)) => describe(&r),
                    Some(Err(e)) => return Err(StoreError::corrupt("refusal reason", e)),
                    None => "refused".into(),
                };
                Ok(RejectedRecord {
                    entry,
                    sequence: sequence as u64,
                    case_number: content.case_number,
                    reason,
                    rejected_at: at.unwrap_or(0),
                    resealed_as: copy.map(|s| s as u64),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use protocol::chain::verify_chain;
    use protocol::message::{RecordAck, RecordOutcome};

    use super::*;
    use crate::outbox::acks::plan_acks;
    use crate::outbox::test_util::{content, make, outbox, sent};

    #[tokio::test]
    async fn records_are_chained_when_made_and_survive_a_reopen() {
        let (dir, outbox) = outbox().await;
        let first = outbox
            .record(content(1), &Limits::default(), 1)
            .await
            .unwrap();
        assert_eq!(first.sequence, 1);
        make(&outbox, 4).await;
        outbox.close().await;
        let outbox = Outbox::open(dir.path(), outbox.device().clone())
            .await
            .unwrap();
        let queued = outbox.queued_records(100).await.unwrap();
        assert_eq!(queued.len(), 5);
        let records: Vec<_> = queued.iter().map(|q| q.record.clone()).collect();
        let head = verify_chain(outbox.device(), &records).unwrap();
        assert_eq!(head, outbox.chain_head().await.unwrap());
        assert_eq!(records[0].hash, first.hash);
    }

    #[tokio::test]
    async fn an_invalid_record_is_refused_and_stores_nothing() {
        let (_dir, outbox) = outbox().await;
        let mut bad = content(1);
        bad.case_number = "  ".into();
        let err = outbox.record(bad, &Limits::default(), 1).await.unwrap_err();
        assert!(err.to_string().contains("case_number"), "{err}");
        let mut nul = content(1);
        nul.text = "a\0b".into();
        let err = outbox.record(nul, &Limits::default(), 1).await.unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        let mut ahead = content(1);
        ahead.corrects = Some(1);
        let err = outbox
            .record(ahead, &Limits::default(), 1)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("corrects"), "{err}");
        assert_eq!(outbox.queued_record_count().await.unwrap(), 0);
        assert_eq!(outbox.chain_head().await.unwrap(), ChainHead::GENESIS);
    }

    #[tokio::test]
    async fn concurrent_writers_never_fork_the_chain() {
        let (_dir, outbox) = outbox().await;
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    for i in 0..10 {
                        outbox
                            .record(content(t * 100 + i), &Limits::default(), 1)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let records: Vec<_> = outbox
            .queued_records(1000)
            .await
            .unwrap()
            .into_iter()
            .map(|q| q.record)
            .collect();
        assert_eq!(records.len(), 80);
        verify_chain(outbox.device(), &records).unwrap();
    }

    #[tokio::test]
    async fn only_durable_acks_remove_records() {
        let (_dir, outbox) = outbox().await;
        make(&outbox, 3).await;
        let batch = outbox.queued_records(10).await.unwrap();
        let plan = plan_acks(
            &sent(&batch),
            &[
                RecordAck {
                    sequence: 1,
                    outcome: RecordOutcome::Stored,
                },
                RecordAck {
                    sequence: 2,
                    outcome: RecordOutcome::Duplicate,
                },
            ],
        );
        outbox.apply_record_acks(&plan, 5).await.unwrap();
        let left = outbox.queued_records(10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].record.sequence, 3);
        assert_eq!(outbox.state_i64(keys::RECORDS_STORED).await.unwrap(), 1);
        assert_eq!(outbox.state_i64(keys::RECORDS_DUPLICATE).await.unwrap(), 1);
    }
}
