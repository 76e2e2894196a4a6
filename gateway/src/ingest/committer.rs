//! The committer task and its handle (see the module docs of [`crate::ingest`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use protocol::message::FieldRecord;
use protocol::message::RecordAck;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
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
    /// Bytes of records that waiting pushes may hold in all (see [`held_bytes`]);
    /// beyond that, a push is refused as [`IngestError::Busy`].
    pub queue_bytes: usize,
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
    /// The pushes waiting for the committer already hold as many bytes as the gateway
    /// allows (`ingest.queue_bytes`); nothing of this push was stored.
    #[error(
        "the gateway is busy: {waiting} bytes of pushes are waiting to be stored; nothing of this push was stored, retry later"
    )]
    Busy {
        /// The bound (`ingest.queue_bytes`).
        waiting: usize,
    },
}

/// A queued push and where to send its acks.
struct Job {
    batch: RecordBatch,
    reply: oneshot::Sender<Result<Vec<RecordAck>, IngestError>>,
    /// Its share of `ingest.queue_bytes`, returned once its group has committed (the
    /// batch is freed then).
    room: OwnedSemaphorePermit,
}

/// What a waiting push holds in memory: each record and the text it owns (the frame
/// it was decoded from is already freed). An estimate that never undercounts the
/// strings a device chose, which is what a device controls.
pub(super) fn held_bytes(batch: &RecordBatch) -> usize {
    batch
        .records
        .iter()
        .map(|r| {
            let c = &r.content;
            std::mem::size_of::<FieldRecord>()
                + c.case_number.len()
                + c.target.len()
                + c.action_kind.len()
                + c.text.len()
                + c.location.as_ref().map_or(0, String::len)
                + c.officers
                    .iter()
                    .map(|o| std::mem::size_of::<String>() + o.len())
                    .sum::<usize>()
                + c.recordings.len() * std::mem::size_of::<uuid::Uuid>()
        })
        .sum::<usize>()
        + std::mem::size_of::<RecordBatch>()
}

/// The handle through which handlers submit pushes. Cheap to share.
pub struct Committer {
    queue: mpsc::Sender<Job>,
    /// `ingest.queue_bytes`, in permits of one byte.
    room: Arc<Semaphore>,
    queue_bytes: usize,
    metrics: RecordMetrics,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    reviews_due: Arc<tokio::sync::Notify>,
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
    /// Told when a group stored a correction (its review is queued in the store).
    reviews_due: Arc<tokio::sync::Notify>,
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
        let queue_bytes = settings.queue_bytes.clamp(1, Semaphore::MAX_PERMITS);
        let room = Arc::new(Semaphore::new(queue_bytes));
        let stop = CancellationToken::new();
        let reviews_due = Arc::new(tokio::sync::Notify::new());
        let worker = Worker {
            store,
            policy: Arc::new(policy),
            clock,
            metrics: metrics.clone(),
            settings,
            faults,
            storage,
            reviews_due: reviews_due.clone(),
        };
        let task = tokio::spawn(worker.run(jobs, stop.clone()));
        Committer {
            queue,
            room,
            queue_bytes,
            metrics,
            stop,
            task: Mutex::new(Some(task)),
            reviews_due,
        }
    }

    /// Notified after a group stored a correction, whose two-officer review the store
    /// queued: the review job wakes on it rather than waiting for its next tick.
    pub fn reviews_due(&self) -> Arc<tokio::sync::Notify> {
        self.reviews_due.clone()
    }

    /// Queues a push and waits until its group has committed; returns one ack per
    /// record, in push order.
    ///
    /// The push first takes its share of `ingest.queue_bytes` ([`held_bytes`]; a push
    /// larger than the whole bound takes all of it, so it waits for an empty queue):
    /// if the waiting pushes hold too much, it is refused at once as
    /// [`IngestError::Busy`] (the device keeps its records and retries) rather than
    /// waiting, because a waiting push holds its records too.
    pub async fn submit(&self, batch: RecordBatch) -> Result<Vec<RecordAck>, IngestError> {
        let bytes = held_bytes(&batch).clamp(1, self.queue_bytes);
        let room = u32::try_from(bytes)
            .ok()
            .and_then(|n| Arc::clone(&self.room).try_acquire_many_owned(n).ok())
            .ok_or(IngestError::Busy {
                waiting: self.queue_bytes,
            });
        let room = match room {
            Ok(room) => room,
            Err(busy) => {
                self.metrics.busy.inc();
                return Err(busy);
            }
        };
        let (reply, acks) = oneshot::channel();
        self.queue
            .send(Job { batch, reply, room })
            .await
            .map_err(|_| IngestError::Stopped)?;
        acks.await.map_err(|_| IngestError::Stopped)?
    }

    /// Bytes of records the waiting pushes (and the group being committed) hold now,
    /// of `ingest.queue_bytes`.
    pub fn waiting_bytes(&self) -> usize {
        self.queue_bytes - self.room.available_permits()
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
        // The permits are held until the end of this function, with the batches.
        let mut permits = Vec::with_capacity(group.len());
        let (batches, replies): (Vec<RecordBatch>, Vec<_>) = group
            .into_iter()
            .map(|j| {
                permits.push(j.room);
                (j.batch, j.reply)
            })
            .unzip();
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
                if summary.corrections > 0 {
                    self.reviews_due.notify_one();
                }
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
