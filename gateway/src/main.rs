//! `gateway`: runs the fieldsync gateway. Configuration comes from `--config FILE`
//! (TOML) and `FIELDSYNC_*` environment variables; with neither, a working
//! development gateway starts under `./fieldsync-data`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gateway::config::{Config, ProcessEnv};
use store::Store;

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
    /// What to do; without a command the gateway serves.
    #[command(subcommand)]
    command: Option<Command>,
}

/// Commands besides serving.
#[derive(Subcommand, Debug)]
enum Command {
    /// Verify the audit log's hash chain in the configured store: every entry's hash
    /// and link is recomputed, so an edit, deletion or reordering made directly in
    /// the database is found. Exit 0 when intact, 2 when broken.
    VerifyAudit {
        /// The head hash recorded earlier (printed by a previous run); when given, the
        /// log must still contain that entry unchanged, which also detects a rewrite
        /// of the whole chain.
        #[arg(long, value_name = "HEX")]
        expect_head: Option<String>,
    },
}

/// Exit code for an audit log that does not verify.
const EXIT_AUDIT_BROKEN: u8 = 2;

/// Exit code for a configuration error (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,quinn=warn,sqlx=warn".into()),
        )
        .init();
    // Test builds only: the failpoints a test set in `FAILPOINTS` (see durable).
    let _failpoints = durable::failpoint::setup();
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
    if let Some(Command::VerifyAudit { expect_head }) = args.command {
        return verify_audit(config, expect_head.as_deref());
    }
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {}", protocol::error_text::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    if durable::failpoint::ENABLED {
        tracing::warn!("this gateway build carries failpoints: it is for tests, not for service");
    }
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

/// Runs the audit verification and reports it on stdout (intact) or stderr (broken).
fn verify_audit(config: Config, expect_head: Option<&str>) -> ExitCode {
    let checked = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                let store = Store::open(&config.store_config())
                    .await
                    .context("opening the store")?;
                let report = store.verify_audit_log().await;
                let earlier = match expect_head {
                    Some(head) => Some(store.audit_contains_hash(head).await?),
                    None => None,
                };
                store.close().await;
                Ok::<_, anyhow::Error>((report, earlier))
            })
        });
    match checked {
        Ok((Ok(report), earlier)) => {
            if earlier == Some(false) {
                eprintln!(
                    "gateway: audit log BROKEN: the head recorded earlier is no longer in the log \
                     (the chain was rewritten or truncated)"
                );
                return ExitCode::from(EXIT_AUDIT_BROKEN);
            }
            println!(
                "audit log intact: {} entries, head {}",
                report.entries, report.head_hash
            );
            ExitCode::SUCCESS
        }
        Ok((Err(broken), _)) => {
            eprintln!("gateway: audit log BROKEN: {broken}");
            ExitCode::from(EXIT_AUDIT_BROKEN)
        }
        Err(e) => {
            eprintln!("gateway: {}", protocol::error_text::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
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
