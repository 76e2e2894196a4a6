//! The staging sweep: every `media.staging_sweep_secs`, removes the staging files nobody
//! has written for `media.staging_max_age_hours` (by the gateway's clock), counts them
//! and sets their recordings' progress back to zero (a device that does come back
//! uploads from the start). Which files may go is the media store's call
//! ([`media::MediaStore::remove_abandoned`]); this job only says when.

use std::sync::Arc;
use std::time::Duration;

use media::{MediaSettings, MediaStore};
use prometheus::IntCounter;
use protocol::Millis;
use store::Store;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use clock::SharedClock;

/// Runs the sweep until `shutdown`; `removed` counts the files removed.
pub async fn run(
    media: Arc<MediaStore>,
    store: Store,
    clock: SharedClock,
    settings: MediaSettings,
    removed: IntCounter,
    shutdown: CancellationToken,
) {
    let every = Duration::from_secs(settings.staging_sweep_secs);
    let max_age = Millis::from(settings.staging_max_age_hours) * 3_600_000;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let before = clock.now().saturating_sub(max_age);
        let forget = |id: Uuid| {
            let store = &store;
            async move {
                if let Err(e) = store.set_recording_progress(id, 0).await {
                    tracing::warn!(recording = %id, error = %e, "cannot reset a swept recording's progress");
                }
            }
        };
        match media.remove_abandoned(before, forget).await {
            Ok(0) => {}
            Ok(n) => {
                removed.inc_by(n);
                tracing::info!(removed = n, "abandoned staging files removed");
            }
            Err(e) => tracing::warn!(error = %e, "cannot sweep the staging folder"),
        }
    }
}
