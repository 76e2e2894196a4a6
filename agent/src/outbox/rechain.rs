//! Re-chaining: how the outbox meets the chain the gateway holds.
//!
//! - After a refusal, the records still queued (and the refused one itself when only
//!   its place in the chain was wrong) are sealed again, with unchanged content, onto
//!   the chain head the gateway reports, so one refused record never blocks the rest.
//!   The originals stay as `superseded` rows (and the refused one as `rejected`), so
//!   nothing the officer recorded is lost and the refusal stays visible on both sides.
//! - At hello, the gateway's chain head confirms queued records it provably holds
//!   (their acks were lost with a connection), and a fresh data folder continues the
//!   chain the gateway already holds for the device.

use protocol::Millis;
use protocol::chain::{ChainHead, seal};
use protocol::message::RejectReason;

use super::acks::is_positional;
use super::records::{QUEUED_SQL, Row, decode, insert_queued, read_head, seq_i64, write_head};
use super::state::{add, keys};
use super::{Outbox, StoreError};

/// The outcome of re-chaining.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rechained {
    /// Records sealed again onto the gateway's head.
    pub resealed: usize,
    /// The local chain head afterwards.
    pub head: ChainHead,
}

impl Outbox {
    /// Seals the queued records again onto `gateway` (the chain head the gateway
    /// reports), after a refusal. `refused` is the outbox entry just refused: its
    /// content joins them when only its place in the chain was wrong.
    ///
    /// Does nothing when the queue already continues the gateway's chain.
    pub async fn rechain(
        &self,
        gateway: ChainHead,
        refused: Option<(i64, &RejectReason)>,
        now: Millis,
    ) -> Result<Rechained, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let rows: Vec<Row> = sqlx::query_as(QUEUED_SQL)
            .bind(i64::MAX)
            .fetch_all(&mut *tx)
            .await?;
        let queued = rows
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        let mut candidates = Vec::with_capacity(queued.len() + 1);
        if let Some((entry, reason)) = refused
            && is_positional(reason)
        {
            let row: Option<Row> = sqlx::query_as(
                "SELECT entry, sequence, previous_hash, hash, content FROM outbox_records
                 WHERE entry = $1 AND state = 'rejected' AND resealed_as IS NULL
                   AND resealed_from IS NULL",
            )
            .bind(entry)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                candidates.push(decode(row)?);
            }
        }
        let continues = queued.first().is_some_and(|first| {
            first.record.sequence == gateway.next_sequence
                && first.record.previous_hash == gateway.last_hash
        });
        if candidates.is_empty() && (queued.is_empty() || continues) {
            let head = if queued.is_empty() {
                gateway
            } else {
                read_head(&mut tx).await?
            };
            write_head(&mut tx, &head).await?;
            tx.commit().await?;
            return Ok(Rechained { resealed: 0, head });
        }
        candidates.extend(queued);
        // Free the sequence numbers first (one queued record per sequence).
        sqlx::query("UPDATE outbox_records SET state = 'superseded' WHERE state = 'queued'")
            .execute(&mut *tx)
            .await?;
        let mut head = gateway;
        for old in &candidates {
            let record = seal(self.device(), &head, old.record.content.clone());
            insert_queued(&mut tx, &record, now, Some(old.entry)).await?;
            sqlx::query("UPDATE outbox_records SET resealed_as = $2 WHERE entry = $1")
                .bind(old.entry)
                .bind(seq_i64(record.sequence)?)
                .execute(&mut *tx)
                .await?;
            head = head.advance(&record);
        }
        write_head(&mut tx, &head).await?;
        tx.commit().await?;
        tracing::warn!(
            resealed = candidates.len(),
            from = gateway.next_sequence,
            "records sealed again onto the gateway's chain after a refusal"
        );
        Ok(Rechained {
            resealed: candidates.len(),
            head,
        })
    }

    /// Uses the chain head the gateway reports at hello: queued records up to it that
    /// it provably holds (the hash at its head is ours, and each hash covers every
    /// earlier record) leave the outbox. On a fresh data folder with no record yet, the
    /// local chain continues the gateway's (an agent reinstalled on an enrolled device).
    /// Returns how many records it confirmed.
    pub async fn reconcile(&self, gateway: ChainHead) -> Result<u64, StoreError> {
        if gateway == ChainHead::GENESIS {
            return Ok(0);
        }
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let last = gateway.next_sequence - 1;
        let ours: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT hash FROM outbox_records WHERE state = 'queued' AND sequence = $1",
        )
        .bind(seq_i64(last)?)
        .fetch_optional(&mut *tx)
        .await?;
        let mut confirmed = 0;
        if ours.as_deref() == Some(&gateway.last_hash.0[..]) {
            confirmed =
                sqlx::query("DELETE FROM outbox_records WHERE state = 'queued' AND sequence <= $1")
                    .bind(seq_i64(last)?)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            add(&mut tx, keys::RECORDS_CONFIRMED, confirmed as i64).await?;
        } else {
            let head = read_head(&mut tx).await?;
            let any: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_records")
                .fetch_one(&mut *tx)
                .await?;
            if head == ChainHead::GENESIS && any == 0 {
                write_head(&mut tx, &gateway).await?;
                tracing::info!(
                    next_sequence = gateway.next_sequence,
                    "continuing the chain the gateway holds for this device"
                );
            }
        }
        tx.commit().await?;
        Ok(confirmed)
    }
}

#[cfg(test)]
mod tests {
    use protocol::chain::verify_chain;
    use protocol::message::{RecordAck, RecordOutcome};
    use protocol::{Limits, Sha256Hash};

    use super::*;
    use crate::outbox::acks::plan_acks;
    use crate::outbox::test_util::{content, make, outbox, sent};

