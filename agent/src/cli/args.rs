//! The command line, as clap types. Raw arguments become validated values here
//! (times, stages, coordinates) before any work starts, as ripgrep does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use protocol::Millis;
use protocol::domain::Stage;
use protocol::message::{Coordinates, MediaKind};
use uuid::Uuid;

/// The fieldsync device agent: records, identity checks and recordings, synced to the
/// gateway over QUIC with mutual TLS; works offline for days.
#[derive(Debug, Parser)]
#[command(name = "agent", version, about)]
pub(crate) struct Cli {
    /// The agent's data folder (identity, outbox, configuration, media).
    #[arg(
        long,
        global = true,
        env = "FIELDSYNC_AGENT_DATA",
        default_value = "./fieldsync-agent"
    )]
    pub(crate) data: PathBuf,
    /// The gateway's device endpoint `host:port`, overriding `gateway` in agent.toml.
    #[arg(long, global = true, env = "FIELDSYNC_AGENT_GATEWAY")]
    pub(crate) gateway: Option<String>,
    /// The name the gateway's certificate must carry, overriding `server_name`.
    #[arg(long, global = true, env = "FIELDSYNC_AGENT_SERVER_NAME")]
    pub(crate) server_name: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Install this device's identity.
    #[command(subcommand)]
    Enroll(Enroll),
    /// Show or change agent.toml.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Add a field record to the outbox (durable when this returns).
    Record(RecordArgs),
    /// Check an officer's enforcement certificate: online, or offline from the roster.
    CheckId(CheckIdArgs),
    /// Sync once with the gateway.
    Sync,
    /// Run the sync loop until SIGINT or SIGTERM.
    Run,
    /// Show what is queued, the last sync, the roster version and the clock skew.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Audio/video recordings.
    #[command(subcommand)]
    Recording(RecordingCmd),
}

/// Enrollment commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Enroll {
    /// Make the device key (it stays here) and a certificate signing request.
    Request {
        /// The device id the equipment manager enrolls.
        #[arg(long)]
        device_id: String,
        /// The device's serial number.
        #[arg(long)]
        serial: String,
        /// Write the CSR here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an installed identity.
        #[arg(long)]
        force: bool,
    },
    /// Install the certificate the equipment manager signed from the CSR.
    Install {
        /// The signed certificate (PEM).
        cert: PathBuf,
        /// The fleet CA certificate (PEM).
        #[arg(long)]
        ca: PathBuf,
        /// Replace an installed identity.
        #[arg(long)]
        force: bool,
    },
    /// Install a certs-dev bundle folder (device.pem, device.key, ca.pem).
    Bundle {
        /// The bundle folder.
        dir: PathBuf,
        /// Replace an installed identity.
        #[arg(long)]
        force: bool,
    },
}

/// Configuration commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCmd {
    /// Print the effective configuration.
    Show,
    /// Set a key.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Put a key back to its default (`gateway`: back to mDNS discovery).
    Unset {
        /// The key.
        key: String,
    },
}

/// Arguments of `record`.
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// The case number.
    #[arg(long = "case")]
    pub(crate) case_number: String,
    /// The enforcement target (person or organisation).
    #[arg(long)]
    pub(crate) target: String,
    /// The stage: initiation, investigation, review_decision, service_execution, archive.
    #[arg(long, value_parser = parse_stage)]
    pub(crate) stage: Stage,
    /// The action kind (inspection, seizure, penalty_decision, ...).
    #[arg(long)]
    pub(crate) action_kind: String,
    /// The record's text.
    #[arg(long, default_value = "")]
    pub(crate) text: String,
    /// Certificate number of an officer present (repeat for each).
    #[arg(long = "officer")]
    pub(crate) officers: Vec<String>,
    /// Where, in words.
    #[arg(long)]
    pub(crate) location: Option<String>,
    /// Where, as `LAT,LON` in degrees.
    #[arg(long, value_parser = parse_coordinates)]
    pub(crate) coordinates: Option<Coordinates>,
    /// When (RFC 3339, or milliseconds since the epoch); default now.
    #[arg(long, value_parser = parse_time)]
    pub(crate) at: Option<Millis>,
    /// A recording (id from `recording add`) documenting this record (repeatable).
    #[arg(long = "recording")]
    pub(crate) recordings: Vec<Uuid>,
    /// The sequence number of an earlier record this one corrects.
    #[arg(long)]
    pub(crate) corrects: Option<u64>,
}

/// Arguments of `check-id`.
#[derive(Debug, Args)]
pub(crate) struct CheckIdArgs {
    /// The certificate number shown by the officer.
    pub(crate) certificate_number: String,
    /// Where, in words.
    #[arg(long)]
    pub(crate) location: Option<String>,
    /// The case, if any.
    #[arg(long = "case")]
    pub(crate) case_number: Option<String>,
    /// Do not try the gateway: answer from the synced roster.
    #[arg(long)]
    pub(crate) offline: bool,
}

