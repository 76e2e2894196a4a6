//! The pure planner of pushes: which queued items go in the next push (no more than
//! the gateway's count limit, no bigger than its frame limit once encoded), and what
//! the gateway's acks to a push of field records mean. No IO: [`super::push`] reads the
//! outbox, sends, and applies what this decides, so every odd case is a unit test.

use protocol::Limits;
use protocol::message::{FieldRecord, RecordAck, encode_body};
use serde::Serialize;

use super::SyncError;
use crate::outbox::acks::{AckPlan, Sent, plan_acks};
use crate::outbox::records::OutboxRecord;

/// Bytes kept free in a frame for the envelope (version, message tag, array header).
const ENVELOPE_MARGIN: usize = 1024;

/// How many of `items` (oldest first) go in the next push: at least one (a single
/// item too big for a frame is sent anyway and refused by the gateway with a typed
/// error, rather than silently skipped), at most `max_items`, and within
/// `max_frame_bytes` when encoded.
pub fn fit<T: Serialize>(items: &[T], max_items: u32, max_frame_bytes: u32) -> usize {
    let budget = (max_frame_bytes as usize).saturating_sub(ENVELOPE_MARGIN);
    let mut used = 0usize;
    let mut count = 0usize;
    for item in items.iter().take(max_items.max(1) as usize) {
        let size = encode_body(item).len();
        if count > 0 && used + size > budget {
            break;
        }
        used += size;
        count += 1;
    }
    count
}

/// The field records of one push, oldest first, with the outbox rows they came from.
/// Dropping it changes nothing: the records stay queued until acks are applied.
#[derive(Debug)]
pub struct PushBatch {
    sent: Vec<Sent>,
    records: Vec<FieldRecord>,
}

impl PushBatch {
    /// How many records the push carries.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when it carries none (never, for a batch [`next_batch`] made).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in push order.
    pub fn records(&self) -> &[FieldRecord] {
        &self.records
    }

    /// What the gateway's acks to this push mean for the outbox (see [`plan_acks`]).
    pub fn plan(&self, acks: &[RecordAck]) -> AckPlan {
        plan_acks(&self.sent, acks)
    }

    /// The records to send, leaving what the acks are matched against.
    pub(crate) fn take_records(&mut self) -> Vec<FieldRecord> {
        std::mem::take(&mut self.records)
    }
}

/// How many queued records to read for the next push: at most `max` and the gateway's
/// per-push limit, at least one.
pub fn records_to_read(limits: &Limits, max: u32) -> u32 {
    max.min(limits.max_records_per_push).max(1)
}

/// The next push from `queued` (the oldest queued records, as the outbox returns them):
/// as many as [`fit`] the gateway's limits and `max`; `None` when nothing is queued.
pub fn next_batch(queued: Vec<OutboxRecord>, limits: &Limits, max: u32) -> Option<PushBatch> {
    let per_push = records_to_read(limits, max);
    let (mut sent, mut records): (Vec<Sent>, Vec<FieldRecord>) = queued
        .into_iter()
        .map(|q| {
            let sent = Sent {
                entry: q.entry,
                sequence: q.record.sequence,
            };
            (sent, q.record)
        })
        .unzip();
    let n = fit(&records, per_push, limits.max_frame_bytes);
    if n == 0 {
        return None;
    }
    sent.truncate(n);
    records.truncate(n);
    Some(PushBatch { sent, records })
}

/// Whether the acks answered the push: every record durable or refused, or at least a
/// refusal to re-chain after. Acks that leave records unanswered with nothing refused,
/// or make nothing durable, mean the gateway and the agent disagree about the push.
pub fn answered(plan: &AckPlan) -> Result<(), SyncError> {
    if plan.rejected.is_none() && (!plan.is_complete() || plan.durable.is_empty()) {
        return Err(SyncError::IncompleteAcks {
            sent: plan.pushed(),
            answered: plan.durable.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_limit_holds() {
        let items: Vec<String> = (0..10).map(|i| format!("item {i}")).collect();
        assert_eq!(fit(&items, 4, 1 << 20), 4);
        assert_eq!(fit(&items, 100, 1 << 20), 10);
        assert_eq!(fit::<String>(&[], 4, 1 << 20), 0);
    }

    #[test]
    fn the_frame_limit_holds_when_encoded() {
        let items: Vec<String> = (0..10).map(|_| "x".repeat(1000)).collect();
        let n = fit(&items, 100, 4096);
        assert!((1..=3).contains(&n), "{n}");
        let sent = protocol::message::encode_body(&items[..n].to_vec()).len();
        assert!(sent <= 4096, "{sent}");
    }

    #[test]
    fn one_oversized_item_is_still_sent_alone() {
        let items = vec!["x".repeat(10_000), "y".into()];
        assert_eq!(fit(&items, 100, 2048), 1);
    }

    fn queued(n: u64) -> Vec<OutboxRecord> {
        let device = protocol::DeviceId::new("dev-1").unwrap();
        let contents = (1..=n).map(protocol::test_util::numbered_content);
        let (records, _) =
            protocol::test_util::seal_chain(&device, protocol::chain::ChainHead::GENESIS, contents);
        records
            .into_iter()
            .enumerate()
            .map(|(i, record)| OutboxRecord {
                entry: 100 + i as i64,
                record,
            })
            .collect()
    }

    fn ack(sequence: u64, outcome: protocol::message::RecordOutcome) -> RecordAck {
        RecordAck { sequence, outcome }
    }

    #[test]
    fn a_batch_takes_the_oldest_records_within_max_and_the_gateway_limit() {
        let limits = Limits {
            max_records_per_push: 3,
            ..Limits::default()
        };
        assert_eq!(records_to_read(&limits, 10), 3);
        assert_eq!(records_to_read(&limits, 2), 2);
        assert_eq!(records_to_read(&limits, 0), 1);
        let batch = next_batch(queued(5), &limits, 10).unwrap();
        let sequences: Vec<u64> = batch.records().iter().map(|r| r.sequence).collect();
        assert_eq!(sequences, [1, 2, 3]);
        assert!(next_batch(Vec::new(), &limits, 10).is_none());
    }

    #[test]
    fn acks_are_matched_to_the_batch_and_unanswered_pushes_are_an_error() {
        use protocol::message::RecordOutcome::{Duplicate, Stored};
        let batch = next_batch(queued(3), &Limits::default(), 10).unwrap();
        let all = batch.plan(&[ack(1, Stored), ack(2, Duplicate), ack(3, Stored)]);
        assert_eq!(all.durable, [100, 101, 102]);
        assert!(answered(&all).is_ok());
        let partial = batch.plan(&[ack(1, Stored)]);
        assert_eq!(partial.durable, [100]);
        assert!(matches!(
            answered(&partial),
            Err(SyncError::IncompleteAcks {
                sent: 3,
                answered: 1
            })
        ));
        assert!(answered(&batch.plan(&[])).is_err());
    }

    #[test]
    fn a_refusal_is_answered_even_with_records_left_unanswered() {
        use protocol::message::RecordOutcome::{Rejected, Stored};
        use protocol::message::RejectReason;
        let batch = next_batch(queued(3), &Limits::default(), 10).unwrap();
        let plan = batch.plan(&[ack(1, Stored), ack(2, Rejected(RejectReason::Fork))]);
        assert_eq!(plan.rejected, Some((101, RejectReason::Fork)));
        assert!(answered(&plan).is_ok());
    }
}
