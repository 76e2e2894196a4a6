//! `hostile`: the fleet keeps working while someone attacks the gateway (issue 19,
//! point 7). The same field day runs twice on fresh gateways in one run: undisturbed,
//! then beside the attackers of [`crate::attack`] (handshakes without a certificate,
//! a stolen device announcing without end and trickling uploads, slowloris on the
//! operator listener). Every honest figure under attack is reported against the
//! undisturbed one as a ratio; refusals by reason come from the gateway's own
//! `/metrics`, audit rows from its store, memory from `/proc`. A missed target fails
//! the run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::attack::{AttackCounts, AttackPlan, HostileAttack};
use crate::options::{RunError, RunOptions};
use crate::report::{Figure, Report, ResourcePoint, Target};
use crate::runner::fleet_run::{Baselines, Director, FleetRun, field_day_plan, run_fleet};
use crate::scrape::Scrape;
use crate::sim::ops;

/// The goal: honest ack p99 under attack at most this many times the undisturbed one.
pub const ACK_P99_RATIO_TARGET: f64 = 2.0;
/// The goal for "memory bounded": peak resident memory under attack at most this many
/// times the undisturbed peak. What the attackers may hold is bounded by configuration
/// (two upload chunks of the stolen device, the operator listener's per-client cap of
/// connections, handshakes in flight); a leak or an unbounded queue would pass it.
pub const RSS_RATIO_TARGET: f64 = 2.0;
/// Upload chunks the stolen device keeps open: twice the default per-device cap.
const SLOW_UPLOADS: usize = 4;
/// Half-sent requests held on the operator listener: past the default per-client cap
/// (64), not past the listener's total (512), as one host can.
const SLOWLORIS: usize = 200;
/// Handshake outcomes that are not refusals.
const NOT_REFUSALS: [&str; 2] = ["ok", "failed"];

/// Runs the scenario.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    if options.gateway.is_some() {
        return Err(RunError::Options(
            "hostile attacks the gateway it starts (and reads its memory and store); it cannot target --gateway".into(),
        ));
    }
    let quiet_options = phase(options, "undisturbed")?;
    let quiet = run_fleet(
        &quiet_options,
        field_day_plan(options),
        Baselines::default(),
        Director::None,
        |_| None,
        HashMap::new(),
    )
    .await?;
    let attack = Arc::new(HostileAttack::new(AttackPlan {
        flood_in_flight: options.concurrency.max(1),
        slow_uploads: SLOW_UPLOADS,
        slowloris: SLOWLORIS,
    }));
    let attacked_options = phase(options, "attacked")?;
    let attacked = run_fleet(
        &attacked_options,
        field_day_plan(options),
        Baselines::default(),
        Director::Attack(attack.clone()),
        |_| None,
        HashMap::new(),
    )
    .await?;
    let config = crate::target::gateway_config(
        &attacked_options.out_dir.join("gateway-data"),
        &attacked_options.out_dir.join("pki"),
    )?;

    let (mut figures, attacked_failures) = attacked.common_figures(options.devices);
    let (_, quiet_failures) = quiet.common_figures(options.devices);
    let mut failures: Vec<String> = quiet_failures
        .iter()
        .map(|f| format!("undisturbed: {f}"))
        .chain(
            attacked_failures
                .iter()
                .map(|f| format!("under attack: {f}")),
        )
        .collect();
    figures.extend(honest_figures(
        options,
        &quiet,
        &attacked,
        &quiet_failures,
        &attacked_failures,
    ));
    figures.extend(refusal_figures(&quiet, &attacked, &mut failures));
    figures.extend(attacker_figures(
        &attack,
        config.media.max_pending_recordings_per_device,
    ));
    figures.extend(audit_figures(
        &quiet,
        &attacked,
        &attack,
        config.device.refusal_audit_secs,
        &mut failures,
    ));
    figures.extend(memory_figures(&quiet.gateway, &attacked.gateway));
    for f in figures.iter().filter(|f| f.met == Some(false)) {
        failures.push(format!(
            "target missed: {} = {:.2} {} (target {})",
            f.name,
            f.value,
            f.unit,
            f.target.as_deref().unwrap_or("-")
        ));
    }
    Ok(attacked.report(options, figures, failures))
}

