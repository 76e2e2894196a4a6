//! The processes a run starts: the fieldsync gateway, and the bare quinn server of the
//! baseline. Both are this same executable re-run with a hidden subcommand, so the
//! gateway's memory and CPU are measured apart from the harness's, and `kill-restart`
//! can SIGKILL a real process.
//!
//! A child prints one line `READY device=ADDR http=ADDR` when it listens, and stops
//! gracefully when its stdin closes (no signal handling needed in the harness).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::procstat::{self, ProcSample};

/// The first line a child prints once it listens.
pub const READY: &str = "READY";

/// How long a child may take to start listening (a development PKI of 100,000
/// devices is made before the gateway starts, so this is generous).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a child could not be run.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The executable could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The executable.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It exited or closed stdout before saying it was ready.
    #[error("{0} exited before it was ready (see its log above)")]
    Exited(String),
    /// It took too long.
    #[error("{0} was not ready within {1:?}")]
    Timeout(String, Duration),
    /// Its ready line could not be read.
    #[error("{what} printed an unreadable ready line {line:?}")]
    BadReadyLine {
        /// Which child.
        what: String,
        /// The line.
        line: String,
    },
}

/// How to start a child.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    /// This harness's executable (`current_exe()` in the binary; the cargo-built
    /// binary in tests).
    pub program: PathBuf,
    /// Hidden subcommand and its arguments.
    pub args: Vec<String>,
    /// Extra environment (for example `FIELDSYNC_*` configuration).
    pub env: Vec<(String, String)>,
    /// A name for messages.
    pub name: String,
}

/// A running child process.
pub struct ChildProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    /// Where devices connect.
    pub device_addr: SocketAddr,
    /// Its HTTP listener, when it has one.
    pub http_addr: Option<SocketAddr>,
}

impl ChildProcess {
    /// Starts the child and waits for its ready line.
    pub async fn start(spec: &ChildSpec) -> Result<Self, ChildError> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| ChildError::Spawn {
            program: spec.program.clone(),
            source,
        })?;
        let pid = child
            .id()
            .ok_or_else(|| ChildError::Exited(spec.name.clone()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(START_TIMEOUT, async {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line.starts_with(READY) => return Ok(line),
                    Ok(Some(_)) => continue,
                    _ => return Err(ChildError::Exited(spec.name.clone())),
                }
            }
        })
        .await
        .map_err(|_| ChildError::Timeout(spec.name.clone(), START_TIMEOUT))??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (device_addr, http_addr) =
            parse_ready(&line).ok_or_else(|| ChildError::BadReadyLine {
                what: spec.name.clone(),
                line: line.clone(),
            })?;
        Ok(Self {
            name: spec.name.clone(),
            stdin: child.stdin.take(),
            child,
            pid,
            device_addr,
            http_addr,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its memory and CPU now.
    pub fn sample(&self) -> std::io::Result<ProcSample> {
        procstat::sample(self.pid)
    }

    /// Asks it to stop gracefully (closes its stdin) and waits.
    pub async fn stop(mut self) -> std::io::Result<std::process::ExitStatus> {
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                tracing::warn!(child = %self.name, "did not stop within 60 s; killing it");
                self.child.kill().await?;
                self.child.wait().await
            }
        }
    }

    /// SIGKILLs it, as a power cut or an OOM kill would.
    pub async fn kill(mut self) -> std::io::Result<()> {
        self.child.kill().await
    }
}

/// Reads `READY device=ADDR [http=ADDR]`.
fn parse_ready(line: &str) -> Option<(SocketAddr, Option<SocketAddr>)> {
    let mut device = None;
    let mut http = None;
    for word in line.split_whitespace().skip(1) {
        if let Some(a) = word.strip_prefix("device=") {
            device = Some(a.parse().ok()?);
        } else if let Some(a) = word.strip_prefix("http=") {
            http = Some(a.parse().ok()?);
        }
    }
    Some((device?, http))
}

/// The ready line a child prints.
pub fn ready_line(device: SocketAddr, http: Option<SocketAddr>) -> String {
    match http {
        Some(http) => format!("{READY} device={device} http={http}"),
        None => format!("{READY} device={device}"),
    }
}

/// Completes when stdin reaches end of file: the harness wants the child to stop.
pub async fn stdin_closed() {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    while let Ok(n) = stdin.read_line(&mut line).await {
        if n == 0 {
            break;
        }
        line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trips() {
        let d: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let h: SocketAddr = "127.0.0.1:4480".parse().unwrap();
        assert_eq!(parse_ready(&ready_line(d, Some(h))), Some((d, Some(h))));
        assert_eq!(parse_ready(&ready_line(d, None)), Some((d, None)));
        assert_eq!(parse_ready("READY http=1.2.3.4:5"), None);
        assert_eq!(parse_ready("READY device=nonsense"), None);
    }
}
