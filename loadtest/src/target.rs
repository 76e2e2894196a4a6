//! The gateway under test: a child process this harness starts with its own data
//! folder and PKI (the default), or an external gateway given by address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway::config::{ConfigError, ProcessEnv};

use crate::child::{ChildError, ChildProcess, ChildSpec, ready_line, stdin_closed};
use crate::procstat::{self, ProcSample};
use crate::report::ResourcePoint;

/// The configuration of a gateway the harness starts: loopback, ephemeral ports, the
/// harness's PKI (already enrolled), no development PKI of its own.
pub fn gateway_config(data_dir: &Path, pki_dir: &Path) -> Result<gateway::Config, ConfigError> {
    // FIELDSYNC_* variables still apply, so a benchmark can vary a setting
    // (for example FIELDSYNC_DEVICE_RETRY_ABOVE_HANDSHAKES_PER_SEC) without a rebuild.
    let mut config = gateway::Config::load(None, &ProcessEnv)?;
    config.data_dir = data_dir.to_owned();
    config.device.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.pki.dir = pki_dir.display().to_string();
    config.pki.auto_dev_pki = false;
    Ok(config)
}

/// Why the gateway under test did not run.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A `FIELDSYNC_*` variable is invalid.
    #[error("gateway configuration: {0}")]
    Config(#[from] ConfigError),
    /// The gateway failed.
    #[error(transparent)]
    Gateway(#[from] gateway::GatewayError),
}

/// Runs a gateway until stdin closes (the hidden `gateway-child` subcommand).
pub async fn serve_gateway_child(data_dir: &Path, pki_dir: &Path) -> Result<(), TargetError> {
    let running = gateway::start(gateway_config(data_dir, pki_dir)?).await?;
    println!(
        "{}",
        ready_line(running.device_addr(), Some(running.http_addr()))
    );
    stdin_closed().await;
    running.shutdown().await;
    Ok(())
}

/// A gateway the harness started.
pub struct OwnGateway {
    spec: ChildSpec,
    process: Option<ChildProcess>,
    /// Its data folder.
    pub data_dir: PathBuf,
    /// Its PKI folder.
    pub pki_dir: PathBuf,
}

impl OwnGateway {
    /// Starts `program gateway-child` on the given folders.
    pub async fn start(
        program: &Path,
        data_dir: &Path,
        pki_dir: &Path,
    ) -> Result<Self, ChildError> {
        let spec = ChildSpec {
            program: program.to_owned(),
            args: vec![
                "gateway-child".into(),
                "--data".into(),
                data_dir.display().to_string(),
                "--pki".into(),
                pki_dir.display().to_string(),
            ],
            env: vec![("RUST_LOG".into(), "warn".into())],
            name: "gateway".into(),
        };
        let process = ChildProcess::start(&spec).await?;
        Ok(Self {
            spec,
            process: Some(process),
            data_dir: data_dir.to_owned(),
            pki_dir: pki_dir.to_owned(),
        })
    }

    /// The running process.
    pub fn process(&self) -> &ChildProcess {
        self.process.as_ref().expect("the gateway is running")
    }

    /// Where devices connect.
    pub fn device_addr(&self) -> SocketAddr {
        self.process().device_addr
    }

    /// The gateway's configuration (to open its store for verification).
    pub fn config(&self) -> Result<gateway::Config, ConfigError> {
        gateway_config(&self.data_dir, &self.pki_dir)
    }

    /// SIGKILLs the gateway, then starts it again on the same folders (its ports
    /// change; devices must be pointed at the new address).
    pub async fn kill_and_restart(&mut self) -> Result<(), ChildError> {
        if let Some(p) = self.process.take() {
            let _ = p.kill().await;
        }
        self.process = Some(ChildProcess::start(&self.spec).await?);
        Ok(())
    }

    /// Stops it gracefully.
    pub async fn stop(mut self) {
        if let Some(p) = self.process.take() {
            let _ = p.stop().await;
        }
    }
}

/// Samples a process's memory and CPU once a second until dropped.
pub struct Sampler {
    points: Arc<Mutex<Vec<ResourcePoint>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `pid`; `t0` is the start of the run.
    pub fn start(pid: u32, t0: Instant) -> Self {
        let points = Arc::new(Mutex::new(Vec::new()));
        let out = points.clone();
        let task = tokio::spawn(async move {
            let mut last: Option<(Instant, ProcSample)> = None;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Ok(now) = procstat::sample(pid) else {
                    continue;
                };
                let at = Instant::now();
                let cpu = last
                    .map(|(t, s)| procstat::cpu_percent(&s, &now, (at - t).as_secs_f64()))
                    .unwrap_or(0.0);
                last = Some((at, now));
                out.lock().expect("sampler lock").push(ResourcePoint {
                    t_secs: (at - t0).as_secs_f64(),
                    rss_bytes: now.rss_bytes,
                    cpu_percent: cpu,
                });
            }
        });
        Self { points, task }
    }

    /// The latest point.
    pub fn latest(&self) -> Option<ResourcePoint> {
        self.points.lock().expect("sampler lock").last().cloned()
    }

    /// Stops sampling and returns every point.
    pub fn finish(self) -> Vec<ResourcePoint> {
        self.task.abort();
        std::mem::take(&mut *self.points.lock().expect("sampler lock"))
    }
}
