//! `kill-restart`: a field day during which the gateway this harness started is
//! SIGKILLed halfway (as a power cut or the OOM killer would) and started again on
//! the same folders. Its port changes; the devices notice the dead connection, follow
//! the new address and resend what was not acknowledged. Verified at the end: not
//! one acknowledged record or recording may be lost or stored twice.

use std::collections::HashMap;

use crate::options::{RunError, RunOptions};
use crate::report::{Figure, Report, Target};
use crate::runner::fleet_run::{Baselines, Director, field_day_plan, run_fleet};

/// Runs the scenario.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    if options.gateway.is_some() {
        return Err(RunError::Options(
            "kill-restart kills the gateway it started; it cannot target --gateway".into(),
        ));
    }
    let mut plan = field_day_plan(options);
    // Notice the killed gateway within seconds rather than the default minute.
    plan.keep_alive_secs = 1;
    plan.idle_timeout_secs = 3;
    let baselines = Baselines::default();
    let run = run_fleet(
        options,
        plan,
        baselines,
        Director::KillRestart(options.duration / 2),
        |_| None,
        HashMap::new(),
    )
    .await?;
    let (mut figures, mut failures) = run.common_figures(options.devices);
    figures.extend(run.ingest_figures(options));
    figures.push(Figure::new(
        "gateway SIGKILLs",
        run.restarts.len() as f64,
        "kills",
        None,
        Target::Equals(1.0),
    ));
    if let Some(outage) = run.restarts.first() {
        figures.push(Figure::new(
            "restart (kill → listening again)",
            outage.as_secs_f64() * 1000.0,
            "ms",
            None,
            Target::None,
        ));
    } else {
        failures.push("kill-restart: the gateway was never killed (run too short?)".into());
    }
    Ok(run.report(options, figures, failures))
}
