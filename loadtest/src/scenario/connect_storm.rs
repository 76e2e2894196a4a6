//! `connect-storm`: every device connects at once and says hello, the fleet stays
//! connected and idle for the duration, then every device reconnects together (the
//! end of a cellular outage). Measures the handshake rate and the gateway's memory per
//! idle connection against the bare quinn + rustls server.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::baseline::{self, SETTLE};
use crate::connect::{Connector, connect_all};
use crate::machine::device_now;
use crate::options::{RunError, RunOptions};
use crate::progress::Progress;
use crate::report::{Figure, Report, Target};
use crate::runner::{setup, start_bare_server, start_gateway};
use crate::stats::Stats;
use crate::target::Sampler;

/// The goal for memory per idle connection (issue: at most 32 KiB).
const IDLE_BYTES_TARGET: f64 = 32.0 * 1024.0;
/// The goal for handshakes against the bare server.
const HANDSHAKE_RATIO_TARGET: f64 = 0.8;

/// Runs the scenario.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    let progress = Progress::start(options.scenario.name());
    let setup = setup(options, &progress, 0).await?;
    let n = setup.fleet.len();
    let mut figures = Vec::new();
    let mut failures = Vec::new();
    let stats = Stats::new();

    let (bare_rate, bare_bytes) = match (&setup.data_dir, options.baseline) {
        (Some(_), true) => {
            progress.set("baseline: bare quinn + rustls server");
            let bare = start_bare_server(options, &setup.pki_dir).await?;
            let measured = baseline::measure_bare_connections(
                &bare,
                &setup.fleet,
                options.concurrency,
                &stats,
            )
            .await?;
            let _ = bare.stop().await;
            progress.println(format!(
                "baseline: {:.0} handshakes/s, {:.0} bytes per idle connection",
                measured.handshakes_per_sec, measured.bytes_after_exchange
            ));
            (
                Some(measured.handshakes_per_sec),
                Some((
                    measured.bytes_after_handshake,
                    measured.bytes_after_exchange,
                )),
            )
        }
        _ => (None, None),
    };

    let (own, addr) = start_gateway(options, &setup).await?;
    let sampler = own
        .as_ref()
        .map(|g| Sampler::start(g.process().pid(), Instant::now()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = own.as_ref().and_then(|g| g.process().sample().ok());

    progress.set(format!("connecting {n} devices"));
    let connector = Connector::new(addr, n)?;
    let phase = connect_all(
        &connector,
        &setup.fleet,
        options.concurrency,
        &stats,
        "handshake",
    )
    .await;
    let rate = phase.handshakes_per_sec();
    let connected = phase.connected;
    progress.println(format!(
        "connected {connected}/{n} in {:.1} s ({rate:.0}/s)",
        phase.wall.as_secs_f64()
    ));
    let mut connections = phase.connections;
    tokio::time::sleep(SETTLE).await;
    let rss_handshaken = own.as_ref().and_then(|g| g.process().sample().ok());

    progress.set("hello from every device");
    futures::stream::iter(connections.iter_mut().flatten())
        .for_each_concurrent(options.concurrency, |conn| {
            let stats = stats.clone();
            async move {
                let t = Instant::now();
                match conn.hello(device_now(), "loadtest").await {
                    Ok(_) => stats.record("hello", t.elapsed()),
                    Err(e) => stats.error(format!("hello: {e}")),
                }
            }
        })
        .await;
    tokio::time::sleep(SETTLE).await;
    let rss_idle = own.as_ref().and_then(|g| g.process().sample().ok());

    let hold_until = Instant::now() + options.duration;
    while Instant::now() < hold_until {
        let open = connections
            .iter()
            .flatten()
            .filter(|c| c.close_reason().is_none())
            .count();
        let rss = sampler
            .as_ref()
            .and_then(Sampler::latest)
            .map(|p| p.rss_bytes / 1_048_576);
        progress.set(format!(
            "holding {open} idle connections; gateway RSS {} MiB",
            rss.map_or("?".into(), |m| m.to_string())
        ));
        tokio::time::sleep(Duration::from_secs(1).min(hold_until - Instant::now())).await;
    }
    let dropped = connections
        .iter()
        .flatten()
        .filter(|c| c.close_reason().is_some())
        .count();
    if dropped > 0 {
        failures.push(format!(
            "{dropped} idle connections were closed during the hold"
        ));
    }

    progress.set("reconnect storm: every device at once");
    for conn in connections.iter().flatten() {
        conn.close();
    }
    drop(connections);
    let storm = connect_all(
        &connector,
        &setup.fleet,
        options.concurrency,
        &stats,
        "reconnect",
    )
    .await;
    let storm_rate = storm.handshakes_per_sec();
    for conn in storm.connections.iter().flatten() {
        conn.close();
    }
    let storm_connected = storm.connected;
    drop(storm);
    let _ = tokio::time::timeout(Duration::from_secs(10), connector.wait_idle()).await;
    let gateway_points = sampler.map(Sampler::finish).unwrap_or_default();
    if let Some(g) = own {
        g.stop().await;
    }
    progress.finish();

    if connected < n {
        failures.push(format!(
            "{} of {n} devices could not connect",
            n - connected
        ));
    }
    if storm_connected < n {
        failures.push(format!(
            "{} of {n} devices could not reconnect",
            n - storm_connected
        ));
    }
    figures.push(Figure::new(
        "devices connected",
        connected as f64,
        "devices",
        None,
        Target::Equals(n as f64),
    ));
    figures.push(Figure::new(
        "handshakes per second",
        rate,
        "/s",
        bare_rate,
        Target::RatioAtLeast(HANDSHAKE_RATIO_TARGET),
    ));
    figures.push(Figure::new(
        "reconnect-storm handshakes per second",
        storm_rate,
        "/s",
        bare_rate,
        Target::None,
    ));
    if let (Some(before), Some(idle)) = (rss_before, rss_idle) {
        let per_conn =
            idle.rss_bytes.saturating_sub(before.rss_bytes) as f64 / connected.max(1) as f64;
        figures.push(Figure::new(
            "gateway memory per idle connection",
            per_conn,
            "bytes",
            bare_bytes.map(|b| b.1),
            Target::AtMost(IDLE_BYTES_TARGET),
        ));
        if let Some(handshaken) = rss_handshaken {
            figures.push(Figure::new(
                "  of which before hello",
                handshaken.rss_bytes.saturating_sub(before.rss_bytes) as f64
                    / connected.max(1) as f64,
                "bytes",
                bare_bytes.map(|b| b.0),
                Target::None,
            ));
        }
        figures.push(Figure::new(
            "gateway resident memory with the fleet idle",
            idle.rss_bytes as f64 / 1_048_576.0,
            "MiB",
            None,
            Target::None,
        ));
    }
    Ok(Report::of_run(
        options.scenario.name(),
        n,
        options.duration.as_secs_f64(),
        &stats,
        figures,
        gateway_points,
        failures,
    ))
}
