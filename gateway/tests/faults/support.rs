//! Shared set-up of the fault tests: the real `gateway` binary started with failpoints
//! in its environment, devices played by the real `agent` library (each its own outbox
//! and media folder), and the checks that must hold after any stop.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent::outbox::recordings::RecordingState;
use agent::recordings::NewRecording;
use agent::{Agent, AgentConfig, DeviceIdentity};
use clock::SystemClock;
use protocol::message::{MediaKind, RecordContent};
use protocol::{DeviceId, Sha256Hash};
use sha2::Digest;
use store::{Store, StoreConfig};
use test_support::{Backend, GatewayProcess, test_config};

/// How long a stopped process may take to be seen gone.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(30);

/// A gateway data folder, its store and the devices that use it, across the starts of
/// one test.
pub(crate) struct Site {
    pub(crate) backend: Backend,
    pub(crate) data: tempfile::TempDir,
    pub(crate) addrs: (SocketAddr, SocketAddr),
    pub(crate) devices: Vec<Device>,
    /// Agencies whose creation the admin API confirmed.
    pub(crate) agencies: Vec<String>,
}

/// One device: its agent and what the test asked it to record.
pub(crate) struct Device {
    pub(crate) id: DeviceId,
    pub(crate) agent: Agent,
    /// Texts of every record made, in order.
    pub(crate) made: Vec<String>,
    _dir: tempfile::TempDir,
    camera: tempfile::TempDir,
}

impl Site {
    /// A fresh data folder on `backend`; devices come with the first start.
    pub(crate) fn new(backend: &Backend) -> Self {
        Self {
            backend: backend.clone(),
            data: tempfile::tempdir().expect("tempdir"),
            addrs: GatewayProcess::free_addrs(),
            devices: Vec::new(),
            agencies: Vec::new(),
        }
    }

    /// Starts the gateway binary with `failpoints` (the `FAILPOINTS` syntax; empty for
    /// none) and `env`; opens the devices' agents after the first start (which made
    /// the development PKI).
    pub(crate) async fn start(&mut self, failpoints: &str, env: &[(&str, &str)]) -> GatewayProcess {
        let failpoints = failpoints.to_owned();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let process = GatewayProcess::start(
            Path::new(env!("CARGO_BIN_EXE_gateway")),
            self.data.path(),
            &self.backend,
            self.addrs,
            move |command| {
                command.env("FIELDSYNC_PKI_DEV_DEVICES", "2");
                command.env("FAILPOINTS", failpoints);
                for (k, v) in env {
                    command.env(k, v);
                }
            },
        )
        .await;
        if self.devices.is_empty() {
            for n in 1..=2 {
                self.devices.push(self.device(n).await);
            }
        }
        process
    }

