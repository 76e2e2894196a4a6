//! The staging writer pool: the blocking work of every upload (hashing a batch into a
//! window, writing a window, the flush and fsync at a chunk's end) runs as short jobs
//! on tokio's blocking threads, at most `media.writer_threads` at once gateway-wide.
//!
//! Why jobs and not a thread per upload: a thread that waits for the next batch waits
//! on the network, so a device that trickles its bytes (or thousands that do) would
//! hold threads for as long as it likes. A job only ever waits on the disk. Why
//! bounded: each job is CPU (SHA-256) or disk; more of them at once than the machine
//! has cores and disk queue only adds waiting, and the bound keeps tokio's blocking
//! threads free for the rest of the gateway.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// The gateway-wide bound on blocking staging work.
#[derive(Clone, Debug)]
pub struct WriterPool {
    permits: Arc<Semaphore>,
}

impl WriterPool {
    /// A pool that runs at most `threads` jobs at once (at least one).
    pub fn new(threads: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(threads.max(1))),
        }
    }

    /// Waits for room for one job. Cancel-safe: dropping the wait takes nothing.
    pub(crate) async fn permit(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed")
    }

    /// Runs `job` on a blocking thread, holding `permit` until it ends.
    pub(crate) fn spawn<T: Send + 'static>(
        permit: OwnedSemaphorePermit,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
    }
}
