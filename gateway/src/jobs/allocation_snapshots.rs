//! The daily allocation snapshot: every minute, takes the day's snapshot once it is
//! due (`allocation_report.snapshot_hour`, local time), so finance sees the trend.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::AllocationReportConfig;
use crate::views::allocation::AllocationSource;

/// How often the job looks at the clock.
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// Runs until `shutdown`: every minute, takes the day's snapshot when it is due.
pub async fn run(
    allocation: AllocationSource,
    config: AllocationReportConfig,
    shutdown: CancellationToken,
) {
    loop {
        match allocation.snapshot_if_due(&config).await {
            Ok(Some(day)) => tracing::info!(%day, "took the daily allocation snapshot"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take the allocation snapshot; will retry"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}
