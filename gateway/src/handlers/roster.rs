//! RosterSince: the roster changes after the version a terminal holds, at most
//! `limits.max_roster_entries` at a time, so its offline checks see withdrawals and
//! revocations (DOMAIN R4).

use protocol::ResponseBody;
use protocol::message::{RosterDelta, RosterSince};

use super::{ConnectionContext, HandlerError};
use crate::state::GatewayState;
use store::roster_entry;

/// Serves a roster request.
pub(super) async fn handle(
    state: &GatewayState,
    _ctx: &ConnectionContext,
    since: RosterSince,
) -> Result<ResponseBody, HandlerError> {
    let limit = state.config.limits.max_roster_entries.max(1);
    // A terminal that claims a version the registry never handed out (its roster came
    // from another deployment, or the registry was restored from a backup) gets the
    // whole roster again, as a delta from 0, rather than silently nothing.
    let from_version = if since.version > state.store.roster_version().await? {
        0
    } else {
        since.version
    };
    let page = state.store.roster_page(from_version, Some(limit)).await?;
    Ok(ResponseBody::RosterDelta(RosterDelta {
        from_version,
        to_version: page.to_version,
        entries: page.officers.iter().map(roster_entry).collect(),
        more: page.more,
    }))
}