    #[tokio::test]
    async fn a_refusal_is_kept_and_the_rest_is_sealed_onto_the_gateway_chain() {
        let (_dir, outbox) = outbox().await;
        make(&outbox, 4).await;
        let batch = outbox.queued_records(10).await.unwrap();
        let gateway_after_1 = ChainHead::GENESIS.advance(&batch[0].record);
        // Record 2 is refused as altered; 3 and 4 follow as gaps.
        let plan = plan_acks(
            &sent(&batch),
            &[
                RecordAck {
                    sequence: 1,
                    outcome: RecordOutcome::Stored,
                },
                RecordAck {
                    sequence: 2,
                    outcome: RecordOutcome::Rejected(RejectReason::Altered),
                },
                RecordAck {
                    sequence: 3,
                    outcome: RecordOutcome::Rejected(RejectReason::Gap { expected: 2 }),
                },
                RecordAck {
                    sequence: 4,
                    outcome: RecordOutcome::Rejected(RejectReason::Gap { expected: 2 }),
                },
            ],
        );
        outbox.apply_record_acks(&plan, 5).await.unwrap();
        let (entry, reason) = plan.rejected.clone().unwrap();
        let done = outbox
            .rechain(gateway_after_1, Some((entry, &reason)), 6)
            .await
            .unwrap();
        assert_eq!(done.resealed, 2, "altered content is not sealed again");
        let queued = outbox.queued_records(10).await.unwrap();
        let texts: Vec<_> = queued
            .iter()
            .map(|q| q.record.content.text.clone())
            .collect();
        assert_eq!(texts, ["entry 3", "entry 4"]);
        assert_eq!(queued[0].record.sequence, 2);
        assert_eq!(queued[0].record.previous_hash, batch[0].record.hash);
        // The copies continue the gateway's chain, and the next record follows them.
        let mut chain = vec![batch[0].record.clone()];
        chain.extend(queued.iter().map(|q| q.record.clone()));
        outbox
            .record(content(5), &Limits::default(), 7)
            .await
            .unwrap();
        chain.push(outbox.queued_records(10).await.unwrap()[2].record.clone());
        verify_chain(outbox.device(), &chain).unwrap();
        // The refusal is kept for `status`.
        let rejected = outbox.rejected_records().await.unwrap();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].sequence, 2);
        assert!(
            rejected[0].reason.starts_with("altered"),
            "{}",
            rejected[0].reason
        );
        assert_eq!(rejected[0].resealed_as, None);
    }

    #[tokio::test]
    async fn a_fork_reseals_the_refused_record_too() {
        let (_dir, outbox) = outbox().await;
        make(&outbox, 2).await;
        let batch = outbox.queued_records(10).await.unwrap();
        // The gateway already holds two other records for this device.
        let other = seal(outbox.device(), &ChainHead::GENESIS, content(90));
        let other2 = seal(
            outbox.device(),
            &ChainHead::GENESIS.advance(&other),
            content(91),
        );
        let gateway = ChainHead::GENESIS.advance(&other).advance(&other2);
        let plan = plan_acks(
            &sent(&batch),
            &[
                RecordAck {
                    sequence: 1,
                    outcome: RecordOutcome::Rejected(RejectReason::Fork),
                },
                RecordAck {
                    sequence: 2,
                    outcome: RecordOutcome::Rejected(RejectReason::Fork),
                },
            ],
        );
        outbox.apply_record_acks(&plan, 5).await.unwrap();
        let (entry, reason) = plan.rejected.clone().unwrap();
        outbox
            .rechain(gateway, Some((entry, &reason)), 6)
            .await
            .unwrap();
        let queued = outbox.queued_records(10).await.unwrap();
        let seqs: Vec<_> = queued.iter().map(|q| q.record.sequence).collect();
        assert_eq!(seqs, [3, 4]);
        assert_eq!(queued[0].record.content.text, "entry 1");
        let rejected = outbox.rejected_records().await.unwrap();
        assert_eq!(rejected[0].resealed_as, Some(3));
        // Re-chaining again changes nothing: the queue continues the gateway's chain.
        let again = outbox.rechain(gateway, None, 7).await.unwrap();
        assert_eq!(again.resealed, 0);
    }

    #[tokio::test]
    async fn the_gateway_head_confirms_records_it_holds() {
        let (_dir, outbox) = outbox().await;
        make(&outbox, 5).await;
        let batch = outbox.queued_records(10).await.unwrap();
        // The gateway stored 1..=3 but the acks were lost with the connection.
        let head = batch[..3]
            .iter()
            .fold(ChainHead::GENESIS, |h, r| h.advance(&r.record));
        assert_eq!(outbox.reconcile(head).await.unwrap(), 3);
        let seqs: Vec<_> = outbox
            .queued_records(10)
            .await
            .unwrap()
            .iter()
            .map(|q| q.record.sequence)
            .collect();
        assert_eq!(seqs, [4, 5]);
        // A head whose hash is not ours confirms nothing.
        let foreign = ChainHead {
            next_sequence: 5,
            last_hash: Sha256Hash::of(b"someone else"),
        };
        assert_eq!(outbox.reconcile(foreign).await.unwrap(), 0);
        assert_eq!(outbox.queued_record_count().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_fresh_folder_continues_the_gateway_chain() {
        let (_dir, outbox) = outbox().await;
        let other = seal(outbox.device(), &ChainHead::GENESIS, content(1));
        let gateway = ChainHead::GENESIS.advance(&other);
        outbox.reconcile(gateway).await.unwrap();
        let made = outbox
            .record(content(2), &Limits::default(), 1)
            .await
            .unwrap();
        assert_eq!(made.sequence, 2);
        let next = outbox.queued_records(1).await.unwrap().remove(0).record;
        assert_eq!(next.previous_hash, other.hash);
    }
}
