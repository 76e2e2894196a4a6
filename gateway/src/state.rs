//! What every part of a running gateway shares. The parts below it (deadlines, reports,
//! jobs) never take the whole state: the handles each needs are made here
//! ([`GatewayState::deadlines`], [`GatewayState::allocation`]) or handed over by
//! `server` when it spawns the jobs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::deadlines::Deadlines;
use crate::live::LiveConnections;
use crate::metrics::Metrics;
use crate::views::allocation::AllocationSource;
use clock::SharedClock;
use store::Store;

/// The shared state of one gateway process.
pub struct GatewayState {
    /// The validated configuration.
    pub config: Config,
    /// The registry and audit log.
    pub store: Store,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Devices connected now.
    pub live: Arc<LiveConnections>,
    /// Handshakes refused since the last audit summary.
    pub refusals: Arc<crate::refusals::RefusalLog>,
    /// The gateway's clock.
    pub clock: SharedClock,
    /// Cancelled when the gateway starts shutting down.
    pub shutdown: CancellationToken,
    /// Every admission and request task in flight, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// One task per admitted connection, waiting for its next request stream; they end
    /// when shutdown closes their connections.
    pub connections: TaskTracker,
    /// The group committer of field records.
    pub ingest: crate::ingest::Committer,
    /// Where recordings' bytes go (staging, then the content-addressed store).
    pub media: Arc<media::MediaStore>,
    /// Recording metrics (overdue, silent devices, bytes, stored).
    pub recording_metrics: crate::deadlines::RecordingMetrics,
    /// Components stopped by a storage failure (shared with the committer).
    pub faults: Arc<crate::faults::StorageFaults>,
    /// Free space of the gateway's folders: the alarm and the reserve (shared with the
    /// committer).
    pub storage: Arc<crate::storage::StorageWatch>,
    /// The rules terminals apply offline (from the configuration) ...
    pub device_rules: protocol::message::DeviceRules,
    /// ... and their digest: a hello naming it is not sent them again.
    pub device_rules_digest: protocol::Sha256Hash,
}

impl GatewayState {
    /// What a deadline pass needs (the watcher job, and tests that run a pass).
    pub fn deadlines(&self) -> Deadlines {
        Deadlines {
            store: self.store.clone(),
            clock: self.clock.clone(),
            policy: self.config.policy.clone(),
            zone: self.config.zone(),
            metrics: self.recording_metrics.clone(),
        }
    }

    /// What the allocation report is made from (API, pages, the daily snapshot).
    pub fn allocation(&self) -> AllocationSource {
        AllocationSource {
            store: self.store.clone(),
            clock: self.clock.clone(),
            policy: self.config.policy.allocation,
            zone: self.config.zone(),
        }
    }
}
