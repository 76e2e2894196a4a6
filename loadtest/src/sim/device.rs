//! One simulated device and what every way of driving it shares: the plan, the fleet
//! of a run, a device opened with its offline work done, its connection kept up, a
//! sync and the read-back of what its outbox saw acknowledged, and what it did.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::outbox::recordings::{LocalRecording, RecordingState};
use agent::recordings::NewRecording;
use agent::{Agent, AgentConfig, GatewayConnection, GatewayEndpoint};
use clock::SystemClock;
use protocol::domain::Stage;
use protocol::message::{MediaKind, RecordContent};
use protocol::{DeviceId, Sha256Hash};
use rand::{Rng, RngCore, SeedableRng};
use tokio::sync::{Semaphore, watch};
use uuid::Uuid;

use crate::connect::SERVER_NAME;
use crate::fleet::SimDevice;
use crate::machine::device_now;
use crate::stats::Stats;

/// Operation names in the report.
pub mod ops {
    /// A record, from its planned time to its durable ack.
    pub const RECORD: &str = "record (planned→ack)";
    /// A complete sync (hello, pushes, uploads).
    pub const SYNC: &str = "sync";
    /// A device connection (QUIC + mTLS handshake).
    pub const CONNECT: &str = "connect";
    /// An online identity check.
    pub const IDENTITY_CHECK: &str = "identity check";
    /// A recording, from when it was queued to the gateway's "stored".
    pub const RECORDING: &str = "recording (queued→stored)";
    /// Revocation request sent → the device's connection closed.
    pub const REVOCATION_CLOSE: &str = "revocation→close";
}

/// What every simulated device does.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Records made offline before the first connection (drained by the first sync).
    pub backlog: u32,
    /// Recordings made offline before the first connection.
    pub offline_recordings: u32,
    /// Time between a device's records in the steady phase (`None`: no records).
    pub record_interval: Option<Duration>,
    /// An online identity check every this many record ticks (0: none).
    pub check_every: u32,
    /// Recordings each device makes during the steady phase, spread over it.
    pub steady_recordings: u32,
    /// Bytes of each recording.
    pub recording_size: u64,
    /// Length of the steady phase.
    pub steady: Duration,
    /// After the steady phase, how long a device may keep syncing to empty its outbox.
    pub drain: Duration,
    /// QUIC keep-alive and idle timeout of the devices (short ones notice a killed
    /// gateway quickly).
    pub keep_alive_secs: u64,
    /// See `keep_alive_secs`.
    pub idle_timeout_secs: u64,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            backlog: 0,
            offline_recordings: 0,
            record_interval: Some(Duration::from_secs(5)),
            check_every: 10,
            steady_recordings: 0,
            recording_size: 64 << 10,
            steady: Duration::from_secs(30),
            drain: Duration::from_secs(60),
            keep_alive_secs: 20,
            idle_timeout_secs: 60,
        }
    }
}

/// Shared by every device of a run.
pub struct Fleet {
    /// Client endpoints (one UDP socket per ~1,000 devices).
    pub endpoints: Vec<GatewayEndpoint>,
    /// Where the gateway is now (changes when `kill-restart` restarts it).
    pub addr: watch::Receiver<SocketAddr>,
    /// Latencies and errors.
    pub stats: Stats,
    /// The plan.
    pub plan: Plan,
    /// At most this many handshakes at once.
    pub connect_gate: Semaphore,
    /// Start of the run (after preparation).
    pub t0: Instant,
    /// Devices revoked during the run, and when (offset from `t0`).
    pub revocations: HashMap<usize, Duration>,
    /// How to revoke.
    pub revoker: Option<Arc<dyn Revoker>>,
}

/// Devices per client endpoint.
const DEVICES_PER_ENDPOINT: usize = 1_000;

impl Fleet {
    /// Client endpoints for `devices` devices.
    pub fn endpoints(
        addr: SocketAddr,
        devices: usize,
    ) -> Result<Vec<GatewayEndpoint>, agent::ClientError> {
        (0..devices.div_ceil(DEVICES_PER_ENDPOINT).max(1))
            .map(|_| GatewayEndpoint::bind(addr))
            .collect()
    }

