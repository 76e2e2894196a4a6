//! The deadline watcher: a deadline pass ([`Deadlines::evaluate`]) at start and then
//! every `deadline_check_secs`, until shutdown. A failed pass is logged and retried at
//! the next tick; the gauges keep the last good pass's figures.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::deadlines::Deadlines;

/// Runs the watcher until `shutdown`, a pass every `every`.
pub async fn run(deadlines: Deadlines, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => break,
        }
        if let Err(e) = deadlines.evaluate().await {
            tracing::warn!(error = %e, "deadline pass failed; retrying at the next tick");
        }
        deadlines.metrics.first_pass.send_replace(true);
    }
}
