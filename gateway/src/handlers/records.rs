//! PushRecords: check each record against the protocol limits, hand the valid ones to
//! the group committer, and answer with one ack per record once the group committed.
//! An invalid record is refused on its own; the rest of the push is not lost.

use protocol::message::{
    FieldRecord, PushRecords, RecordAck, RecordAcks, RecordOutcome, RejectReason,
};
use protocol::{InvalidField, Limits, ResponseBody};

use super::{ConnectionContext, HandlerError};
use crate::state::GatewayState;
use crate::store::RecordBatch;

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
    for record in push.records {
        match validate(&record, limits) {
            Ok(()) => {
                acks.push(None);
                valid.push(record);
            }
            Err(e) => acks.push(Some(RecordAck {
                sequence: record.sequence,
                outcome: RecordOutcome::Rejected(RejectReason::Invalid {
                    problem: e.to_string(),
                }),
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
