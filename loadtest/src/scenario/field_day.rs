//! `field-day`: a working day of the fleet. Every device first docks with a backlog
//! of records it made offline (drained while the fleet connects; the durable-ingest
//! benchmark is the `ingest` scenario), then makes records at an open-loop rate,
//! checks officers' certificates online and uploads some recordings, and finally
//! syncs until nothing it holds is unacknowledged. Verified at the end.

use super::fleet_run::{Baselines, Director, FleetRun, run_fleet};
use super::{RunError, RunOptions, cores};
use crate::report::{Figure, Report, Target};
use crate::sim::{Plan, ops};
use std::collections::HashMap;

/// The plan of a field day from the run's options.
pub fn plan(options: &RunOptions) -> Plan {
    Plan {
        backlog: options.sim.backlog,
        offline_recordings: 0,
        record_interval: options.sim.record_interval(),
        check_every: options.sim.check_every,
        steady_recordings: options.sim.recordings,
        recording_size: options.sim.recording_size,
        steady: options.duration,
        ..Plan::default()
    }
}

/// Runs the scenario.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    let baselines = Baselines::default();
    let run = run_fleet(
        options,
        plan(options),
        baselines,
        Director::None,
        |_| None,
        HashMap::new(),
    )
    .await?;
    let (mut figures, failures) = run.common_figures(options.devices);
    figures.extend(ingest_figures(&run, options));
    Ok(report(options, &run, figures, failures))
}

/// The backlog drain (connection ramp included) and the steady record rate.
pub fn ingest_figures(run: &FleetRun, options: &RunOptions) -> Vec<Figure> {
    let mut figures = Vec::new();
    let backlog = options.sim.backlog as f64 * run.outcomes.len() as f64;
    if backlog > 0.0
        && let Some(wall) = run.backlog_wall()
    {
        figures.push(Figure::new(
            "backlog drain, connection ramp included",
            backlog / wall.as_secs_f64().max(1e-9),
            "records/s",
            None,
            Target::None,
        ));
    }
    if let Some(interval) = options.sim.record_interval() {
        figures.push(Figure::new(
            "offered record rate (steady)",
            run.outcomes.len() as f64 / interval.as_secs_f64(),
            "records/s",
            None,
            Target::None,
        ));
        figures.push(Figure::new(
            "records acknowledged per second",
            run.records_acked() as f64 / (run.end - run.t0).as_secs_f64().max(1e-9),
            "records/s",
            None,
            Target::None,
        ));
    }
    if let Some(p99) = run.stats.quantile_ms(ops::RECORD, 0.99) {
        figures.push(Figure::new(
            "record p99, planned→ack",
            p99,
            "ms",
            None,
            Target::None,
        ));
    }
    figures
}

/// The report of a fleet run.
pub fn report(
    options: &RunOptions,
    run: &FleetRun,
    figures: Vec<Figure>,
    failures: Vec<String>,
) -> Report {
    Report {
        scenario: options.scenario.name().into(),
        devices: options.devices,
        duration_secs: options.duration.as_secs_f64(),
        cores: cores(),
        figures,
        operations: run.stats.summaries(),
        errors: run.stats.errors(),
        throughput: run.stats.throughput(),
        gateway: run.gateway.clone(),
        failures,
    }
}
