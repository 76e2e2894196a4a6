//! Hello: measure the device's clock skew (raising or clearing the device's "clock
//! implausible" flag), record when it was last seen, and answer with gateway time, the
//! limits, and the terminals' rules when the device's copy is not current.

use protocol::ResponseBody;
use protocol::deadline::ClockSkew;
use protocol::message::{Hello, Welcome};

use super::{ConnectionContext, HandlerError};
use crate::state::GatewayState;

/// Serves a hello.
pub(super) async fn handle(
    state: &GatewayState,
    ctx: &ConnectionContext,
    hello: Hello,
) -> Result<ResponseBody, HandlerError> {
    hello.validate(&state.config.limits)?;
    let now = state.clock.now();
    let skew = ClockSkew::measure(now, hello.device_time);
    state
        .store
        .record_hello(&ctx.device_id, now, skew.as_millis())
        .await?;
    let _ = ctx.skew.set(skew);
    if state.config.policy.clock.skew_implausible(skew) {
        super::clock::raise(state, &ctx.device_id, "skew beyond the bound", now).await?;
    } else {
        super::clock::clear(state, &ctx.device_id, now).await?;
    }
    let roster_version = state.store.roster_version().await?;
    let chain = state.store.chain_head(&ctx.device_id).await?;
    tracing::debug!(device = %ctx.device_id, skew_ms = skew.as_millis(), "hello");
    Ok(ResponseBody::Welcome(Welcome {
        device_id: ctx.device_id.clone(),
        gateway_time: now,
        clock_skew_ms: skew.as_millis(),
        limits: state.config.limits.clone(),
        roster_version,
        // Where the device's stored chain ends, so a device that lost its outbox (or a
        // replacement) continues the chain instead of forking it.
        chain,
        // The rules only to a device that holds none or other ones.
        rules: (hello.rules_digest != Some(state.device_rules_digest))
            .then(|| state.device_rules.clone()),
    }))
}
