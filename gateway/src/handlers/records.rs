//! PushRecords: check each record against the protocol limits, hand the valid ones to
//! the group committer, and answer with one ack per record once the group committed.
//! An invalid record is refused on its own; the rest of the push is not lost.

use protocol::message::{
    FieldRecord, PushRecords, RecordAck, RecordAcks, RecordOutcome, RejectReason,
};
use protocol::{InvalidField, Limits, ResponseBody};

use super::{ConnectionContext, HandlerError};
use crate::state::GatewayState;
use store::RecordBatch;

/// Serves a push of field records.
pub(super) async fn handle(
    state: &GatewayState,
    ctx: &ConnectionContext,
    push: PushRecords,
) -> Result<ResponseBody, HandlerError> {
    let limits = &state.config.limits;
    let count = push.records.len();
    if count > limits.max_records_per_push as usize {
        return Err(HandlerError::TooMany {
            what: "records",
            count,
            limit: limits.max_records_per_push,
        });
    }
    let skew = ctx.skew.get().copied().ok_or(HandlerError::HelloRequired)?;
    let mut acks: Vec<Option<RecordAck>> = Vec::with_capacity(count);
    let mut valid = Vec::with_capacity(count);
    let kinds = &state.config.policy.action_kinds;
    for record in push.records {
        let refused = match validate(&record, limits) {
            Err(e) => Some(RejectReason::Invalid {
                problem: e.to_string(),
            }),
            // DOMAIN R3: a misspelt kind is refused, never silently exempt.
            Ok(()) => kinds.lookup(&record.content.action_kind).err().map(|e| {
                RejectReason::UnknownActionKind {
                    action_kind: e.kind,
                    known: e.known,
                }
            }),
        };
        match refused {
            None => {
                acks.push(None);
                valid.push(record);
            }
            Some(reason) => acks.push(Some(RecordAck {
                sequence: record.sequence,
                outcome: RecordOutcome::Rejected(reason),
            })),
        }
    }
    let invalid = (count - valid.len()) as u64;
    if invalid > 0 {
        state
            .ingest
            .metrics()
            .records
            .with_label_values(&["rejected"])
            .inc_by(invalid);
    }
    let now = state.clock.now();
    let clock = &state.config.policy.clock;
    if valid
        .iter()
        .any(|r| protocol::clock::on_gateway_time(r.content.made_at, skew, now, clock).implausible)
    {
        super::clock::raise(state, &ctx.device_id, "record time", now).await?;
    }
    let stored = if valid.is_empty() {
        Vec::new()
    } else {
        let batch = RecordBatch {
            device: ctx.device_id.clone(),
            skew,
            records: valid,
        };
        state.ingest.submit(batch).await?
    };
    let mut stored = stored.into_iter();
    let acks = acks
        .into_iter()
        .map(|ack| ack.or_else(|| stored.next()))
        .collect::<Option<Vec<_>>>()
        .ok_or(HandlerError::Internal(
            "the committer returned too few acks",
        ))?;
    Ok(ResponseBody::RecordAcks(RecordAcks { acks }))
}

/// The protocol's field checks (NUL characters included, which PostgreSQL text cannot
/// hold), refused here so one device's record can never fail a whole group commit.
fn validate(record: &FieldRecord, limits: &Limits) -> Result<(), InvalidField> {
    let content = &record.content;
    content.validate(limits)?;
    if record.sequence == 0 || record.sequence > i64::MAX as u64 {
        return Err(InvalidField::new(
            "sequence",
            "must be between 1 and 2^63 - 1",
        ));
    }
    if content
        .corrects
        .is_some_and(|s| s == 0 || s >= record.sequence)
    {
        return Err(InvalidField::new(
            "corrects",
            "must name an earlier record of the same chain",
        ));
    }
    Ok(())
}
