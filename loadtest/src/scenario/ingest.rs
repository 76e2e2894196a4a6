//! `ingest`: durable record ingest with many devices pushing batches (the records
//! issue's benchmark). Every device makes `--backlog` records offline plus those of
//! the paced phase (not timed), connects, says hello and reads its first batch from
//! its outbox. Then all at once each pushes its backlog, a batch after every ack, until
//! the last ack: the drain's records per second are divided by the fastest plain SQLite
//! insert of the same rows in the same run; beside it, the same rows through the
//! gateway's store alone (no network), the most any gateway on that store could reach.
//! Then each device pushes batches of the drain's size at planned times, at half the
//! drain's rate in all; after a warm-up, the 99th percentile from planned time to ack
//! is the ack-latency figure. Verified at the end like every data scenario.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Barrier, watch};

use crate::options::{RunError, RunOptions};
use crate::report::{Figure, Report, Target};
use crate::runner::fleet_run::{Baselines, Director, run_fleet_with};
use crate::sim::Plan;
use crate::sim::pushes::{self, DRAIN_BATCH, Pace, Phases, PushPlan};

/// The goal for durable record ingest against the SQLite baseline.
pub const INGEST_RATIO_TARGET: f64 = 0.75;
/// Measured pushes per device in the paced phase (3,000 latencies at 1,000 devices).
const PACED_PUSHES: u32 = 3;
/// Unmeasured pushes before them (see [`PushPlan::paced_warmup`]).
const PACED_WARMUP: u32 = 3;
/// The paced phase offers this share of the drain's rate.
pub const PACED_SHARE: f64 = 0.5;
/// The goal for the paced phase's 99th-percentile ack latency.
pub const ACK_P99_TARGET_MS: f64 = 50.0;
/// How long a device retries a failing push before it gives up.
const GIVE_UP: Duration = Duration::from_secs(120);

/// What the director measured between the phases.
#[derive(Clone, Copy, Debug)]
struct Drain {
    wall: Duration,
    pace: Pace,
}

/// Runs the scenario.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    if options.sim.backlog == 0 {
        return Err(RunError::Options(
            "ingest drains each device's backlog: --backlog must be at least 1".into(),
        ));
    }
    let push_plan = PushPlan {
        drain_records: options.sim.backlog,
        drain_batch: DRAIN_BATCH,
        // The same pushes as the drain's, at half its rate: half the load of the same
        // shape. (Smaller pushes cost more per record, so half the drain's rate in
        // pushes of 50 was near the machine's limit, not half of it.)
        paced_batch: DRAIN_BATCH.min(options.sim.backlog),
        paced_pushes: PACED_WARMUP + PACED_PUSHES,
        paced_warmup: PACED_WARMUP,
    };
    let plan = Plan {
        backlog: push_plan.backlog(),
        record_interval: None,
        check_every: 0,
        steady: Duration::ZERO,
        ..Plan::default()
    };
    let drain: Arc<Mutex<Option<Drain>>> = Arc::default();
    let measured = drain.clone();
    let driver = move |ready: usize| {
        let (pace_tx, pace_rx) = watch::channel(None);
        let phases = Arc::new(Phases {
            barrier: Barrier::new(ready + 1),
            pace: pace_rx,
            give_up_after: GIVE_UP,
            last_drain_ack: Mutex::default(),
        });
        tokio::spawn(direct(phases.clone(), pace_tx, ready, push_plan, measured));
        move |device, fleet| pushes::run(device, fleet, push_plan, phases.clone())
    };
    let baselines = Baselines {
        sqlite: true,
        bulk: false,
    };
    let run = run_fleet_with(
        options,
        plan,
        baselines,
        Director::None,
        |_| None,
        HashMap::new(),
        driver,
    )
    .await?;
    let (mut figures, mut failures) = run.common_figures(options.devices);
    let drain = *drain.lock().unwrap_or_else(PoisonError::into_inner);
    let drained = run
        .outcomes
        .iter()
        .filter(|o| o.backlog_done.is_some())
        .count();
    if drained < run.outcomes.len() {
        failures.push(format!(
            "{} of {} devices did not finish their drain",
            run.outcomes.len() - drained,
            run.outcomes.len()
        ));
    }
    if let Some(rate) = run.store_alone_per_sec {
        figures.push(Figure::new(
            "the gateway's store alone, same rows (no network)",
            rate,
            "records/s",
            run.sqlite_rows_per_sec,
            Target::None,
        ));
    }
    if let Some(d) = drain {
        let records = f64::from(push_plan.drain_records) * drained as f64;
        let rate = records / d.wall.as_secs_f64().max(1e-9);
        figures.push(Figure::new(
            "durable record ingest (drain)",
            rate,
            "records/s",
            run.sqlite_rows_per_sec,
            Target::RatioAtLeast(INGEST_RATIO_TARGET),
        ));
        figures.push(Figure::new(
            "paced rate offered",
            offered_rate(drained, push_plan.paced_batch, d.pace.interval),
            "records/s",
            None,
            Target::None,
        ));
    }
    if let Some(p99) = run.stats.quantile_ms(pushes::ops::PACED_PUSH, 0.99) {
        figures.push(Figure::new(
            "paced push p99, planned→ack",
            p99,
            "ms",
            None,
            Target::AtMost(ACK_P99_TARGET_MS),
        ));
    }
    Ok(run.report(options, figures, failures))
}

