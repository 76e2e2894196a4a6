//! The "clock implausible" flag on a device (DOMAIN R2): raised when its hello measures a
//! skew beyond `policy.clock.max_skew_secs` or when it sends a time after the moment the
//! gateway hears of it; cleared by a hello with a plausible skew. The records and
//! recordings concerned carry their own flag (`protocol::clock`).

use protocol::{DeviceId, Millis};

use crate::state::GatewayState;
use store::StoreError;
use store::recordings::CLOCK_IMPLAUSIBLE;

/// Raises the device's flag (once) and logs why.
pub(super) async fn raise(
    state: &GatewayState,
    device: &DeviceId,
    why: &str,
    now: Millis,
) -> Result<(), StoreError> {
    if state
        .store
        .raise_device_flag(device, CLOCK_IMPLAUSIBLE, now, now)
        .await?
    {
        tracing::warn!(%device, why, "device clock implausible");
    }
    Ok(())
}

/// Clears the device's flag, if it has one.
pub(super) async fn clear(
    state: &GatewayState,
    device: &DeviceId,
    now: Millis,
) -> Result<(), StoreError> {
    state
        .store
        .clear_device_flag(device, CLOCK_IMPLAUSIBLE, now)
        .await
        .map(drop)
}
