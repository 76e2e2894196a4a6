//! What the data-moving scenarios (`field-day`, `ingest`, `shift-end`,
//! `revoke-under-load`, `kill-restart`) share: the fleet set up, the baselines they
//! divide by, the gateway started and sampled, every device prepared and run as a
//! simulated agent, an optional director acting on the gateway mid-run, the
//! end-of-run verification, and the figures and report every one of them shows.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{Semaphore, watch};

use super::{setup, start_bare_server, start_gateway};
use crate::baseline;
use crate::fleet::SimDevice;
use crate::options::{RunError, RunOptions};
use crate::progress::Progress;
use crate::report::{Figure, Report, ResourcePoint, Target};
use crate::scrape::{Scrape, scrape};
use crate::sim::{self, Fleet, Outcome, Plan, Revoker, ops};
use crate::stats::Stats;
use crate::target::{OwnGateway, Sampler};
use crate::verify::{self, Verification};

/// Which baselines a scenario divides by.
#[derive(Clone, Copy, Debug, Default)]
pub struct Baselines {
    /// The durable SQLite insert (record ingest).
    pub sqlite: bool,
    /// The bare bulk transfer (upload goodput).
    pub bulk: bool,
}

/// Rows of the SQLite baseline inside a scenario run.
const SQLITE_ROWS: usize = 50_000;
/// Bytes of the bulk baseline inside a scenario run.
const BULK_BYTES: u64 = 128 << 20;

/// Something the scenario does to the gateway while the devices run.
pub enum Director {
    /// Nothing.
    None,
    /// SIGKILL the gateway after this long, restart it on the same folders, and point
    /// the devices at its new address.
    KillRestart(Duration),
    /// Attack the gateway from outside the fleet while the devices run: started just
    /// before the devices, stopped once the last device finished and before the
    /// gateway's final `/metrics` are read.
    Attack(Arc<dyn Attack>),
}

/// What an attack is given to aim at.
pub struct AttackTarget {
    /// Where devices connect.
    pub device_addr: SocketAddr,
    /// The operator listener (`None` if unknown).
    pub http_addr: Option<SocketAddr>,
    /// Enrolled devices that are not in the fleet: certificates the attacker stole.
    pub stolen: Vec<SimDevice>,
}

/// Something run beside the fleet against the gateway (the `hostile` scenario's
/// attackers). The runner knows nothing of what it does, only when it starts and ends.
pub trait Attack: Send + Sync {
    /// How many enrolled device certificates it needs beside the fleet's.
    fn stolen_devices(&self) -> usize;
    /// Starts its tasks against `target`; returns at once.
    fn start(&self, target: AttackTarget);
    /// Stops its tasks and waits for them.
    fn stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// What a run of the fleet produced.
pub struct FleetRun {
    /// One per device.
    pub outcomes: Vec<Outcome>,
    /// The end-of-run check (`None` against an external gateway).
    pub verification: Option<Verification>,
    /// Latencies and errors.
    pub stats: Stats,
    /// The gateway's memory and CPU.
    pub gateway: Vec<ResourcePoint>,
    /// Durable SQLite inserts per second, if measured.
    pub sqlite_rows_per_sec: Option<f64>,
    /// The same rows through the gateway's own ingest transaction, records per
    /// second, if measured (with the SQLite baseline).
    pub store_alone_per_sec: Option<f64>,
    /// Bare bulk goodput in bytes per second, if measured.
    pub bulk_bytes_per_sec: Option<f64>,
    /// When the devices started (after preparation).
    pub t0: Instant,
    /// When the last device finished.
    pub end: Instant,
    /// Gateway kills done, with the outage (kill → restarted gateway listening).
    pub restarts: Vec<Duration>,
    /// Problems that fail the run found on the way (devices that could not be
    /// prepared, ...).
    pub failures: Vec<String>,
    /// The gateway's `/metrics` once the devices (and any attack) finished, before it
    /// stopped, or why they could not be read.
    pub metrics: Result<Scrape, String>,
    /// Audit-log entries the run added (enrollment excluded; `None` against an external
    /// gateway).
    pub audit_rows_added: Option<i64>,
}

/// Sets up, runs every device through `plan` (as [`sim::run`] plays it), and verifies.
pub async fn run_fleet(
    options: &RunOptions,
    plan: Plan,
    baselines: Baselines,
    director: Director,
    make_revoker: impl FnOnce(&OwnGateway) -> Option<Arc<dyn Revoker>>,
    revocations: HashMap<usize, Duration>,
) -> Result<FleetRun, RunError> {
    run_fleet_with(
        options,
        plan,
        baselines,
        director,
        make_revoker,
        revocations,
        |_| sim::run,
    )
    .await
}

/// [`run_fleet`] with another device driver: `driver(ready)` is called once the
/// `ready` devices are prepared and returns what each device task runs (a scenario
/// whose devices meet between phases sizes its barrier from `ready`).
pub async fn run_fleet_with<F, Fut>(
    options: &RunOptions,
    mut plan: Plan,
    baselines: Baselines,
    director: Director,
    make_revoker: impl FnOnce(&OwnGateway) -> Option<Arc<dyn Revoker>>,
    revocations: HashMap<usize, Duration>,
    driver: impl FnOnce(usize) -> F,
) -> Result<FleetRun, RunError>
where
    F: Fn(sim::Prepared, Arc<Fleet>) -> Fut,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let progress = Progress::start(options.scenario.name());
    let attack = match &director {
        Director::Attack(a) => Some(a.clone()),
        _ => None,
    };
    let spare = attack.as_ref().map_or(0, |a| a.stolen_devices());
    let setup = setup(options, &progress, spare).await?;
    let n = setup.fleet.len();
    let stats = Stats::new();
    let own_baseline = setup.data_dir.is_some() && options.baseline;