/// Recording commands.
#[derive(Debug, Subcommand)]
pub(crate) enum RecordingCmd {
    /// Register a recording: its file is moved into the agent's media folder,
    /// uploaded earliest deadline first, and deleted once the gateway stores it.
    Add {
        /// The recording file.
        file: PathBuf,
        /// When recording started (RFC 3339 or epoch milliseconds).
        #[arg(long, value_parser = parse_time)]
        start: Millis,
        /// When recording ended (RFC 3339 or epoch milliseconds).
        #[arg(long, value_parser = parse_time)]
        end: Millis,
        /// The case it documents.
        #[arg(long = "case")]
        case_number: Option<String>,
        /// The certificate number of the officer who made it.
        #[arg(long)]
        officer: Option<String>,
        /// Audio or video.
        #[arg(long, value_parser = parse_media, default_value = "video")]
        media: MediaKind,
    },
    /// List recordings and their upload state.
    List,
}

/// Parses RFC 3339 or integer milliseconds since the epoch.
pub(crate) fn parse_time(s: &str) -> Result<Millis, String> {
    if let Ok(ms) = s.trim().parse::<i64>() {
        return Ok(ms);
    }
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
        format!("{s:?} is not RFC 3339 (2026-05-01T08:30:00Z) nor epoch milliseconds: {e}")
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{s:?} is out of range"))
}

/// Parses a stage word.
pub(crate) fn parse_stage(s: &str) -> Result<Stage, String> {
    s.parse::<Stage>().map_err(|e| e.to_string())
}

/// Parses `audio` or `video`.
pub(crate) fn parse_media(s: &str) -> Result<MediaKind, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "audio" => Ok(MediaKind::Audio),
        "video" => Ok(MediaKind::Video),
        _ => Err(format!("{s:?} is not audio or video")),
    }
}

/// Parses `LAT,LON` in degrees into microdegrees, checking the ranges.
pub(crate) fn parse_coordinates(s: &str) -> Result<Coordinates, String> {
    let (lat, lon) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?} is not LAT,LON"))?;
    let micro = |v: &str, max: f64, what: &str| -> Result<i32, String> {
        let d: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("{what} {v:?} is not a number"))?;
        if !d.is_finite() || d.abs() > max {
            return Err(format!("{what} {v} is out of range (±{max})"));
        }
        Ok((d * 1e6).round() as i32)
    };
    Ok(Coordinates {
        lat_e6: micro(lat, 90.0, "latitude")?,
        lon_e6: micro(lon, 180.0, "longitude")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("agent").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_record_parses_into_typed_values() {
        let cli = parse(&[
            "--data",
            "/tmp/x",
            "record",
            "--case",
            "C-1",
            "--target",
            "Shop 7",
            "--stage",
            "service_execution",
            "--action-kind",
            "seizure",
            "--text",
            "sealed the door",
            "--officer",
            "A-1",
            "--officer",
            "A-2",
            "--coordinates",
            "31.2304,121.4737",
            "--at",
            "2026-05-01T08:30:00Z",
        ])
        .unwrap();
        let Command::Record(r) = cli.command else {
            panic!("not a record")
        };
        assert_eq!(r.stage, Stage::ServiceExecution);
        assert_eq!(r.officers, ["A-1", "A-2"]);
        assert_eq!(
            r.coordinates,
            Some(Coordinates {
                lat_e6: 31_230_400,
                lon_e6: 121_473_700
            })
        );
        assert_eq!(r.at, Some(1_777_624_200_000));
        assert_eq!(cli.data, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let err = parse(&[
            "record",
            "--case",
            "C",
            "--target",
            "T",
            "--stage",
            "lunch",
            "--action-kind",
            "k",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("lunch"), "{err}");
        assert!(parse_coordinates("91,0").unwrap_err().contains("latitude"));
        assert!(parse_coordinates("0;0").is_err());
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
        assert!(parse(&["record", "--case", "C"]).is_err(), "missing fields");
    }

    #[test]
    fn check_id_and_recording_add_parse() {
        let cli = parse(&["check-id", "A-1", "--offline", "--case", "C-1"]).unwrap();
        let Command::CheckId(c) = cli.command else {
            panic!()
        };
        assert!(c.offline);
        assert_eq!(c.case_number.as_deref(), Some("C-1"));
        let cli = parse(&[
            "recording",
            "add",
            "f.mp4",
            "--start",
            "2026-05-01T08:00:00Z",
            "--end",
            "2026-05-01T08:30:00Z",
            "--case",
            "C-1",
            "--officer",
            "A-1",
        ])
        .unwrap();
        let Command::Recording(RecordingCmd::Add {
            media, start, end, ..
        }) = cli.command
        else {
            panic!()
        };
        assert_eq!(media, MediaKind::Video);
        assert_eq!(end - start, 30 * 60 * 1000);
    }
}