/// The run's options for one phase: its own folder (PKI, gateway data, agents).
fn phase(options: &RunOptions, name: &str) -> Result<RunOptions, RunError> {
    let mut o = options.clone();
    o.out_dir = options.out_dir.join(name);
    o.sim.agents_dir = options.sim.agents_dir.as_ref().map(|d| d.join(name));
    std::fs::create_dir_all(&o.out_dir)?;
    Ok(o)
}

fn honest_figures(
    options: &RunOptions,
    quiet: &FleetRun,
    attacked: &FleetRun,
    quiet_failures: &[String],
    attacked_failures: &[String],
) -> Vec<Figure> {
    // A failure is what the run itself fails on: a record or recording never
    // acknowledged, anything lost or broken, a device that did not run. Errors a device
    // recovered from by retrying (a `Busy` at the gateway-wide upload cap, a handshake
    // timed out) are counted beside it, against the undisturbed run.
    let mut figures = vec![
        Figure::new(
            "honest-device failures, undisturbed",
            quiet_failures.len() as f64,
            "failures",
            None,
            Target::Equals(0.0),
        ),
        Figure::new(
            "honest-device failures under attack",
            attacked_failures.len() as f64,
            "failures",
            None,
            Target::Equals(0.0),
        ),
        Figure::new(
            "honest-device errors retried under attack (baseline: undisturbed)",
            attacked.stats.error_count() as f64,
            "errors",
            Some(quiet.stats.error_count() as f64),
            Target::None,
        ),
    ];
    match (
        attacked.stats.quantile_ms(ops::RECORD, 0.99),
        quiet.stats.quantile_ms(ops::RECORD, 0.99),
    ) {
        (Some(under), Some(undisturbed)) => figures.push(Figure::new(
            "honest ack p99 under attack (baseline: undisturbed)",
            under,
            "ms",
            Some(undisturbed),
            Target::RatioAtMost(ACK_P99_RATIO_TARGET),
        )),
        _ => figures.push(Figure::new(
            "honest acks measured in both phases",
            0.0,
            "phases",
            None,
            Target::Equals(2.0),
        )),
    }
    // Goodput of one honest upload: a recording's bytes over its median time from
    // queued to stored (the fleet's uploads are spread over the day, so the sum over
    // the run's wall time would measure the plan, not the gateway).
    let goodput = |run: &FleetRun| {
        run.stats
            .quantile_ms(ops::RECORDING, 0.5)
            .map(|ms| options.sim.recording_size as f64 / 1_048_576.0 / (ms / 1000.0).max(1e-9))
    };
    if let Some(under) = goodput(attacked) {
        figures.push(Figure::new(
            "honest upload goodput, size ÷ p50 queued→stored (baseline: undisturbed)",
            under,
            "MiB/s",
            goodput(quiet),
            Target::None,
        ));
    }
    figures
}

/// The scrape of a run, or a failure saying why there is none.
fn metrics_of<'a>(
    run: &'a FleetRun,
    phase: &str,
    failures: &mut Vec<String>,
) -> Option<&'a Scrape> {
    match &run.metrics {
        Ok(s) => Some(s),
        Err(e) => {
            failures.push(format!(
                "{phase}: the gateway's /metrics could not be read: {e}"
            ));
            None
        }
    }
}