    let mut sqlite_rows_per_sec = None;
    let mut store_alone_per_sec = None;
    let mut bulk_bytes_per_sec = None;
    if own_baseline && baselines.sqlite {
        progress.set("baseline: durable SQLite inserts");
        let dir = options.out_dir.join("baseline");
        std::fs::create_dir_all(&dir)?;
        let rate = baseline::fastest_sqlite(&dir, SQLITE_ROWS).await?;
        progress.println(format!("baseline: {rate:.0} durable SQLite rows/s"));
        sqlite_rows_per_sec = Some(rate);
        progress.set("the gateway's store alone: the same rows");
        let rate = crate::store_alone::fastest_store(&dir, SQLITE_ROWS).await?;
        progress.println(format!("the gateway's store alone: {rate:.0} records/s"));
        store_alone_per_sec = Some(rate);
    }
    if own_baseline && baselines.bulk {
        progress.set("baseline: bare bulk transfer");
        let bare = start_bare_server(options, &setup.pki_dir).await?;
        let rate = baseline::measure_bare_bulk(&bare, &setup.fleet[0], BULK_BYTES).await?;
        let _ = bare.stop().await;
        progress.println(format!(
            "baseline: {:.1} MiB/s bare bulk goodput",
            rate / 1_048_576.0
        ));
        bulk_bytes_per_sec = Some(rate);
    }

    let (mut own, addr) = start_gateway(options, &setup).await?;
    let revoker = own.as_ref().and_then(make_revoker);

