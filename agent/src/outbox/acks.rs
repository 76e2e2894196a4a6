//! What a gateway's acks mean for the outbox: pure, so every odd reply is a unit test.
//!
//! A record leaves the outbox only on an ack for *its* sequence number that says
//! stored or duplicate. The first refusal stops the chain there (later records link to
//! the refused one, so the gateway refuses them too, as gaps); the outbox marks it and
//! seals the rest again onto the gateway's chain (see [`super::rechain`]).

use std::collections::HashMap;

use protocol::message::{RecordAck, RecordOutcome, RejectReason};

/// One record that was pushed: its outbox entry and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The outbox row.
    pub entry: i64,
    /// The record's sequence number.
    pub sequence: u64,
}

/// What to do with a pushed batch, given its acks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckPlan {
    /// Entries the gateway holds durably: remove them.
    pub durable: Vec<i64>,
    /// How many of those were stored now.
    pub stored: usize,
    /// How many were already stored (replays).
    pub duplicate: usize,
    /// The first refused record of the batch, in push order.
    pub rejected: Option<(i64, RejectReason)>,
    /// Refusals after the first one (consequences of it, resealed with the rest).
    pub rejected_after: usize,
    /// Pushed records with no ack at all (they stay queued).
    pub unanswered: usize,
    /// Acks for sequence numbers that were not pushed (ignored).
    pub unexpected: usize,
}

impl AckPlan {
    /// How many records the push carried: each is durable, refused or unanswered.
    pub fn pushed(&self) -> usize {
        self.durable.len()
            + usize::from(self.rejected.is_some())
            + self.rejected_after
            + self.unanswered
    }

    /// True when the gateway answered every record and named none it was not sent.
    pub fn is_complete(&self) -> bool {
        self.unanswered == 0 && self.unexpected == 0
    }
}

/// Matches acks to the pushed records by sequence number.
pub fn plan_acks(sent: &[Sent], acks: &[RecordAck]) -> AckPlan {
    let mut by_sequence: HashMap<u64, &RecordOutcome> = HashMap::with_capacity(acks.len());
    let mut plan = AckPlan::default();
    for ack in acks {
        if !sent.iter().any(|s| s.sequence == ack.sequence)
            || by_sequence.insert(ack.sequence, &ack.outcome).is_some()
        {
            plan.unexpected += 1;
        }
    }
    for record in sent {
        match by_sequence.get(&record.sequence) {
            None => plan.unanswered += 1,
            Some(RecordOutcome::Stored) => {
                plan.durable.push(record.entry);
                plan.stored += 1;
            }
            Some(RecordOutcome::Duplicate) => {
                plan.durable.push(record.entry);
                plan.duplicate += 1;
            }
            Some(RecordOutcome::Rejected(reason)) => {
                if plan.rejected.is_none() {
                    plan.rejected = Some((record.entry, reason.clone()));
                } else {
                    plan.rejected_after += 1;
                }
            }
        }
    }
    plan
}

/// True when a refused record's content was fine and only its place in the chain was
/// wrong (a gap, a fork, a broken link): it is sealed again onto the gateway's chain so
/// the officer's record still joins the case. An altered or invalid record is not: its
/// content is the problem, and it stays refused for people to look at.
pub fn is_positional(reason: &RejectReason) -> bool {
    matches!(
        reason,
        RejectReason::Gap { .. } | RejectReason::Fork | RejectReason::BrokenLink
    )
}

/// A refusal in words, for `status` and logs.
pub fn describe(reason: &RejectReason) -> String {
    match reason {
        RejectReason::Gap { expected } => format!("gap: the gateway expected sequence {expected}"),
        RejectReason::Fork => "fork: the gateway holds a different record at this sequence".into(),
        RejectReason::Altered => "altered: the record does not match its hash".into(),
        RejectReason::BrokenLink => {
            "broken link: the record does not follow the gateway's previous record".into()
        }
        RejectReason::Invalid { problem } => format!("invalid: {problem}"),
        RejectReason::UnknownActionKind { action_kind, known } => format!(
            "unknown action kind {action_kind:?}; the gateway knows: {}",
            known.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(n: u64) -> Vec<Sent> {
        (1..=n)
            .map(|s| Sent {
                entry: s as i64 * 10,
                sequence: s,
            })
            .collect()
    }

    fn ack(sequence: u64, outcome: RecordOutcome) -> RecordAck {
        RecordAck { sequence, outcome }
    }

    #[test]
    fn stored_and_duplicate_leave_the_outbox() {
        let plan = plan_acks(
            &sent(3),
            &[
                ack(1, RecordOutcome::Duplicate),
                ack(2, RecordOutcome::Stored),
                ack(3, RecordOutcome::Stored),
            ],
        );
        assert_eq!(plan.durable, vec![10, 20, 30]);
        assert_eq!((plan.stored, plan.duplicate), (2, 1));
        assert!(plan.is_complete());
        assert!(plan.rejected.is_none());
    }

    #[test]
    fn the_first_refusal_is_kept_and_later_ones_counted() {
        let plan = plan_acks(
            &sent(4),
            &[
                ack(1, RecordOutcome::Stored),
                ack(2, RecordOutcome::Rejected(RejectReason::Altered)),
                ack(
                    3,
                    RecordOutcome::Rejected(RejectReason::Gap { expected: 2 }),
                ),
                ack(
                    4,
                    RecordOutcome::Rejected(RejectReason::Gap { expected: 2 }),
                ),
            ],
        );
        assert_eq!(plan.durable, vec![10]);
        assert_eq!(plan.rejected, Some((20, RejectReason::Altered)));
        assert_eq!(plan.rejected_after, 2);
    }

    #[test]
    fn a_missing_or_foreign_ack_removes_nothing_it_does_not_name() {
        // The gateway answered only record 2, plus a sequence it was never sent.
        let plan = plan_acks(
            &sent(3),
            &[
                ack(2, RecordOutcome::Stored),
                ack(9, RecordOutcome::Stored),
                ack(2, RecordOutcome::Stored),
            ],
        );
        assert_eq!(plan.durable, vec![20]);
        assert_eq!(plan.unanswered, 2);
        assert_eq!(plan.unexpected, 2);
        assert!(!plan.is_complete());
        // No acks at all: everything stays.
        let plan = plan_acks(&sent(2), &[]);
        assert!(plan.durable.is_empty());
        assert_eq!(plan.unanswered, 2);
    }

    #[test]
    fn only_chain_position_refusals_are_sealed_again() {
        assert!(is_positional(&RejectReason::Gap { expected: 3 }));
        assert!(is_positional(&RejectReason::Fork));
        assert!(is_positional(&RejectReason::BrokenLink));
        assert!(!is_positional(&RejectReason::Altered));
        assert!(!is_positional(&RejectReason::Invalid {
            problem: "x".into()
        }));
        assert!(describe(&RejectReason::Gap { expected: 3 }).contains('3'));
    }
}
