//! Hello: measure the device's clock skew, record when it was last seen, and answer
//! with gateway time and the limits.

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
    }))
}
