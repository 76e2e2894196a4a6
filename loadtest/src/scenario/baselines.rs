//! `loadtest baseline`: every baseline alone, on a fresh PKI, as a report — the bare
//! quinn + rustls server's handshakes, idle memory and bulk transfer, the fastest
//! durable SQLite insert, and the gateway's store alone on the same rows.

use crate::baseline::{fastest_sqlite, measure_bare_bulk, measure_bare_connections};
use crate::fleet;
use crate::options::{RunError, RunOptions};
use crate::progress::Progress;
use crate::report::{Figure, Report, Target};
use crate::runner::start_bare_server;
use crate::stats::Stats;
use crate::store_alone::fastest_store;

/// Measures every baseline on a fresh PKI of `options.devices` devices.
pub async fn run(
    options: &RunOptions,
    bulk_bytes: u64,
    sqlite_rows: usize,
) -> Result<Report, RunError> {
    let progress = Progress::start("baseline");
    std::fs::create_dir_all(&options.out_dir)?;
    let pki = options.out_dir.join("pki");
    let devices = u32::try_from(options.devices)
        .map_err(|_| RunError::Options("--devices is too large".into()))?;
    fleet::make_pki(&pki, devices)?;
    let fleet = fleet::load(&pki, options.devices)?;
    progress.set("bare server: handshakes and idle memory");
    let server = start_bare_server(options, &pki).await?;
    let stats = Stats::new();
    let bare = measure_bare_connections(&server, &fleet, options.concurrency, &stats).await?;
    progress.set("bare server: bulk transfer");
    let bulk = measure_bare_bulk(&server, &fleet[0], bulk_bytes).await?;
    let _ = server.stop().await;
    progress.set("SQLite: durable multi-row inserts");
    let rows = fastest_sqlite(&options.out_dir, sqlite_rows).await?;
    progress.set("the gateway's store alone: the same rows");
    let store_alone = fastest_store(&options.out_dir, sqlite_rows).await?;
    progress.finish();
    let figures = vec![
        Figure::new(
            "bare handshakes per second",
            bare.handshakes_per_sec,
            "/s",
            None,
            Target::None,
        ),
        Figure::new(
            "bare memory per idle connection",
            bare.bytes_after_exchange,
            "bytes",
            None,
            Target::None,
        ),
        Figure::new(
            "  of which before the first exchange",
            bare.bytes_after_handshake,
            "bytes",
            None,
            Target::None,
        ),
        Figure::new(
            "bare bulk goodput",
            bulk / 1_048_576.0,
            "MiB/s",
            None,
            Target::None,
        ),
        Figure::new(
            "SQLite durable inserts (1,000/tx)",
            rows,
            "rows/s",
            None,
            Target::None,
        ),
        Figure::new(
            "the gateway's store alone, same rows (no network)",
            store_alone,
            "records/s",
            Some(rows),
            Target::None,
        ),
    ];
    Ok(Report::of_run(
        "baseline",
        fleet.len(),
        0.0,
        &stats,
        figures,
        vec![],
        vec![],
    ))
}
