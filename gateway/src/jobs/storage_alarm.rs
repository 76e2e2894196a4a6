//! The storage alarm: every `storage.check_secs`, measures free space (gauges and
//! alarms, [`StorageWatch::check`]), writes an audit entry for every alarm raised or
//! cleared (retried until written) and says again in the log which components a
//! storage failure stopped.

use std::sync::Arc;
use std::time::Duration;

use store::Store;

use crate::faults::StorageFaults;
use crate::storage::{Crossing, StorageWatch};
use clock::SharedClock;

/// Runs the checks for as long as the gateway runs (the task is aborted at shutdown).
/// `first` are the crossings of the check made before the gateway served.
pub async fn run(
    storage: Arc<StorageWatch>,
    faults: Arc<StorageFaults>,
    store: Store,
    clock: SharedClock,
    every: Duration,
    first: Vec<Crossing>,
) {
    let mut unaudited = first;
    loop {
        let mut left = Vec::new();
        for crossing in unaudited {
            let (action, verb) = if crossing.raised {
                (store::actions::STORAGE_ALARM_RAISED, "raised")
            } else {
                (store::actions::STORAGE_ALARM_CLEARED, "cleared")
            };
            tracing::warn!(folder = crossing.folder.as_str(), detail = %crossing.detail, "storage alarm {verb}");
            let written = store
                .append_audit(
                    "gateway",
                    action,
                    crossing.folder.as_str(),
                    &crossing.detail,
                    clock.now(),
                )
                .await;
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot audit a storage alarm; retrying at the next check");
                left.push(crossing);
            }
        }
        unaudited = left;
        faults.remind();
        tokio::time::sleep(every).await;
        unaudited.extend(storage.check());
    }
}