/// Refusals by reason as the gateway counted them, under attack against undisturbed.
fn refusal_figures(
    quiet: &FleetRun,
    attacked: &FleetRun,
    failures: &mut Vec<String>,
) -> Vec<Figure> {
    let mut figures = Vec::new();
    let quiet = metrics_of(quiet, "undisturbed", failures)
        .cloned()
        .unwrap_or_default();
    let Some(attacked) = metrics_of(attacked, "under attack", failures) else {
        return figures;
    };
    let families = [
        (
            "fieldsync_handshakes_total",
            "outcome",
            "refused handshakes",
        ),
        (
            "fieldsync_upload_refusals_total",
            "reason",
            "refused uploads",
        ),
        (
            "fieldsync_http_connections_refused_total",
            "reason",
            "operator connections refused",
        ),
        (
            "fieldsync_http_connections_timed_out_total",
            "reason",
            "operator connections timed out",
        ),
    ];
    for (metric, label, what) in families {
        let before = quiet.by_label(metric, label);
        for (reason, n) in attacked.by_label(metric, label) {
            if NOT_REFUSALS.contains(&reason.as_str()) && metric == "fieldsync_handshakes_total" {
                continue;
            }
            figures.push(Figure::new(
                &format!("{what}: {reason}"),
                n,
                "",
                before.get(&reason).copied(),
                Target::None,
            ));
        }
    }
    figures
}

/// What the attackers did, counted from their side.
fn attacker_figures(attack: &HostileAttack, pending_cap: u32) -> Vec<Figure> {
    let c = &attack.counts;
    let secs = attack.duration().as_secs_f64().max(1e-9);
    let attempts = AttackCounts::get(&c.flood_attempts) as f64;
    let mut figures = vec![
        Figure::new("attack duration", secs, "s", None, Target::None),
        Figure::new(
            "no-certificate handshakes offered",
            attempts,
            "handshakes",
            None,
            Target::None,
        ),
        Figure::new(
            "no-certificate handshakes offered per second",
            attempts / secs,
            "/s",
            None,
            Target::None,
        ),
        Figure::new(
            "  of which refused (seen by the attacker)",
            AttackCounts::get(&c.flood_refused) as f64,
            "handshakes",
            None,
            Target::None,
        ),
        Figure::new(
            "  of which admitted",
            AttackCounts::get(&c.flood_admitted) as f64,
            "handshakes",
            None,
            Target::Equals(0.0),
        ),
        Figure::new(
            "  of which unanswered",
            AttackCounts::get(&c.flood_timed_out) as f64,
            "handshakes",
            None,
            Target::None,
        ),
        Figure::new(
            "stolen device: connections",
            AttackCounts::get(&c.stolen_connections) as f64,
            "connections",
            None,
            Target::None,
        ),
        Figure::new(
            "stolen device: recordings accepted",
            AttackCounts::get(&c.announced) as f64,
            "recordings",
            None,
            Target::AtMost(f64::from(pending_cap)),
        ),
        Figure::new(
            "stolen device: trickled chunks started",
            AttackCounts::get(&c.slow_chunks) as f64,
            "chunks",
            None,
            Target::None,
        ),
    ];
    for (code, n) in c.stolen_refused.lock().expect("counts lock").iter() {
        figures.push(Figure::new(
            &format!("stolen device refused: {code}"),
            *n as f64,
            "",
            None,
            Target::None,
        ));
    }
    figures.push(Figure::new(
        "slowloris connections opened",
        AttackCounts::get(&c.slowloris_opened) as f64,
        "connections",
        None,
        Target::None,
    ));
    figures.push(Figure::new(
        "  of which closed by the gateway",
        AttackCounts::get(&c.slowloris_closed) as f64,
        "connections",
        None,
        Target::None,
    ));
    let under = attack
        .scrape_under_attack
        .lock()
        .expect("scrape lock")
        .clone();
    figures.push(Figure::new(
        "operator /metrics answered during the attack",
        f64::from(u8::from(under.as_ref().is_some_and(|s| s.result.is_ok()))),
        "",
        None,
        Target::Equals(1.0),
    ));
    if let Some(s) = under {
        figures.push(Figure::new(
            "  in",
            s.took.as_secs_f64() * 1000.0,
            "ms",
            None,
            Target::None,
        ));
    }
    figures
}

