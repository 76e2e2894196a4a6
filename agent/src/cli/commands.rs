//! One function per command: open what it needs, call the library, print the result.

use std::path::Path;

use agent::check::{CheckRequest, CheckSource, verdict_word};
use agent::config::AgentConfig;
use agent::enroll::{self, EnrollError};
use agent::status::format_time;
use agent::{Agent, ConnectError, OpenError, RecordError, Session, SyncError};
use anyhow::Context;
use protocol::CloseCode;
use protocol::message::RecordContent;

use super::args::{CheckIdArgs, Cli, Command, ConfigCmd, Enroll, RecordArgs, RecordingCmd};
use super::{EXIT_REFUSED, EXIT_UNAVAILABLE, Failure};

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Enroll(e) => enroll(&cli.data, e),
        Command::Config(c) => config(&cli, c),
        Command::Record(r) => record(&cli, r).await,
        Command::CheckId(c) => check_id(&cli, c).await,
        Command::Sync => sync(&cli).await,
        Command::Run => run_daemon(&cli).await,
        Command::Status { json } => status(&cli, *json).await,
        Command::Recording(r) => recording(&cli, r).await,
    }
}

/// The configuration of the data folder with the command line's overrides.
fn load_config(cli: &Cli) -> Result<AgentConfig, Failure> {
    let mut config = AgentConfig::load(&cli.data).map_err(Failure::usage)?;
    if let Some(gateway) = &cli.gateway {
        config = config
            .with_key("gateway", gateway)
            .map_err(Failure::usage)?;
    }
    if let Some(name) = &cli.server_name {
        config = config
            .with_key("server_name", name)
            .map_err(Failure::usage)?;
    }
    Ok(config)
}

async fn open(cli: &Cli) -> Result<Agent, Failure> {
    let config = load_config(cli)?;
    Agent::open(&cli.data, config).await.map_err(|e| match e {
        OpenError::Enroll(_) | OpenError::Identity(_) | OpenError::Claim(_) => Failure::usage(e),
        other => Failure::other(other),
    })
}

fn enroll_failure(e: EnrollError) -> Failure {
    match e {
        EnrollError::Io { .. } | EnrollError::Csr(_) => Failure::other(e),
        other => Failure::usage(other),
    }
}

fn enroll(data: &Path, cmd: &Enroll) -> Result<(), Failure> {
    match cmd {
        Enroll::Request {
            device_id,
            serial,
            out,
            force,
        } => {
            let device = protocol::DeviceId::new(device_id.as_str())
                .with_context(|| format!("--device-id {device_id:?}"))
                .map_err(Failure::usage)?;
            let csr = enroll::request(data, &device, serial, *force).map_err(enroll_failure)?;
            match out {
                Some(path) => {
                    std::fs::write(path, &csr)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "key made in {}; CSR written to {}: have it signed, then run `agent enroll install`",
                        enroll::identity_dir(data).display(),
                        path.display()
                    );
                }
                None => print!("{csr}"),
            }
        }
        Enroll::Install { cert, ca, force } => {
            let cert_pem = enroll::read_certificate_file(cert).map_err(enroll_failure)?;
            let ca_pem = enroll::read_certificate_file(ca).map_err(enroll_failure)?;
            let device = enroll::install_certificate(data, &cert_pem, &ca_pem, *force)
                .map_err(enroll_failure)?;
            println!("enrolled as device {device}");
        }
        Enroll::Bundle { dir, force } => {
            let device = enroll::install_bundle(data, dir, *force).map_err(enroll_failure)?;
            println!("enrolled as device {device}");
        }
    }
    Ok(())
}

fn config(cli: &Cli, cmd: &ConfigCmd) -> Result<(), Failure> {
    match cmd {
        ConfigCmd::Show => {
            let config = load_config(cli)?;
            print!("{}", toml::to_string_pretty(&config)?);
            if config.gateway.is_none() {
                println!("# no gateway set: the agent discovers it by mDNS");
            }
        }
        ConfigCmd::Set { key, value } => {
            let config = AgentConfig::load(&cli.data).map_err(Failure::usage)?;
            let config = config.with_key(key, value).map_err(Failure::usage)?;
            config.save(&cli.data)?;
        }
        ConfigCmd::Unset { key } => {
            let config = AgentConfig::load(&cli.data).map_err(Failure::usage)?;
            let config = config.without_key(key).map_err(Failure::usage)?;
            config.save(&cli.data)?;
        }
    }
    Ok(())
}

async fn record(cli: &Cli, r: &RecordArgs) -> Result<(), Failure> {
    let agent = open(cli).await?;
    let content = RecordContent {
        case_number: r.case_number.clone(),
        target: r.target.clone(),
        stage: r.stage,
        action_kind: r.action_kind.clone(),
        text: r.text.clone(),
        officers: r.officers.clone(),
        location: r.location.clone(),
        coordinates: r.coordinates,
        made_at: r.at.unwrap_or_else(|| agent.now()),
        recordings: r.recordings.clone(),
        corrects: r.corrects,
    };
    let recorded = agent.record_checked(content).await.map_err(|e| match e {
        RecordError::Invalid(_) | RecordError::Refused(_) => Failure::usage(e),
        other => Failure::other(other),
    })?;
    let queued = &recorded.queued;
    println!("queued record {} {}", queued.sequence, queued.hash);
    for warning in &recorded.warnings {
        eprintln!("agent: warning: {warning}");
    }
    Ok(())
}

fn connect_failure(e: ConnectError) -> Failure {
    let code = match e.close_code() {
        Some(code) if code.is_refusal() => EXIT_REFUSED,
        _ => EXIT_UNAVAILABLE,
    };
    Failure {
        code,
        error: e.into(),
    }
}