    async fn device(&self, n: u32) -> Device {
        let id = DeviceId::new(format!("dev-{n:05}")).expect("device id");
        let bundle = pki::layout::device_dir(&self.data.path().join("pki"), &id);
        let identity = DeviceIdentity::load_bundle(&bundle).expect("bundle");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = AgentConfig {
            gateway: Some(self.addrs.0.to_string()),
            server_name: Some("localhost".into()),
            connect_timeout_secs: 2,
            request_timeout_secs: 10,
            keep_alive_secs: 1,
            idle_timeout_secs: 2,
            upload_chunk_bytes: 256 << 10,
            ..AgentConfig::default()
        };
        let agent = Agent::open_with(dir.path(), config, identity, Arc::new(SystemClock))
            .await
            .expect("agent opens");
        Device {
            id,
            agent,
            made: Vec::new(),
            _dir: dir,
            camera: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The store the gateway uses, opened from the test.
    pub(crate) async fn store(&self) -> Store {
        Store::open(&self.store_config())
            .await
            .expect("the store opens")
    }

    pub(crate) fn store_config(&self) -> StoreConfig {
        test_config(self.data.path(), &self.backend, 2).store_config()
    }

    /// One round of work: every device makes records (the first also a recording) and
    /// syncs, then an operator creates an agency. Failures are expected (the gateway
    /// may stop at any step) and leave the work for the next round.
    pub(crate) async fn work(&mut self, round: usize) {
        for d in &mut self.devices {
            for i in 0..3 {
                let text = format!("{}-{round}-{i}", d.id);
                d.agent
                    .record(content(&text))
                    .await
                    .expect("the device records");
                d.made.push(text);
            }
        }
        let first = &self.devices[0];
        let file = first.camera.path().join(format!("clip-{round}.mp4"));
        std::fs::write(&file, clip(round as u64, 700_000)).expect("a recording");
        first
            .agent
            .add_recording(NewRecording {
                file,
                media: MediaKind::Video,
                started_at: now() - 120_000,
                ended_at: now() - 60_000,
                case_number: Some("CASE-FAULTS".into()),
                officer: None,
            })
            .await
            .expect("the recording is taken");
        futures::future::join_all(self.devices.iter().map(|d| sync(&d.agent))).await;
        let name = format!("Fault agency {round}");
        if create_agency(self.addrs.1, self.data.path(), &name).await {
            self.agencies.push(name);
        }
    }

    /// What must hold after any stop, whatever the devices did since: every record a
    /// device dropped from its outbox (an ack) is stored, none twice, each chain
    /// verifies; every recording a device deleted is stored with bytes matching its
    /// hash; every published file matches its name; the audit log verifies; every
    /// agency the API confirmed exists.
    pub(crate) async fn check(&self, after: &str) {
        let store = self.store().await;
        for d in &self.devices {
            let queued: BTreeSet<String> = d
                .agent
                .outbox()
                .queued_records(u32::MAX)
                .await
                .expect("outbox")
                .into_iter()
                .map(|q| q.record.content.text)
                .collect();
            let stored = store.device_records(&d.id).await.expect("records");
            let texts: Vec<&str> = stored
                .iter()
                .map(|r| r.record.content.text.as_str())
                .collect();
            let sequences: Vec<u64> = stored.iter().map(|r| r.record.sequence).collect();
            let expected: Vec<u64> = (1..=stored.len() as u64).collect();
            assert_eq!(
                sequences, expected,
                "after {after}: {} stored a gap or twice",
                d.id
            );
            assert!(
                stored.iter().all(|r| r.chain_break.is_none())
                    && protocol::chain::verify_chain(&d.id, stored.iter().map(|r| &r.record))
                        .is_ok(),
                "after {after}: {}'s chain does not verify",
                d.id
            );
            for text in &texts {
                assert!(
                    d.made.iter().any(|m| m == text),
                    "after {after}: {text} was never made"
                );
            }
            for made in &d.made {
                if !queued.contains(made) {
                    assert!(
                        texts.contains(&made.as_str()),
                        "after {after}: {} dropped {made} from its outbox but the gateway lost it",
                        d.id
                    );
                }
            }
            for r in d.agent.recordings().await.expect("recordings") {
                let deleted = r.state == RecordingState::Stored || !r.path.exists();
                if r.state == RecordingState::Adding || !deleted {
                    continue;
                }
                let row = store.recording(r.recording_id).await.expect("store");
                assert!(
                    row.is_some_and(|row| row.is_stored()),
                    "after {after}: {} deleted recording {} that the gateway has not stored",
                    d.id,
                    r.recording_id
                );
                assert_eq!(
                    published(&self.media_dir(), &r.sha256),
                    Some(r.sha256),
                    "after {after}: recording {} is not held with its bytes",
                    r.recording_id
                );
            }
        }
        for (name, actual) in self.published_files() {
            assert_eq!(
                Some(name),
                actual,
                "after {after}: a published file differs from its hash"
            );
        }
        let audit = store.verify_audit_log().await;
        assert!(audit.is_ok(), "after {after}: the audit log: {audit:?}");
        for agency in &self.agencies {
            assert!(
                store.agency_by_name(agency).await.expect("store").is_some(),
                "after {after}: the API confirmed {agency:?}, the store lost it"
            );
        }
        store.close().await;
    }

    /// Syncs every device until nothing is left to send, then checks that everything
    /// made is stored exactly once and every recording is stored and deleted.
    pub(crate) async fn drain_and_check_all(&self, label: &str) {
        for _ in 0..5 {
            futures::future::join_all(self.devices.iter().map(|d| sync(&d.agent))).await;
            let mut left = 0;
            for d in &self.devices {
                let status = d.agent.status().await.expect("status");
                left += status.queued_records + status.pending_recordings;
            }
            if left == 0 {
                break;
            }
        }
        self.check(label).await;
        let store = self.store().await;
        for d in &self.devices {
            let stored = store.device_records(&d.id).await.expect("records");
            let texts: Vec<String> = stored.into_iter().map(|r| r.record.content.text).collect();
            assert_eq!(
                texts, d.made,
                "{label}: {} stored exactly what it made, once",
                d.id
            );
            for r in d.agent.recordings().await.expect("recordings") {
                assert_eq!(
                    r.state,
                    RecordingState::Stored,
                    "{label}: {}",
                    r.recording_id
                );
                assert!(!r.path.exists(), "{label}: the device deleted its copy");
            }
        }
        store.close().await;
    }

    pub(crate) fn media_dir(&self) -> PathBuf {
        self.data.path().join("media")
    }

    /// Every published file: its name and the SHA-256 of its bytes.
    fn published_files(&self) -> Vec<(Sha256Hash, Option<Sha256Hash>)> {
        let mut out = Vec::new();
        let Ok(prefixes) = std::fs::read_dir(self.media_dir().join("sha256")) else {
            return out;
        };
        for prefix in prefixes.flatten() {
            for file in std::fs::read_dir(prefix.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = file.file_name().to_string_lossy().into_owned();
                let name = Sha256Hash::from_hex(&name).expect("a hash name");
                out.push((name, published(&self.media_dir(), &name)));
            }
        }
        out
    }
}

/// The SHA-256 of the published file named by `sha256`, if there is one.
pub(crate) fn published(media: &Path, sha256: &Sha256Hash) -> Option<Sha256Hash> {
    let hex = sha256.to_hex();
    let bytes = std::fs::read(media.join("sha256").join(&hex[..2]).join(&hex)).ok()?;
    Some(Sha256Hash(sha2::Sha256::digest(&bytes).into()))
}

/// One sync; the error, if any, is only logged (the gateway may be gone).
pub(crate) async fn sync(agent: &Agent) {
    let result = async {
        let mut session = agent.connect().await.map_err(|e| e.to_string())?;
        let report = agent
            .sync_once(&mut session.conn)
            .await
            .map_err(|e| e.to_string());
        session.close().await;
        report
    }
    .await;
    if let Err(e) = result {
        eprintln!("{}: sync failed: {e}", agent.device_id());
    }
}

/// Creates an agency through the admin API; true if the API confirmed it.
pub(crate) async fn create_agency(http: SocketAddr, data: &Path, name: &str) -> bool {
    let token = std::fs::read_to_string(data.join("pki").join("admin.token")).expect("token");
    let body = serde_json::json!({ "name": name, "class": "a", "reason": "fault test" });
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        agent
            .post(format!("http://{http}/api/v1/agencies"))
            .header("Authorization", format!("Bearer {}", token.trim()))
            .send_json(&body)
            .is_ok_and(|r| r.status().is_success())
    })
    .await
    .expect("the request task")
}

/// Asserts that `process` stopped by itself at the failpoint `point`.
pub(crate) async fn assert_stopped_at(process: &mut GatewayProcess, point: &str) {
    let status = process.exited(STOP_WAIT).await;
    let log = process.log();
    assert!(
        status.is_some(),
        "the failpoint {point} was never reached; the gateway's log:\n{log}"
    );
    assert!(
        log.contains(&format!("failpoint {point}: stopping the process")),
        "the gateway stopped, but not at {point} ({status:?}):\n{log}"
    );
}

/// Record content whose text names it.
pub(crate) fn content(text: &str) -> RecordContent {
    protocol::test_util::record_content("CASE-FAULTS", text, now())
}

/// `len` bytes of recording content, distinct per seed.
pub(crate) use test_support::pseudo_random_bytes as clip;

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// The value of the first sample of `name` (with its labels, if given) in a
/// `/metrics` text.
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
