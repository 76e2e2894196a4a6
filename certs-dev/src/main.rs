//! `certs-dev`: writes a development PKI (fleet CA, gateway certificate, device
//! bundles, enrollment file, admin token) into a folder.
//!
//! A thin shell over [`pki::write_pki_with_progress`]: parse flags, draw a
//! progress bar when stderr is a terminal, print a summary. Exit codes: 0 done,
//! 64 usage error (bad flag or value), 1 anything else (existing CA, unwritable
//! folder, ...); the error is printed once, on stderr.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use pki::{
    DEFAULT_CA_DAYS, DEFAULT_DEVICE_DAYS, DEFAULT_GATEWAY_DAYS, KindMix, PkiError, PkiOptions,
    PkiSummary, layout, write_pki_with_progress,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `EX_USAGE` from sysexits.h.
const EXIT_USAGE: u8 = 64;

/// Make a development PKI for fieldsync: a fleet CA, the gateway's server
/// certificate, N device bundles, an enrollment file and an admin token.
#[derive(Debug, Parser)]
#[command(name = "certs-dev", version)]
struct Cli {
    /// Folder to write into; created if missing (its parent must exist).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Number of device bundles to make.
    #[arg(long, value_name = "N", default_value_t = 10)]
    devices: u32,

    /// Device kinds: recorder, terminal or mixed (alternating).
    #[arg(long, value_name = "KIND", default_value_t = KindMix::Mixed)]
    kind: KindMix,

    /// Extra name (DNS name or IP address) for the gateway certificate, besides
    /// localhost, 127.0.0.1 and ::1. Repeatable.
    #[arg(long = "gateway-name", value_name = "NAME")]
    gateway_names: Vec<String>,

    /// Validity of device certificates, in days.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_DEVICE_DAYS)]
    device_days: u32,

    /// Validity of the gateway certificate, in days.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_GATEWAY_DAYS)]
    gateway_days: u32,

    /// Validity of the fleet CA, in days.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_CA_DAYS)]
    ca_days: u32,

    /// Replace an existing PKI in DIR (every device enrolled with the old CA stops
    /// working), or write into a folder that holds other files.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "certs-dev: error: {}",
                protocol::error_text::one_line(e.as_ref())
            );
            let usage = e.downcast_ref::<PkiError>().is_some_and(PkiError::is_usage);
            ExitCode::from(if usage { EXIT_USAGE } else { 1 })
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let opts = PkiOptions {
        devices: cli.devices,
        kinds: cli.kind,
        gateway_names: cli.gateway_names.clone(),
        device_days: cli.device_days,
        gateway_days: cli.gateway_days,
        ca_days: cli.ca_days,
        force: cli.force,
        now: OffsetDateTime::now_utc(),
    };
    let bar = progress_bar(u64::from(cli.devices));
    let result = write_pki_with_progress(&cli.out, &opts, &|| bar.inc(1));
    bar.finish_and_clear();
    let summary = result.with_context(|| format!("no PKI written to {}", cli.out.display()))?;
    print_summary(&summary)
}

fn progress_bar(devices: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(devices);
    let style =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed}, {eta} left)")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message("device bundles");
    bar
}

fn print_summary(s: &PkiSummary) -> anyhow::Result<()> {
    let dir = s.dir.display();
    let until = s.device_not_after.format(&Rfc3339)?;
    println!("Wrote a development PKI to {dir}");
    println!(
        "  fleet CA      {}  sha256 {}",
        layout::CA_CERT_FILE,
        s.ca_fingerprint
    );
    println!(
        "  gateway       {}  for {}",
        layout::GATEWAY_CERT_FILE,
        s.gateway_names.join(", ")
    );
    println!(
        "  devices       {}/<id>/  {} recorders, {} terminals, valid until {until}",
        layout::DEVICES_DIR,
        s.recorders,
        s.terminals
    );
    println!(
        "  enrollment    {}  (import it into the gateway)",
        layout::ENROLLMENT_FILE
    );
    println!(
        "  admin token   {}  (secret; the gateway stores only its hash)",
        layout::ADMIN_TOKEN_FILE
    );
    Ok(())
}
