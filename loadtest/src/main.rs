//! `loadtest`: simulates thousands of fieldsync devices against a gateway it starts
//! (or an external one), verifies nothing was lost, and reports every figure against a
//! baseline measured in the same run. See docs/benchmarks.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use loadtest::options::{RunOptions, Scenario, SimOptions};
use loadtest::report::Report;
use loadtest::scenario::upload::UploadPlan;

/// Load-test a fieldsync gateway with simulated devices.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Simulated devices.
    #[arg(long, global = true, default_value_t = 1000)]
    devices: usize,
    /// Length of the steady phase (for example 60s, 5m).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// What to simulate.
    #[arg(long, value_enum, default_value_t = Scenario::ConnectStorm)]
    scenario: Scenario,
    /// Handshakes or requests in flight at once during ramps (and the hostile
    /// scenario's handshakes without a certificate).
    #[arg(long, global = true, default_value_t = 64)]
    concurrency: usize,
    /// Folder for the PKI, the gateway's data and the report
    /// (default: loadtest-out/<scenario>-<time>).
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    /// Target this gateway instead of starting one (needs --pki).
    #[arg(long)]
    gateway: Option<SocketAddr>,
    /// The PKI folder whose device bundles the external gateway enrolled.
    #[arg(long)]
    pki: Option<PathBuf>,
    /// Skip the bare baselines (figures are then reported without ratios).
    #[arg(long)]
    no_baseline: bool,
    /// Records per device per second in the steady phase (open loop; field-day,
    /// revoke-under-load, kill-restart, hostile).
    #[arg(long, default_value_t = 0.2)]
    record_rate: f64,
    /// Records each device makes offline before it first connects (their drain is
    /// the durable-ingest figure).
    #[arg(long, default_value_t = 20)]
    backlog: u32,
    /// Recordings per device.
    #[arg(long, default_value_t = 1)]
    recordings: u32,
    /// Bytes per recording (suffixes K, M, G, KiB, MiB, GiB).
    #[arg(long, default_value = "256KiB", value_parser = loadtest::options::parse_size)]
    recording_size: u64,
    /// An online identity check every this many records per device (0: none).
    #[arg(long, default_value_t = 10)]
    check_every: u32,
    /// Devices to revoke in revoke-under-load (default: one in twenty).
    #[arg(long, default_value_t = 0)]
    revoke: usize,
    /// Folder for the simulated agents' data folders (default: <out>/agents); put it
    /// on a RAM disk to keep the agents' fsyncs off the gateway's disk.
    #[arg(long)]
    agents_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure the baselines only: bare quinn + rustls handshakes and idle memory, bare
    /// bulk transfer, and the fastest durable SQLite insert.
    Baseline {
        /// Bytes for the bulk transfer, in MiB.
        #[arg(long, default_value_t = 256)]
        bulk_mib: u64,
        /// Rows for the SQLite insert.
        #[arg(long, default_value_t = 100_000)]
        sqlite_rows: usize,
    },
    /// The gateway's own upload path: one upload and several at once against a bare
    /// quinn transfer of the same bytes, and the disk alone, in interleaved rounds.
    Upload {
        /// Bytes per phase: one upload of this size, or --uploads sharing it
        /// (suffixes K, M, G, KiB, MiB, GiB).
        #[arg(long, default_value = "256MiB", value_parser = loadtest::options::parse_size)]
        size: u64,
        /// Uploads at once in the concurrent phases, one device each.
        #[arg(long, default_value_t = 16)]
        uploads: u32,
        /// Rounds of the four network phases.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// First chunk of every upload (default: the agent's upload_chunk_bytes).
        #[arg(long, value_parser = loadtest::options::parse_size)]
        chunk: Option<u64>,
    },
    /// (internal) Run the gateway under test until stdin closes.
    #[command(hide = true)]
    GatewayChild {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        pki: PathBuf,
    },
    /// (internal) Run the bare baseline server until stdin closes.
    #[command(hide = true)]
    BareServer {
        #[arg(long)]
        pki: PathBuf,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    if matches!(
        args.command,
        Some(Command::GatewayChild { .. } | Command::BareServer { .. })
    ) {
        own_scheduling_group();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadtest: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("loadtest: {}", protocol::error_text::one_line(e.as_ref()));
            ExitCode::from(2)
        }
    }
}

/// Puts this child (the gateway under test or the bare server) in a session of its
/// own. Why: the kernel shares CPU fairly between sessions (autogroups) and only then
/// between threads, as it does between a service and a shell. In the harness's session
/// the gateway's few threads would compete one for one with the thousand threads of the
/// simulated agents (one SQLite worker each) and get a sliver of the machine that no
/// deployed gateway would see. The child still stops when its stdin closes.
fn own_scheduling_group() {
    if let Err(e) = rustix::process::setsid() {
        tracing::warn!(error = %e, "could not start a session of its own; sharing the harness's");
    }
}

/// Runs the command; `Ok(false)` is a run that found a failure.
async fn dispatch(args: Args) -> anyhow::Result<bool> {
    match &args.command {
        Some(Command::GatewayChild { data, pki }) => {
            loadtest::target::serve_gateway_child(data, pki).await?;
            Ok(true)
        }
        Some(Command::BareServer { pki, listen }) => {
            loadtest::baseline::serve_bare(pki, *listen).await?;
            Ok(true)
        }
        Some(Command::Baseline {
            bulk_mib,
            sqlite_rows,
        }) => {
            let options = options(&args, "baseline")?;
            let report =
                loadtest::scenario::baselines::run(&options, *bulk_mib << 20, *sqlite_rows).await?;
            finish(&report, &options.out_dir)
        }
        Some(Command::Upload {
            size,
            uploads,
            rounds,
            chunk,
        }) => {
            let options = options(&args, "upload")?;
            let defaults = UploadPlan::default();
            let plan = UploadPlan {
                bytes: *size,
                concurrent: *uploads,
                rounds: *rounds,
                chunk: chunk.unwrap_or(defaults.chunk),
            };
            let report = loadtest::scenario::upload::run(&options, &plan).await?;
            finish(&report, &options.out_dir)
        }
        None => {
            let options = options(&args, args.scenario.name())?;
            let report = loadtest::scenario::run(&options).await?;
            finish(&report, &options.out_dir)
        }
    }
}

fn options(args: &Args, name: &str) -> anyhow::Result<RunOptions> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Ok(RunOptions {
        scenario: args.scenario,
        devices: args.devices,
        duration: args.duration,
        concurrency: args.concurrency,
        out_dir: args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("loadtest-out/{name}-{stamp}"))),
        program: std::env::current_exe().context("finding this executable")?,
        gateway: args.gateway,
        pki: args.pki.clone(),
        baseline: !args.no_baseline,
        sim: SimOptions {
            record_rate: args.record_rate,
            backlog: args.backlog,
            recordings: args.recordings,
            recording_size: args.recording_size,
            check_every: args.check_every,
            revoke: args.revoke,
            agents_dir: args.agents_dir.clone(),
        },
    })
}

fn finish(report: &Report, out_dir: &std::path::Path) -> anyhow::Result<bool> {
    print!("{}", report.table());
    report
        .write(out_dir)
        .with_context(|| format!("writing the report to {}", out_dir.display()))?;
    println!(
        "report: {}/report.json, {}/report.html",
        out_dir.display(),
        out_dir.display()
    );
    Ok(report.passed())
}