    progress.set(format!("preparing {n} agents"));
    let agents_dir = options
        .sim
        .agents_dir
        .clone()
        .unwrap_or_else(|| options.out_dir.join("agents"));
    let mut failures = Vec::new();
    let prepared: Vec<_> = futures::stream::iter(setup.fleet.iter().enumerate())
        .map(|(i, device)| {
            let dir = agents_dir.join(&device.id);
            let plan = plan.clone();
            async move { sim::prepare(i, device, &dir, &plan).await }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let mut ready = Vec::with_capacity(n);
    for p in prepared {
        match p {
            Ok(p) => ready.push(p),
            Err(e) => {
                if failures.len() < 5 {
                    failures.push(format!("preparing a device: {e}"));
                }
            }
        }
    }

    let (addr_tx, addr_rx) = watch::channel(addr);
    let t0 = Instant::now();
    if plan.steady.is_zero() {
        plan.record_interval = None;
    }
    let fleet = Arc::new(Fleet {
        endpoints: Fleet::endpoints(addr, n)?,
        addr: addr_rx,
        stats: stats.clone(),
        plan: plan.clone(),
        connect_gate: Semaphore::new(options.concurrency.max(1)),
        t0,
        revocations,
        revoker,
    });
    let sampler = own
        .as_ref()
        .map(|g| Sampler::start(g.process().pid(), stats_start(&stats)));
    if let Some(a) = &attack {
        a.start(AttackTarget {
            device_addr: addr,
            http_addr: own.as_ref().and_then(|g| g.process().http_addr),
            stolen: setup.spare.clone(),
        });
    }
    let drive = driver(ready.len());
    let tasks: Vec<_> = ready
        .into_iter()
        .map(|p| tokio::spawn(drive(p, fleet.clone())))
        .collect();
    let mut all = futures::future::join_all(tasks);

    let mut restarts = Vec::new();
    let mut restart_at = match director {
        Director::KillRestart(after) if own.is_some() => Some(t0 + after),
        _ => None,
    };
    let outcomes = loop {
        let tick = tokio::time::sleep(Duration::from_secs(1));
        tokio::select! {
            done = &mut all => break done,
            () = tick => {}
        }
        if let (Some(at), Some(g)) = (restart_at, own.as_mut())
            && Instant::now() >= at
        {
            restart_at = None;
            progress.set("SIGKILL the gateway and restart it");
            let killed = Instant::now();
            g.kill_and_restart().await?;
            restarts.push(killed.elapsed());
            let _ = addr_tx.send(g.device_addr());
            progress.println(format!(
                "gateway SIGKILLed at {:.1} s and restarted on {} after {:.2} s",
                (killed - t0).as_secs_f64(),
                g.device_addr(),
                killed.elapsed().as_secs_f64()
            ));
        }
        let rss = sampler
            .as_ref()
            .and_then(Sampler::latest)
            .map(|p| format!("{} MiB, {:.0}% CPU", p.rss_bytes / 1_048_576, p.cpu_percent))
            .unwrap_or_else(|| "?".into());
        progress.set(format!(
            "{:.0} s: {} records acked, {} recordings stored, {} syncs, {} errors; gateway {rss}",
            t0.elapsed().as_secs_f64(),
            stats.count(sim::ops::RECORD),
            stats.count(sim::ops::RECORDING),
            stats.count(sim::ops::SYNC),
            stats.error_count()
        ));
    };
    let end = Instant::now();
    let mut done = Vec::with_capacity(n);
    for o in outcomes {
        match o {
            Ok(o) => done.push(o),
            Err(e) => failures.push(format!("a device task failed: {e}")),
        }
    }
    drop(fleet);
    if let Some(a) = &attack {
        progress.set("stopping the attack");
        a.stop().await;
    }
    let metrics = match own.as_ref().and_then(|g| g.process().http_addr) {
        Some(http) => scrape(http).await.map_err(|e| e.to_string()),
        None => Err("the operator listener of an external gateway is not known".into()),
    };
    let gateway = sampler.map(Sampler::finish).unwrap_or_default();
    let config = own.as_ref().map(OwnGateway::config).transpose()?;
    if let Some(g) = own {
        g.stop().await;
    }
    let verification = match config {
        Some(config) => {
            progress.set("verifying the gateway's store");
            Some(
                verify::verify(&config, &done)
                    .await
                    .map_err(|e| RunError::Options(e.to_string()))?,
            )
        }
        None => {
            progress.println(
                "verification skipped: the store of an external gateway is not readable here",
            );
            None
        }
    };
    progress.finish();
    let audit_rows_added = match (&verification, setup.audit_entries_enrolled) {
        (Some(v), Some(enrolled)) => Some(v.audit_entries - enrolled),
        _ => None,
    };
    if done.len() < n {
        failures.push(format!("{} of {n} devices did not run", n - done.len()));
    }
    Ok(FleetRun {
        outcomes: done,
        verification,
        stats,
        gateway,
        sqlite_rows_per_sec,
        store_alone_per_sec,
        bulk_bytes_per_sec,
        t0,
        end,
        restarts,
        failures,
        metrics,
        audit_rows_added,
    })
}

/// The plan of a field day from the run's options (also the plan of the scenarios
/// that disturb one: revocations, a killed gateway).
pub fn field_day_plan(options: &RunOptions) -> Plan {
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

/// The instant `stats` counts from (so gateway samples and throughput share an axis).
fn stats_start(stats: &Stats) -> Instant {
    Instant::now() - stats.elapsed()
}

impl FleetRun {
    /// Records acknowledged in all.
    pub fn records_acked(&self) -> u64 {
        self.outcomes.iter().map(|o| o.acked.len() as u64).sum()
    }

    /// Records made in all.
    pub fn records_made(&self) -> u64 {
        self.outcomes.iter().map(|o| o.made).sum()
    }

    /// Recordings stored / made in all.
    pub fn recordings(&self) -> (u64, u64) {
        let stored = self
            .outcomes
            .iter()
            .map(|o| o.recordings.len() as u64)
            .sum();
        let made = self.outcomes.iter().map(|o| o.recordings_made).sum();
        (stored, made)
    }

    /// Bytes of recordings stored.
    pub fn recording_bytes(&self) -> u64 {
        self.outcomes
            .iter()
            .flat_map(|o| o.recordings.iter().map(|r| r.size))
            .sum()
    }

    /// The offline backlog's drain: from the first device's first sync to the last
    /// device's backlog acknowledged (`None` if some backlog never drained).
    pub fn backlog_wall(&self) -> Option<Duration> {
        let start = self.outcomes.iter().filter_map(|o| o.first_sync).min()?;
        let mut end = start;
        for o in &self.outcomes {
            end = end.max(o.backlog_done?);
        }
        Some(end - start)
    }

    /// The figures every data-moving scenario reports, and its failures.
    pub fn common_figures(&self, devices: usize) -> (Vec<Figure>, Vec<String>) {
        let mut figures = Vec::new();
        let mut failures = self.failures.clone();
        let (rec_stored, rec_made) = self.recordings();
        figures.push(Figure::new(
            "devices run",
            self.outcomes.len() as f64,
            "devices",
            None,
            Target::Equals(devices as f64),
        ));
        figures.push(Figure::new(
            "records made",
            self.records_made() as f64,
            "records",
            None,
            Target::None,
        ));
        figures.push(Figure::new(
            "records acknowledged",
            self.records_acked() as f64,
            "records",
            None,
            Target::None,
        ));
        figures.push(Figure::new(
            "recordings stored / made",
            rec_stored as f64,
            "recordings",
            None,
            Target::Equals(rec_made as f64),
        ));
        let unacked: u64 = self
            .outcomes
            .iter()
            .filter(|o| o.revocation.is_none())
            .map(|o| o.made.saturating_sub(o.acked.len() as u64))
            .sum();
        let unstored: u64 = self
            .outcomes
            .iter()
            .filter(|o| o.revocation.is_none())
            .map(|o| o.recordings_made.saturating_sub(o.recordings.len() as u64))
            .sum();
        if unacked + unstored > 0 {
            failures.push(format!(
                "{unacked} records and {unstored} recordings were still unacknowledged when the drain ended"
            ));
        }
        if let Some(v) = &self.verification {
            figures.push(Figure::new(
                "verify: acknowledged records lost",
                v.records_lost as f64,
                "records",
                None,
                Target::Equals(0.0),
            ));
            figures.push(Figure::new(
                "verify: records stored twice",
                v.records_duplicated as f64,
                "records",
                None,
                Target::Equals(0.0),
            ));
            figures.push(Figure::new(
                "verify: chains not verifying",
                v.chains_broken as f64,
                "devices",
                None,
                Target::Equals(0.0),
            ));
            figures.push(Figure::new(
                "verify: acknowledged recordings lost",
                (v.recordings_lost + v.recordings_bad) as f64,
                "recordings",
                None,
                Target::Equals(0.0),
            ));
            failures.extend(v.failures());
        }
        if let Some(p) = self.gateway.iter().map(|p| p.rss_bytes).max() {
            figures.push(Figure::new(
                "gateway peak resident memory",
                p as f64 / 1_048_576.0,
                "MiB",
                None,
                Target::None,
            ));
        }
        (figures, failures)
    }

    /// The backlog drain (connection ramp included) and the steady record rate.
    pub fn ingest_figures(&self, options: &RunOptions) -> Vec<Figure> {
        let mut figures = Vec::new();
        let backlog = options.sim.backlog as f64 * self.outcomes.len() as f64;
        if backlog > 0.0
            && let Some(wall) = self.backlog_wall()
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
                self.outcomes.len() as f64 / interval.as_secs_f64(),
                "records/s",
                None,
                Target::None,
            ));
            figures.push(Figure::new(
                "records acknowledged per second",
                self.records_acked() as f64 / (self.end - self.t0).as_secs_f64().max(1e-9),
                "records/s",
                None,
                Target::None,
            ));
        }
        if let Some(p99) = self.stats.quantile_ms(ops::RECORD, 0.99) {
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

    /// The report of a fleet self.
    pub fn report(
        &self,
        options: &RunOptions,
        figures: Vec<Figure>,
        failures: Vec<String>,
    ) -> Report {
        Report::of_run(
            options.scenario.name(),
            options.devices,
            options.duration.as_secs_f64(),
            &self.stats,
            figures,
            self.gateway.clone(),
            failures,
        )
    }
}
