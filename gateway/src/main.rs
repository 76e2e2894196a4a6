//! `gateway`: runs the fieldsync gateway. Configuration comes from `--config FILE`
//! (TOML) and `FIELDSYNC_*` environment variables; with neither, a working
//! development gateway starts under `./fieldsync-data`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use gateway::config::{Config, ProcessEnv};

/// The fieldsync gateway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (every key is optional; see docs/configuration.md).
    #[arg(long, env = "FIELDSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    print_config: bool,
}

/// Exit code for a configuration error (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,quinn=warn,sqlx=warn".into()),
        )
        .init();
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref(), &ProcessEnv) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.print_config {
        print!("{}", toml::to_string_pretty(&config).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        println!(
            "fieldsync gateway: data folder {}",
            config.data_dir.display()
        );
        gateway::run(config, shutdown_signal())
            .await
            .context("gateway failed")
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