    pub(super) fn endpoint(&self, index: usize) -> &GatewayEndpoint {
        &self.endpoints[index % self.endpoints.len()]
    }
}

/// Revokes a device through the gateway's admin API (`revoke-under-load`).
pub trait Revoker: Send + Sync {
    /// Revokes `device`; returns when the gateway answered (the change committed).
    fn revoke<'a>(
        &'a self,
        device: &'a DeviceId,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// What one revoked device observed.
#[derive(Clone, Debug)]
pub struct RevocationSeen {
    /// From sending the revocation to the device's connection closing (`None`: it
    /// did not close within the wait).
    pub close_after: Option<Duration>,
    /// True when the device's reconnect was refused as it must be.
    pub reconnect_refused: bool,
    /// What happened to the reconnect, in words.
    pub reconnect: String,
}

/// A device ready to run: its agent opened, its offline work done.
pub struct Prepared {
    pub(super) index: usize,
    pub(super) agent: Agent,
    pub(super) pending: VecDeque<Made>,
    pub(super) recordings_added: HashMap<Uuid, Instant>,
    pub(super) made: u64,
    pub(super) rng: rand::rngs::StdRng,
}

#[derive(Clone, Copy)]
pub(super) struct Made {
    pub(super) sequence: u64,
    pub(super) hash: Sha256Hash,
    /// When the record was planned; `None` for the offline backlog, which was never
    /// meant to be sent at once (its drain is measured as a whole).
    pub(super) planned: Option<Instant>,
}

/// A record the device saw acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckedRecord {
    /// Its sequence number.
    pub sequence: u64,
    /// Its hash.
    pub hash: Sha256Hash,
}

/// What a device did and saw.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The device.
    pub device: DeviceId,
    /// Records made.
    pub made: u64,
    /// Records acknowledged durable.
    pub acked: Vec<AckedRecord>,
    /// Recordings made.
    pub recordings_made: u64,
    /// Recordings the gateway said stored.
    pub recordings: Vec<LocalRecording>,
    /// Records the gateway refused (kept in the outbox).
    pub refused: usize,
    /// When the offline backlog (records and recordings) was all acknowledged.
    pub backlog_done: Option<Instant>,
    /// When the first sync started.
    pub first_sync: Option<Instant>,
    /// Set for a device revoked during the run.
    pub revocation: Option<RevocationSeen>,
}

/// The content of device `index`'s `made`-th record (also the rows of the SQLite
/// baseline, so both insert the same data).
pub fn record_content(
    index: usize,
    device: &DeviceId,
    made: u64,
    now: protocol::Millis,
) -> RecordContent {
    RecordContent {
        case_number: format!("LT-{index:05}-{}", made / 50),
        target: format!("Shop {}", index % 97),
        stage: Stage::Investigation,
        action_kind: "inspection".into(),
        text: format!("{device} record {made}"),
        officers: vec!["LT-0001".into(), "LT-0002".into()],
        location: Some("loadtest".into()),
        coordinates: None,
        made_at: now,
        recordings: vec![],
        corrects: None,
    }
}

impl Outcome {
    /// Nothing done yet.
    pub fn new(device: DeviceId) -> Self {
        Self {
            device,
            made: 0,
            acked: vec![],
            recordings_made: 0,
            recordings: vec![],
            refused: 0,
            backlog_done: None,
            first_sync: None,
            revocation: None,
        }
    }
}

/// Agent settings of a simulated device.
pub fn agent_config(plan: &Plan) -> AgentConfig {
    AgentConfig {
        server_name: Some(SERVER_NAME.into()),
        connect_timeout_secs: 10,
        request_timeout_secs: 30,
        keep_alive_secs: plan.keep_alive_secs,
        idle_timeout_secs: plan.idle_timeout_secs,
        ..AgentConfig::default()
    }
}

