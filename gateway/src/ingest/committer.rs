//! The committer task and its handle (see the module docs of [`crate::ingest`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use protocol::message::RecordAck;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::RecordMetrics;
use crate::faults::{Component, Halted, StorageFaults};
use crate::storage::{Folder, StorageWatch};
use clock::SharedClock;
use store::{IngestRules, RecordBatch, Store};

/// How the committer groups pushes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestSettings {
    /// A group is committed once it holds this many records (a push is never split).
    pub max_batch_records: usize,
    /// After the first push of a group arrives, how long to wait for more.
    pub max_wait: Duration,
    /// Pushes that may wait in the queue; beyond that, callers wait for room.
    pub queue_requests: usize,
}

/// Why a push was not acknowledged.
#[derive(Clone, Debug, thiserror::Error)]
pub enum IngestError {
    /// The group's transaction failed; nothing of it was stored.
    #[error("the group commit failed: {0}")]
    CommitFailed(String),
    /// The store's disk is full; nothing of the group was stored.
    #[error("the gateway's store is full ({0}); nothing of this push was stored, retry later")]
    StorageFull(String),
    /// Ingest stopped after a storage failure (until the gateway is restarted).
    #[error(transparent)]
    Halted(#[from] Halted),
    /// The gateway is shutting down and stopped taking pushes.
    #[error("the gateway is shutting down")]
    Stopped,
}

/// A queued push and where to send its acks.
struct Job {
    batch: RecordBatch,
    reply: oneshot::Sender<Result<Vec<RecordAck>, IngestError>>,
}

/// The handle through which handlers submit pushes. Cheap to share.
pub struct Committer {
    queue: mpsc::Sender<Job>,
    metrics: RecordMetrics,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

/// What the committer task owns.
struct Worker {
    store: Store,
    policy: Arc<IngestRules>,
    clock: SharedClock,
    metrics: RecordMetrics,
    settings: IngestSettings,
    faults: Arc<StorageFaults>,
    storage: Arc<StorageWatch>,
}

impl Committer {
    /// Starts the committer task. A commit that fails with an I/O error stops it for
    /// good (`faults`): every later push is refused, none is acknowledged. A group is
    /// refused as "full" while the store's folder has no more than its reserve free
    /// (`storage`).
    pub fn start(
        store: Store,
        policy: IngestRules,
        clock: SharedClock,
        metrics: RecordMetrics,
        settings: IngestSettings,
        faults: Arc<StorageFaults>,
        storage: Arc<StorageWatch>,
    ) -> Committer {
        let (queue, jobs) = mpsc::channel(settings.queue_requests.max(1));
        let stop = CancellationToken::new();
        let worker = Worker {
            store,
            policy: Arc::new(policy),
            clock,
            metrics: metrics.clone(),
            settings,
            faults,
            storage,
        };
        let task = tokio::spawn(worker.run(jobs, stop.clone()));
        Committer {
            queue,
            metrics,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues a push and waits until its group has committed; returns one ack per
    /// record, in push order.
    pub async fn submit(&self, batch: RecordBatch) -> Result<Vec<RecordAck>, IngestError> {
        let (reply, acks) = oneshot::channel();
        self.queue
            .send(Job { batch, reply })
            .await
            .map_err(|_| IngestError::Stopped)?;
        acks.await.map_err(|_| IngestError::Stopped)?
    }

    /// The ingest metrics (shared with the identity-check handlers).
    pub fn metrics(&self) -> &RecordMetrics {
        &self.metrics
    }

    /// Commits what is queued, then stops the task. Call after every handler finished.
    pub async fn stop(&self) {
        self.stop.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Worker {
    async fn run(self, mut jobs: mpsc::Receiver<Job>, stop: CancellationToken) {
        loop {
            let first = tokio::select! {
                biased;
                job = jobs.recv() => job,
                () = stop.cancelled() => {
                    jobs.close();
                    jobs.recv().await
                }
            };
            let Some(first) = first else { break };
            let group = self.gather(first, &mut jobs).await;
            self.commit(group).await;
            // After the acks went out; pushes arriving meanwhile join the next group.
            if let Err(e) = self.store.keep_log_short().await {
                tracing::warn!(error = %e, "write-ahead log checkpoint by the committer failed");
            }
        }
        tracing::debug!("ingest committer stopped");
    }

    /// Takes more queued pushes until the group is full or the wait is over.
    async fn gather(&self, first: Job, jobs: &mut mpsc::Receiver<Job>) -> Vec<Job> {
        let deadline = tokio::time::Instant::now() + self.settings.max_wait;
        let mut records = first.batch.records.len();
        let mut group = vec![first];
        while records < self.settings.max_batch_records {
            // `timeout_at` polls the queue before looking at the deadline, so pushes
            // that are already queued always join, even with a zero wait.
            match tokio::time::timeout_at(deadline, jobs.recv()).await {
                Ok(Some(job)) => {
                    records += job.batch.records.len();
                    group.push(job);
                }
                Ok(None) | Err(_) => break,
            }
        }
        group
    }

    async fn commit(&self, group: Vec<Job>) {
        let (batches, replies): (Vec<RecordBatch>, Vec<_>) =
            group.into_iter().map(|j| (j.batch, j.reply)).unzip();
        let refusal = match (
            self.faults.check(Component::Ingest),
            self.storage.room_for(Folder::Store, 0),
        ) {
            (Err(halted), _) => Some(IngestError::Halted(halted)),
            (Ok(()), Err(no_room)) => Some(IngestError::StorageFull(no_room.to_string())),
            (Ok(()), Ok(())) => None,
        };
        if let Some(refusal) = refusal {
            for reply in replies {
                let _ = reply.send(Err(refusal.clone()));
            }
            return;
        }
        let started = Instant::now();
        let result = self
            .store
            .ingest_records(&batches, &self.policy, self.clock.now())
            .await;
        match result {
            Ok((acks, summary)) => {
                durable::failpoint::crash_point("ingest.committed");
                self.metrics
                    .committed(&summary, batches.len(), started.elapsed().as_secs_f64());
                for (reply, acks) in replies.into_iter().zip(acks) {
                    let _ = reply.send(Ok(acks));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, pushes = batches.len(), "group commit failed; nothing acknowledged");
                self.metrics
                    .failed_commits
                    .with_label_values(&[match self.store.backend() {
                        store::Backend::Sqlite => "sqlite",
                        store::Backend::Postgres => "postgres",
                    }])
                    .inc();
                let error = if e.is_storage_full() {
                    IngestError::StorageFull(e.to_string())
                } else if e.is_io_failure() {
                    IngestError::Halted(self.faults.halt(Component::Ingest, &e))
                } else {
                    IngestError::CommitFailed(e.to_string())
                };
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
