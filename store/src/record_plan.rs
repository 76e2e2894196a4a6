//! Deciding what happens to each record of a group commit, without IO: given every
//! device's stored chain head and the stored hashes at the sequence numbers that are
//! replayed, each record is appended, acknowledged as a duplicate, or refused as a
//! chain break (kept as tamper evidence). Pushes of one device are taken in the order
//! they were queued, so a device's second push in a group continues its first.

use std::collections::HashMap;

use protocol::DeviceId;
use protocol::chain::{Accepted, ChainBreak, ChainHead, check_record};
use protocol::hash::Sha256Hash;
use protocol::message::{FieldRecord, RecordAck, RecordOutcome, RejectReason};

/// One device's push inside a group.
pub(crate) struct PushRef<'a> {
    /// The device (from its certificate, never from the message).
    pub(crate) device: &'a DeviceId,
    /// Its records, in the order pushed.
    pub(crate) records: &'a [FieldRecord],
}

/// The decision for a whole group.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// One ack list per push, in push order.
    pub(crate) acks: Vec<Vec<RecordAck>>,
    /// `(push, record)` indexes of the records to append, in chain order per device.
    pub(crate) appends: Vec<(usize, usize)>,
    /// `(push, record, why)` of the records refused as chain breaks.
    pub(crate) breaks: Vec<(usize, usize, ChainBreak)>,
}

/// The `(device, sequence)` pairs whose stored hash the plan needs: records below the
/// stored head (replays or forks).
pub(crate) fn replayed<'a>(
    pushes: &[PushRef<'a>],
    heads: &HashMap<DeviceId, ChainHead>,
) -> Vec<(&'a DeviceId, u64)> {
    let mut out = Vec::new();
    for push in pushes {
        let next = heads
            .get(push.device)
            .map_or(1, |h: &ChainHead| h.next_sequence);
        for record in push.records {
            if record.sequence >= 1 && record.sequence < next {
                out.push((push.device, record.sequence));
            }
        }
    }
    out
}

/// Decides every record of a group. `heads` holds each device's stored head (absent =
/// empty chain); `stored` the stored hash at each sequence [`replayed`] asked for.
pub(crate) fn plan(
    pushes: &[PushRef<'_>],
    heads: &HashMap<DeviceId, ChainHead>,
    stored: &HashMap<(DeviceId, u64), Sha256Hash>,
) -> Plan {
    let mut running: HashMap<&DeviceId, ChainHead> = HashMap::new();
    // Hashes appended by this group, for a record pushed twice in one group.
    let mut appended: HashMap<(&DeviceId, u64), Sha256Hash> = HashMap::new();
    let mut out = Plan::default();
    for (p, push) in pushes.iter().enumerate() {
        let mut acks = Vec::with_capacity(push.records.len());
        for (r, record) in push.records.iter().enumerate() {
            let head = running
                .entry(push.device)
                .or_insert_with(|| heads.get(push.device).copied().unwrap_or_default());
            let at_sequence = appended
                .get(&(push.device, record.sequence))
                .or_else(|| stored.get(&(push.device.clone(), record.sequence)))
                .copied();
            let outcome = match check_record(push.device, head, record, at_sequence) {
                Ok(Accepted::Append) => {
                    *head = head.advance(record);
                    appended.insert((push.device, record.sequence), record.hash);
                    out.appends.push((p, r));
                    RecordOutcome::Stored
                }
                Ok(Accepted::Duplicate) => RecordOutcome::Duplicate,
                Err(chain_break) => {
                    let reason = RejectReason::from(&chain_break);
                    out.breaks.push((p, r, chain_break));
                    RecordOutcome::Rejected(reason)
                }
            };
            acks.push(RecordAck {
                sequence: record.sequence,
                outcome,
            });
        }
        out.acks.push(acks);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::chain::seal;
    use protocol::test_util::{numbered_content as content, seal_chain};

    fn device(n: u32) -> DeviceId {
        DeviceId::new(format!("dev-{n}")).unwrap()
    }

    fn chain(d: &DeviceId, n: u64) -> Vec<FieldRecord> {
        seal_chain(d, ChainHead::GENESIS, (1..=n).map(content)).0
    }

    fn outcomes(plan: &Plan, push: usize) -> Vec<RecordOutcome> {
        plan.acks[push].iter().map(|a| a.outcome.clone()).collect()
    }

    #[test]
    fn two_pushes_of_one_device_in_a_group_continue_each_other() {
        let d = device(1);
        let records = chain(&d, 4);
        let pushes = [
            PushRef {
                device: &d,
                records: &records[..2],
            },
            PushRef {
                device: &d,
                records: &records[2..],
            },
        ];
        let plan = plan(&pushes, &HashMap::new(), &HashMap::new());
        assert_eq!(plan.appends, vec![(0, 0), (0, 1), (1, 0), (1, 1)]);
        assert!(plan.breaks.is_empty());
    }

    #[test]
    fn a_replay_in_the_same_group_is_a_duplicate() {
        let d = device(1);
        let records = chain(&d, 2);
        let pushes = [
            PushRef {
                device: &d,
                records: &records,
            },
            PushRef {
                device: &d,
                records: &records,
            },
        ];
        let plan = plan(&pushes, &HashMap::new(), &HashMap::new());
        assert_eq!(plan.appends.len(), 2);
        assert_eq!(
            outcomes(&plan, 1),
            vec![RecordOutcome::Duplicate, RecordOutcome::Duplicate]
        );
    }

    #[test]
    fn stored_records_are_duplicates_and_different_ones_forks() {
        let d = device(1);
        let records = chain(&d, 3);
        let heads = HashMap::from([(d.clone(), ChainHead::GENESIS.advance(&records[0]))]);
        let stored = HashMap::from([((d.clone(), 1), records[0].hash)]);
        let fork = seal(&d, &ChainHead::GENESIS, content(99));
        let push = [fork, records[0].clone(), records[1].clone()];
        let pushes = [PushRef {
            device: &d,
            records: &push,
        }];
        assert_eq!(replayed(&pushes, &heads), vec![(&d, 1), (&d, 1)]);
        let plan = plan(&pushes, &heads, &stored);
        assert_eq!(
            outcomes(&plan, 0),
            vec![
                RecordOutcome::Rejected(RejectReason::Fork),
                RecordOutcome::Duplicate,
                RecordOutcome::Stored
            ]
        );
    }

    #[test]
    fn a_break_does_not_lose_the_rest_of_the_batch() {
        let d = device(1);
        let e = device(2);
        let mut records = chain(&d, 3);
        records[1].content.text.push('!');
        let other = chain(&e, 2);
        let pushes = [
            PushRef {
                device: &d,
                records: &records,
            },
            PushRef {
                device: &e,
                records: &other,
            },
        ];
        let plan = plan(&pushes, &HashMap::new(), &HashMap::new());
        assert_eq!(
            outcomes(&plan, 0),
            vec![
                RecordOutcome::Stored,
                RecordOutcome::Rejected(RejectReason::Altered),
                RecordOutcome::Rejected(RejectReason::Gap { expected: 2 }),
            ]
        );
        assert_eq!(
            outcomes(&plan, 1),
            vec![RecordOutcome::Stored, RecordOutcome::Stored]
        );
        assert_eq!(plan.breaks.len(), 2);
    }
}
