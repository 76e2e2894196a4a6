//! The two-officer review job (DOMAIN R4 over time; issue 21, point 4): works off the
//! reviews that stored corrections queued in the store (`two_officer_reviews_due`,
//! written by the ingest transaction that stored the correction, so a crash loses
//! none). Each review judges the corrected record again and raises or clears its flag
//! with an audit entry, in a registry write transaction: ingest cannot write audit
//! entries without waiting for registry changes.
//!
//! It wakes when the committer stored a correction (`due`), and every `every` for what
//! is left (a restart, or another gateway's ingest on a shared database). Registry
//! changes review their records themselves, in their own transaction.

use std::sync::Arc;
use std::time::Duration;

use clock::SharedClock;
use store::{Store, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Works off every queued review at the clock's time; returns how many were done.
pub async fn review_queued(store: &Store, clock: &SharedClock) -> Result<usize, StoreError> {
    let mut done = 0;
    // Only a queue with work takes the registry's write lock.
    while store.queued_two_officer_reviews().await? > 0 {
        let n = store.review_queued_two_officer_flags(clock.now()).await?;
        if n == 0 {
            break;
        }
        done += n;
    }
    if done > 0 {
        tracing::info!(
            reviews = done,
            "two-officer flags reviewed after corrections"
        );
    }
    Ok(done)
}

/// Runs [`review_queued`] at start, whenever `due` is notified, and every `every`,
/// until `shutdown`.
pub async fn run(
    store: Store,
    clock: SharedClock,
    due: Arc<Notify>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = due.notified() => {}
            () = shutdown.cancelled() => return,
        }
        if let Err(e) = review_queued(&store, &clock).await {
            tracing::warn!(error = %e, "two-officer review failed; retrying at the next tick");
        }
    }
}
