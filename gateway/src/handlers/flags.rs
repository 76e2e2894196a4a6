//! FlagsSince: the two-officer flag changes on the asking device's records after the
//! last one it holds (issue 21, point 6), at most `FLAG_CHANGES_PER_REPLY` at a time,
//! so the officer hears at the next sync that a record was flagged or cleared —
//! including by a registry change or a correction long after it was pushed.

use protocol::ResponseBody;
use protocol::message::{FLAG_CHANGES_PER_REPLY, FlagChange, FlagChanges, FlagsSince};

use super::{ConnectionContext, HandlerError};
use crate::state::GatewayState;

/// Serves a flags request.
pub(super) async fn handle(
    state: &GatewayState,
    ctx: &ConnectionContext,
    since: FlagsSince,
) -> Result<ResponseBody, HandlerError> {
    let after = i64::try_from(since.after).unwrap_or(i64::MAX);
    // One extra row tells whether more follow.
    let mut changes = state
        .store
        .two_officer_flag_changes(&ctx.device_id, after, FLAG_CHANGES_PER_REPLY + 1)
        .await?;
    let more = changes.len() > FLAG_CHANGES_PER_REPLY as usize;
    changes.truncate(FLAG_CHANGES_PER_REPLY as usize);
    Ok(ResponseBody::FlagChanges(FlagChanges {
        changes: changes
            .into_iter()
            .map(|c| FlagChange {
                id: c.id.max(0) as u64,
                sequence: c.sequence,
                action_kind: c.action_kind,
                raised: c.raised,
                certified: c.certified,
                required: c.required,
                not_counted: c.not_counted,
                cause: c.cause,
                cause_ref: c.cause_ref,
                at: c.at,
            })
            .collect(),
        more,
    }))
}