/// The most audit rows the attack may add: one summary per refusal reason per
/// `device.refusal_audit_secs`, over the attack's span (a span of `t` seconds touches
/// at most `ceil(t / interval) + 1` intervals; the last one is written at shutdown),
/// on top of what the honest fleet added undisturbed.
pub fn audit_bound(reasons: usize, attack: Duration, interval_secs: u64, honest_rows: i64) -> i64 {
    let intervals = (attack.as_secs_f64() / interval_secs.max(1) as f64).ceil() as i64 + 1;
    honest_rows.max(0) + reasons as i64 * intervals
}

fn audit_figures(
    quiet: &FleetRun,
    attacked: &FleetRun,
    attack: &HostileAttack,
    interval_secs: u64,
    failures: &mut Vec<String>,
) -> Vec<Figure> {
    let (Some(quiet_rows), Some(attacked_rows)) =
        (quiet.audit_rows_added, attacked.audit_rows_added)
    else {
        failures.push("audit rows could not be counted".into());
        return Vec::new();
    };
    let reasons = attacked
        .metrics
        .as_ref()
        .map(|m| {
            m.by_label("fieldsync_handshakes_total", "outcome")
                .into_iter()
                .filter(|(r, n)| *n > 0.0 && !NOT_REFUSALS.contains(&r.as_str()))
                .count()
        })
        .unwrap_or(0);
    let bound = audit_bound(reasons, attack.duration(), interval_secs, quiet_rows);
    vec![
        Figure::new(
            "audit rows added, undisturbed",
            quiet_rows as f64,
            "rows",
            None,
            Target::None,
        ),
        Figure::new(
            "audit rows added under attack",
            attacked_rows as f64,
            "rows",
            None,
            Target::AtMost(bound as f64),
        ),
    ]
}

/// Resident memory at a fraction of a run (the sample nearest to it).
fn rss_at(points: &[ResourcePoint], fraction: f64) -> Option<f64> {
    let end = points.last()?.t_secs;
    let at = end * fraction;
    points
        .iter()
        .min_by(|a, b| (a.t_secs - at).abs().total_cmp(&(b.t_secs - at).abs()))
        .map(|p| p.rss_bytes as f64 / 1_048_576.0)
}

fn memory_figures(quiet: &[ResourcePoint], attacked: &[ResourcePoint]) -> Vec<Figure> {
    let peak = |p: &[ResourcePoint]| {
        p.iter()
            .map(|p| p.rss_bytes)
            .max()
            .map(|b| b as f64 / 1_048_576.0)
    };
    let mut figures = Vec::new();
    if let Some(under) = peak(attacked) {
        figures.push(Figure::new(
            "gateway peak RSS under attack (baseline: undisturbed)",
            under,
            "MiB",
            peak(quiet),
            Target::RatioAtMost(RSS_RATIO_TARGET),
        ));
    }
    for quarter in [1, 2, 3, 4] {
        let fraction = f64::from(quarter) / 4.0;
        if let Some(under) = rss_at(attacked, fraction) {
            figures.push(Figure::new(
                &format!("  gateway RSS at {}% of the run", quarter * 25),
                under,
                "MiB",
                rss_at(quiet, fraction),
                Target::None,
            ));
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_bound_is_one_row_per_reason_per_interval_touched() {
        // 30 s at one summary a minute touches at most two intervals.
        assert_eq!(audit_bound(1, Duration::from_secs(30), 60, 0), 2);
        // 6.5 s at 1 s: seven intervals, and the final flush.
        assert_eq!(audit_bound(2, Duration::from_millis(6500), 1, 3), 3 + 2 * 8);
        assert_eq!(audit_bound(0, Duration::from_secs(10), 1, 0), 0);
    }

    #[test]
    fn rss_is_read_at_fractions_of_the_run() {
        let points: Vec<_> = (0..=10)
            .map(|t| ResourcePoint {
                t_secs: f64::from(t),
                rss_bytes: (t as u64 + 1) << 20,
                cpu_percent: 0.0,
            })
            .collect();
        assert_eq!(rss_at(&points, 0.5), Some(6.0));
        assert_eq!(rss_at(&points, 1.0), Some(11.0));
        assert_eq!(rss_at(&[], 0.5), None);
    }
}