/// Opens device `index`'s agent in `dir` and does its offline work (backlog records,
/// offline recordings).
pub async fn prepare(
    index: usize,
    device: &SimDevice,
    dir: &Path,
    plan: &Plan,
) -> Result<Prepared, String> {
    // One SQLite connection per agent: two file descriptors and one thread each,
    // so thousands fit in one process's descriptor limit.
    let agent = Agent::open_with_connections(
        dir,
        agent_config(plan),
        (*device.identity).clone(),
        Arc::new(SystemClock),
        1,
    )
    .await
    .map_err(|e| format!("{}: opening the agent: {e}", device.id))?;
    let mut prepared = Prepared {
        index,
        agent,
        pending: VecDeque::new(),
        recordings_added: HashMap::new(),
        made: 0,
        rng: rand::rngs::StdRng::seed_from_u64(index as u64),
    };
    for _ in 0..plan.backlog {
        prepared
            .make_record(None)
            .await
            .map_err(|e| format!("{}: backlog record: {e}", device.id))?;
    }
    for _ in 0..plan.offline_recordings {
        prepared
            .add_recording(plan.recording_size)
            .await
            .map_err(|e| format!("{}: offline recording: {e}", device.id))?;
    }
    Ok(prepared)
}

impl Prepared {
    pub(super) async fn make_record(
        &mut self,
        planned: Option<Instant>,
    ) -> Result<(), agent::RecordError> {
        self.made += 1;
        let content = record_content(self.index, self.agent.device_id(), self.made, device_now());
        let queued = self.agent.record(content).await?;
        self.pending.push_back(Made {
            sequence: queued.sequence,
            hash: queued.hash,
            planned,
        });
        Ok(())
    }

    /// Writes a recording of `size` random bytes (unique content) and registers it.
    pub(super) async fn add_recording(&mut self, size: u64) -> Result<(), String> {
        let incoming = self.agent.data_dir().join("incoming");
        std::fs::create_dir_all(&incoming).map_err(|e| e.to_string())?;
        let file: PathBuf = incoming.join(format!("{}.bin", self.recordings_added.len()));
        let mut bytes = vec![0u8; usize::try_from(size).unwrap_or(usize::MAX)];
        self.rng.fill_bytes(&mut bytes);
        tokio::fs::write(&file, &bytes)
            .await
            .map_err(|e| e.to_string())?;
        let now = device_now();
        let new = NewRecording {
            file,
            media: MediaKind::Video,
            started_at: now - 120_000,
            ended_at: now - 60_000,
            case_number: Some(format!("LT-{:05}-0", self.index)),
            officer: Some("LT-0001".into()),
        };
        let added = self
            .agent
            .add_recording(new)
            .await
            .map_err(|e| e.to_string())?;
        self.recordings_added
            .insert(added.recording_id, Instant::now());
        Ok(())
    }
}

/// A running device's connection state.
pub(super) struct Live {
    pub(super) conn: Option<GatewayConnection>,
    pub(super) failures: u32,
}

/// Ends a device's run: closes its connection and its outbox, and fills in what it
/// made, what was acknowledged and what its outbox refused.
pub(super) async fn finish(
    device: Prepared,
    mut live: Live,
    mut outcome: Outcome,
    acked: Vec<AckedRecord>,
    stored: HashMap<Uuid, LocalRecording>,
) -> Outcome {
    if let Some(conn) = live.conn.take() {
        conn.close();
    }
    outcome.refused = device
        .agent
        .outbox()
        .rejected_records()
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    outcome.made = device.made;
    outcome.acked = acked;
    outcome.recordings_made = device.recordings_added.len() as u64;
    outcome.recordings = stored.into_values().collect();
    device.agent.outbox().close().await;
    outcome
}

