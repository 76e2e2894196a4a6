//! `shift-end`: the end of a shift, when every officer docks at once. Each device
//! spent the shift offline making records and recordings; then every device connects
//! and uploads everything together. The upload goodput (recording bytes stored per
//! second of the burst) is reported against the bare quinn bulk transfer of the same
//! run. Verified at the end.

use std::collections::HashMap;
use std::time::Duration;

use crate::options::{RunError, RunOptions};
use crate::report::{Figure, Report, Target};
use crate::runner::fleet_run::{Baselines, Director, run_fleet};
use crate::sim::{Plan, ops};

/// The goal for upload goodput against the bare bulk transfer.
pub const GOODPUT_RATIO_TARGET: f64 = 0.7;

/// Runs the scenario.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    let plan = Plan {
        backlog: options.sim.backlog,
        offline_recordings: options.sim.recordings.max(1),
        record_interval: None,
        check_every: 0,
        steady_recordings: 0,
        recording_size: options.sim.recording_size,
        steady: Duration::ZERO,
        // The burst may take long on a big fleet; the run's duration bounds it.
        drain: options.duration.max(Duration::from_secs(60)),
        ..Plan::default()
    };
    let baselines = Baselines {
        sqlite: false,
        bulk: true,
    };
    let run = run_fleet(
        options,
        plan,
        baselines,
        Director::None,
        |_| None,
        HashMap::new(),
    )
    .await?;
    let (mut figures, mut failures) = run.common_figures(options.devices);
    let bytes = run.recording_bytes();
    match run.backlog_wall() {
        Some(wall) => figures.push(Figure::new(
            "upload goodput (every device at once)",
            bytes as f64 / wall.as_secs_f64().max(1e-9) / 1_048_576.0,
            "MiB/s",
            run.bulk_bytes_per_sec.map(|b| b / 1_048_576.0),
            Target::RatioAtLeast(GOODPUT_RATIO_TARGET),
        )),
        None => failures.push(format!(
            "shift-end: not every device finished its uploads within {:?}",
            options.duration.max(Duration::from_secs(60))
        )),
    }
    figures.push(Figure::new(
        "recording bytes stored",
        bytes as f64 / 1_048_576.0,
        "MiB",
        None,
        Target::None,
    ));
    if let Some(p99) = run.stats.quantile_ms(ops::RECORDING, 0.99) {
        figures.push(Figure::new(
            "recording p99, queued→stored",
            p99,
            "ms",
            None,
            Target::None,
        ));
    }
    Ok(run.report(options, figures, failures))
}
