//! The pace a chunk's bytes must keep: a stalled or trickling upload holds a stream, an
//! upload slot and a share of the gateway's upload caps, so it is ended (what arrived
//! is kept) once a period passes with too few bytes.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::Stop;

/// How fast a chunk's bytes must keep coming: in every `period`, at least
/// `min_bytes_per_sec × period` bytes (and at least one). Waiting for room in the
/// writer counts as time without bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// The period (`media.stall_timeout_secs`).
    pub period: Duration,
    /// The slowest rate kept up (`media.min_upload_bytes_per_sec`).
    pub min_bytes_per_sec: u64,
}

impl Pace {
    /// Bytes that must arrive in each period.
    fn min_bytes(&self) -> u64 {
        let per_period = u128::from(self.min_bytes_per_sec) * self.period.as_millis() / 1000;
        u64::try_from(per_period).unwrap_or(u64::MAX).max(1)
    }
}

/// The pace check of one chunk: counts bytes per period; a period that ends short of
/// its minimum is a stall.
pub(super) struct Pacer {
    pace: Pace,
    timer: Pin<Box<Sleep>>,
    /// Bytes that arrived in the current period.
    pub(super) bytes: u64,
}

impl Pacer {
    pub(super) fn new(pace: Pace) -> Self {
        Self {
            pace,
            timer: Box::pin(tokio::time::sleep(pace.period)),
            bytes: 0,
        }
    }

    /// Waits for `work` unless the chunk is stopped, or a period ends short of its
    /// minimum, first. `stopped` must not be polled again after it fired.
    pub(super) async fn guard<T>(
        &mut self,
        work: impl Future<Output = T>,
        stopped: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> Result<T, Stop> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                () = stopped.as_mut() => return Err(Stop::Cancelled),
                () = self.timer.as_mut() => {
                    if self.bytes < self.pace.min_bytes() {
                        return Err(Stop::Stalled);
                    }
                    self.bytes = 0;
                    let next = Instant::now() + self.pace.period;
                    self.timer.as_mut().reset(next);
                }
                out = &mut work => return Ok(out),
            }
        }
    }
}
