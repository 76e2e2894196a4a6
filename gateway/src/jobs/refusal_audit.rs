//! The refusal audit: writes the refused-handshake summaries
//! ([`RefusalLog::flush`]) every `device.refusal_audit_secs`, the first one interval
//! after the start, until the gateway stops (shutdown writes what is left).

use std::sync::Arc;
use std::time::Duration;

use store::Store;
use tokio_util::sync::CancellationToken;

use crate::refusals::RefusalLog;
use clock::SharedClock;

/// Runs the audit until `shutdown`, a flush every `every`.
pub async fn run(
    refusals: Arc<RefusalLog>,
    store: Store,
    clock: SharedClock,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => break,
        }
        refusals.flush(&store, clock.now()).await;
    }
}