/// Records per second the paced phase offers with `devices` devices pushing `batch`
/// records every `interval`.
fn offered_rate(devices: usize, batch: u32, interval: Duration) -> f64 {
    f64::from(batch) * devices as f64 / interval.as_secs_f64().max(1e-9)
}

/// The time between one device's paced pushes of `batch` records so that `devices`
/// devices offer `PACED_SHARE` of `drain_rate` (records/s), within sane bounds.
fn paced_interval(devices: usize, batch: u32, drain_rate: f64) -> Duration {
    let target = (drain_rate * PACED_SHARE).max(1.0);
    let secs = f64::from(batch) * devices as f64 / target;
    Duration::from_secs_f64(secs.clamp(0.005, 30.0))
}

/// Meets the devices between phases: times the drain and sets the paced schedule.
async fn direct(
    phases: Arc<Phases>,
    pace: watch::Sender<Option<Pace>>,
    devices: usize,
    plan: PushPlan,
    measured: Arc<Mutex<Option<Drain>>>,
) {
    phases.barrier.wait().await;
    let go = Instant::now();
    phases.barrier.wait().await;
    let last_ack = *phases
        .last_drain_ack
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let wall = last_ack
        .unwrap_or_else(Instant::now)
        .saturating_duration_since(go);
    let rate = f64::from(plan.drain_records) * devices as f64 / wall.as_secs_f64().max(1e-9);
    let chosen = Pace {
        // A moment for every device to see the schedule before its first push is due.
        start: Instant::now() + Duration::from_millis(200),
        interval: paced_interval(devices, plan.paced_batch, rate),
    };
    *measured.lock().unwrap_or_else(PoisonError::into_inner) = Some(Drain { wall, pace: chosen });
    let _ = pace.send(Some(chosen));
    // The paced phase ends when every device has pushed.
    phases.barrier.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paced_phase_offers_half_the_drain_rate() {
        let interval = paced_interval(1000, 200, 40_000.0);
        assert_eq!(interval, Duration::from_secs(10));
        let offered = offered_rate(1000, 200, interval);
        assert!((offered - 20_000.0).abs() < 1e-6, "{offered}");
    }

    #[test]
    fn the_interval_stays_within_bounds() {
        assert_eq!(paced_interval(1, 50, 1e12), Duration::from_millis(5));
        assert_eq!(paced_interval(100_000, 50, 0.0), Duration::from_secs(30));
    }
}
