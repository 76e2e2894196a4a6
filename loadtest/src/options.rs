//! How a run is set up (scenario, fleet size, what the simulated devices do) and why
//! it could not be carried out: read by the command line, the runner and every
//! scenario, and depending on none of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::baseline::BaselineError;
use crate::child::ChildError;
use crate::fleet::FleetError;

/// What to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Every device connects at once, says hello, stays idle for the duration, then
    /// all reconnect together: handshake rate and memory per idle connection.
    ConnectStorm,
    /// A working day: an offline backlog drained at docking, then records at an
    /// open-loop rate per device, identity checks and some recording uploads.
    FieldDay,
    /// Durable record ingest: every device drains an offline backlog at once (records
    /// per second against the plain SQLite insert), then pushes at planned times at
    /// half that rate (the ack latency).
    Ingest,
    /// The end of a shift: every device docks at once with its recordings and
    /// uploads them; goodput against the bare bulk transfer.
    ShiftEnd,
    /// A field day during which devices are revoked: how long each revoked device's
    /// connection stays open, and that its reconnect is refused.
    RevokeUnderLoad,
    /// A field day during which the gateway is SIGKILLed and restarted: nothing
    /// acknowledged may be lost.
    KillRestart,
    /// A field day undisturbed, then the same field day while the harness attacks the
    /// gateway (handshakes without a certificate, a stolen device certificate, slowloris
    /// on the operator listener): the honest figures under attack as ratios.
    Hostile,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ConnectStorm => "connect-storm",
            Scenario::FieldDay => "field-day",
            Scenario::Ingest => "ingest",
            Scenario::ShiftEnd => "shift-end",
            Scenario::RevokeUnderLoad => "revoke-under-load",
            Scenario::KillRestart => "kill-restart",
            Scenario::Hostile => "hostile",
        }
    }
}

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The scenario.
    pub scenario: Scenario,
    /// Simulated devices.
    pub devices: usize,
    /// Length of the steady phase.
    pub duration: Duration,
    /// Handshakes (and requests) in flight at once during ramps.
    pub concurrency: usize,
    /// Where the PKI, the gateway's data and the report go.
    pub out_dir: PathBuf,
    /// This harness's executable, re-run for the gateway and bare-server children.
    pub program: PathBuf,
    /// An external gateway to target instead of starting one.
    pub gateway: Option<SocketAddr>,
    /// The PKI folder of that external gateway (its devices must be enrolled).
    pub pki: Option<PathBuf>,
    /// Measure the bare baselines first (only with a gateway of our own, on this
    /// machine).
    pub baseline: bool,
    /// What the simulated devices of the data-moving scenarios do.
    pub sim: SimOptions,
}

/// What simulated devices do in `field-day`, `shift-end`, `revoke-under-load`,
/// `kill-restart` and `hostile`.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Records per device per second in the steady phase (open loop).
    pub record_rate: f64,
    /// Records each device makes offline before it first connects.
    pub backlog: u32,
    /// Recordings per device.
    pub recordings: u32,
    /// Bytes per recording.
    pub recording_size: u64,
    /// An online identity check every this many records (0: none).
    pub check_every: u32,
    /// Devices revoked in `revoke-under-load` (0: one in twenty).
    pub revoke: usize,
    /// Folder for the agents' data folders (default `<out>/agents`).
    pub agents_dir: Option<PathBuf>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            record_rate: 0.2,
            backlog: 20,
            recordings: 1,
            recording_size: 256 << 10,
            check_every: 10,
            revoke: 0,
            agents_dir: None,
        }
    }
}

impl SimOptions {
    /// The interval between a device's records (`None` at rate 0).
    pub fn record_interval(&self) -> Option<Duration> {
        (self.record_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / self.record_rate))
    }
}

/// Why a run could not be carried out (as opposed to a run that found a failure,
/// which is a [`Report`] with failures).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Options do not fit together.
    #[error("{0}")]
    Options(String),
    /// The fleet could not be prepared.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// A child process failed.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// A baseline failed.
    #[error("baseline: {0}")]
    Baseline(#[from] BaselineError),
    /// The gateway's store alone could not be measured.
    #[error("store alone: {0}")]
    StoreAlone(#[from] crate::store_alone::StoreAloneError),
    /// The client side failed to set up.
    #[error("client: {0}")]
    Client(#[from] agent::ClientError),
    /// The gateway's configuration (from `FIELDSYNC_*` variables) is invalid.
    #[error("gateway configuration: {0}")]
    Config(#[from] gateway::config::ConfigError),
    /// File system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Parses a byte size: a whole number with an optional suffix K, M, G (powers of
/// 1,000) or KiB, MiB, GiB (powers of 1,024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 65536, 64KiB or 1MiB"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (K, M, G, KiB, MiB, GiB)"
            ));
        }
    };
    let bytes = n
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err("a recording must have at least one byte".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_bad_ones_are_named() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2M"), Ok(2_000_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1.5MiB").unwrap_err().contains("unit"));
        assert!(parse_size("lots").unwrap_err().contains("lots"));
        assert!(parse_size("99999999999GiB").is_err());
    }
}
