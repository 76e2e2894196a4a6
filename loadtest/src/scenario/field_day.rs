//! `field-day`: a working day of the fleet. Every device first docks with a backlog
//! of records it made offline (drained while the fleet connects; the durable-ingest
//! benchmark is the `ingest` scenario), then makes records at an open-loop rate,
//! checks officers' certificates online and uploads some recordings, and finally
//! syncs until nothing it holds is unacknowledged. Verified at the end.

use std::collections::HashMap;

use crate::options::{RunError, RunOptions};
use crate::report::Report;
use crate::runner::fleet_run::{Baselines, Director, field_day_plan, run_fleet};

/// Runs the scenario.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    let run = run_fleet(
        options,
        field_day_plan(options),
        Baselines::default(),
        Director::None,
        |_| None,
        HashMap::new(),
    )
    .await?;
    let (mut figures, failures) = run.common_figures(options.devices);
    figures.extend(run.ingest_figures(options));
    Ok(run.report(options, figures, failures))
}