fn sync_failure(e: SyncError) -> Failure {
    let code = match &e {
        SyncError::Client(c) => match c.close_code() {
            Some(code) if code.is_refusal() => EXIT_REFUSED,
            // Replaced by a newer connection of this device: not a refusal, try later.
            Some(CloseCode::GoingAway | CloseCode::Replaced) => EXIT_UNAVAILABLE,
            _ if matches!(c, agent::ClientError::Connection(_)) => EXIT_UNAVAILABLE,
            _ => super::EXIT_FAILURE,
        },
        SyncError::Timeout(_) => EXIT_UNAVAILABLE,
        _ => super::EXIT_FAILURE,
    };
    Failure {
        code,
        error: e.into(),
    }
}

async fn check_id(cli: &Cli, c: &CheckIdArgs) -> Result<(), Failure> {
    let agent = open(cli).await?;
    let req = CheckRequest {
        certificate_number: c.certificate_number.clone(),
        location: c.location.clone(),
        case_number: c.case_number.clone(),
    };
    let answered = if c.offline {
        agent.check_offline(&req).await
    } else {
        agent.check(&req).await
    };
    let answer = answered.map_err(|e| match e {
        agent::CheckError::Invalid(_) => Failure::usage(e),
        other => Failure::other(other),
    })?;
    let source = match answer.source {
        CheckSource::Online { roster_version } => {
            format!("online, roster version {roster_version}")
        }
        CheckSource::Offline { roster_version: 0 } => {
            "offline, roster never synced: queued for upload".to_owned()
        }
        CheckSource::Offline { roster_version } => {
            format!("offline, roster version {roster_version}: queued for upload")
        }
    };
    println!("{} ({source})", verdict_word(answer.verdict));
    if let Some(o) = &answer.officer {
        println!(
            "{} {}, {}, {} ({})",
            o.certificate_number, o.name, o.unit, o.post, o.category
        );
    }
    match super::verdict_exit(answer.verdict) {
        0 => Ok(()),
        code => Err(Failure {
            code,
            error: anyhow::anyhow!(
                "{} may not enforce: {}",
                c.certificate_number.trim(),
                super::verdict_text(answer.verdict)
            ),
        }),
    }
}

async fn sync(cli: &Cli) -> Result<(), Failure> {
    let agent = open(cli).await?;
    let mut session: Session = agent.connect().await.map_err(connect_failure)?;
    let result = agent.sync_once(&mut session.conn).await;
    session.close().await;
    let report = result.map_err(sync_failure)?;
    println!(
        "synced: {} records sent ({} stored, {} duplicate, {} refused, {} confirmed); {} checks uploaded; roster version {} (+{} entries); {} recordings stored ({} bytes sent); clock skew {} ms",
        report.records_sent,
        report.records_stored,
        report.records_duplicate,
        report.records_rejected,
        report.records_confirmed,
        report.checks_uploaded,
        report.roster_version,
        report.roster_entries,
        report.recordings_stored,
        report.recording_bytes_sent,
        report.clock_skew_ms,
    );
    // The flags raised or cleared on this device's records since the last sync, in
    // words (issue 21, point 6: the officer is told, not only "N refused").
    let kinds = agent
        .outbox()
        .rules_in_force()
        .await
        .map_err(Failure::other)?
        .action_kinds;
    println!(
        "{} two-officer flag changes since the last sync",
        report.flags.len()
    );
    for change in &report.flags {
        println!("{}", agent::rules::flag_notice(change, &kinds));
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run_daemon(cli: &Cli) -> Result<(), Failure> {
    let agent = open(cli).await?;
    tracing::info!(device = %agent.device_id(), data = %cli.data.display(), "agent running");
    let mut observer = agent::LogObserver;
    agent
        .run(shutdown_signal(), &mut observer)
        .await
        .map_err(|e| match e {
            agent::RunError::Refused(_) => Failure {
                code: EXIT_REFUSED,
                error: e.into(),
            },
            other => Failure::other(other),
        })?;
    tracing::info!("agent stopped");
    Ok(())
}

async fn status(cli: &Cli, json: bool) -> Result<(), Failure> {
    let agent = open(cli).await?;
    let status = agent.status().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{status}");
    }
    Ok(())
}

async fn recording(cli: &Cli, cmd: &RecordingCmd) -> Result<(), Failure> {
    let agent = open(cli).await?;
    match cmd {
        RecordingCmd::Add {
            file,
            start,
            end,
            case_number,
            officer,
            media,
        } => {
            let added = agent
                .add_recording(agent::recordings::NewRecording {
                    file: file.clone(),
                    media: *media,
                    started_at: *start,
                    ended_at: *end,
                    case_number: case_number.clone(),
                    officer: officer.clone(),
                })
                .await
                .map_err(|e| {
                    if e.is_usage() {
                        Failure::usage(e)
                    } else {
                        Failure::other(e)
                    }
                })?;
            println!(
                "recording {} registered ({} bytes, sha256 {}); upload due by {}",
                added.recording_id,
                added.size,
                added.sha256,
                format_time(added.ended_at + 24 * 3_600_000)
            );
        }
        RecordingCmd::List => {
            for r in agent.recordings().await? {
                println!(
                    "{} {:?} {} bytes, ended {}, gateway holds {} bytes{}",
                    r.recording_id,
                    r.state,
                    r.size,
                    format_time(r.ended_at),
                    r.gateway_offset,
                    r.reason
                        .map(|s| format!(", refused: {s}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