/// Connects when there is no open connection; `false` when that failed (after a
/// backoff pause).
pub(super) async fn ensure_connected(device: &Prepared, fleet: &Fleet, live: &mut Live) -> bool {
    if live
        .conn
        .as_ref()
        .is_some_and(|c| c.close_reason().is_none())
    {
        return true;
    }
    live.conn = None;
    let addr = *fleet.addr.borrow();
    let started = Instant::now();
    let attempt = {
        let _permit = fleet.connect_gate.acquire().await;
        device
            .agent
            .connect_via(fleet.endpoint(device.index), addr, SERVER_NAME)
            .await
    };
    match attempt {
        Ok(conn) => {
            fleet.stats.record(ops::CONNECT, started.elapsed());
            live.conn = Some(conn);
            live.failures = 0;
            true
        }
        Err(e) => {
            fleet
                .stats
                .error(format!("connect: {}", kind(&e.to_string())));
            live.failures += 1;
            let cap = Duration::from_millis(250 << live.failures.min(4));
            let pause = cap / 2 + (cap / 2).mul_f64(rand::rng().random::<f64>());
            tokio::time::sleep(pause).await;
            false
        }
    }
}

/// One sync (connecting first if needed), then reads back what is now acknowledged.
pub(super) async fn sync(
    device: &mut Prepared,
    fleet: &Fleet,
    live: &mut Live,
    acked: &mut Vec<AckedRecord>,
    stored: &mut HashMap<Uuid, LocalRecording>,
) {
    if ensure_connected(device, fleet, live).await {
        let conn = live.conn.as_mut().expect("connected");
        let started = Instant::now();
        match device.agent.sync_once(conn).await {
            Ok(_) => fleet.stats.record(ops::SYNC, started.elapsed()),
            Err(e) => {
                fleet.stats.error(format!("sync: {}", kind(&e.to_string())));
                if conn.close_reason().is_some() {
                    live.conn = None;
                }
            }
        }
    }
    settle(device, fleet, acked, stored).await;
}

/// Moves what the outbox no longer holds (acknowledged) from pending to acked.
pub(super) async fn settle(
    device: &mut Prepared,
    fleet: &Fleet,
    acked: &mut Vec<AckedRecord>,
    stored: &mut HashMap<Uuid, LocalRecording>,
) {
    let outbox = device.agent.outbox();
    let first_queued = match outbox.queued_records(1).await {
        Ok(q) => q.first().map(|r| r.record.sequence),
        Err(e) => {
            fleet.stats.error(format!("outbox: {e}"));
            return;
        }
    };
    let now = Instant::now();
    while let Some(m) = device.pending.front() {
        if first_queued.is_some_and(|q| m.sequence >= q) {
            break;
        }
        if let Some(planned) = m.planned {
            fleet.stats.record(ops::RECORD, now - planned);
        }
        acked.push(AckedRecord {
            sequence: m.sequence,
            hash: m.hash,
        });
        device.pending.pop_front();
    }
    if device.recordings_added.len() > stored.len() {
        match outbox.recordings_in(RecordingState::Stored).await {
            Ok(list) => {
                for r in list {
                    if let Some(added) = device.recordings_added.get(&r.recording_id)
                        && !stored.contains_key(&r.recording_id)
                    {
                        fleet.stats.record(ops::RECORDING, now - *added);
                        stored.insert(r.recording_id, r);
                    }
                }
            }
            Err(e) => fleet.stats.error(format!("outbox: {e}")),
        }
    }
}

/// An error message without the parts that differ per device (ids, addresses), so
/// errors group by kind in the report.
pub(super) fn kind(message: &str) -> String {
    let mut out: String = message
        .split_whitespace()
        .map(|w| {
            if w.contains("dev-") || w.parse::<SocketAddr>().is_ok() || w.contains("127.0.0.1") {
                "…"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    out.truncate(160);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_drop_device_ids_and_addresses() {
        assert_eq!(
            kind("cannot connect to the gateway at 127.0.0.1:4433: timed out"),
            "cannot connect to the gateway at … timed out"
        );
        assert_eq!(
            kind("the gateway greeted device dev-00001"),
            "the gateway greeted device …"
        );
    }
}
