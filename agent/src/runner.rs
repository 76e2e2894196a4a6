//! The sync loop of `agent run`: connect, sync, stay connected and sync again when
//! there is something to send (or every `sync_interval_secs`), and after any failure
//! reconnect with exponential backoff and jitter. It stops when the shutdown future
//! completes, or when the gateway refuses the device for good (revoked, lost,
//! retired, not enrolled): retrying would only fill the gateway's audit log.

use std::future::Future;
use std::time::Duration;

use protocol::CloseCode;

use crate::agent::{Agent, ConnectError};
use crate::backoff::Backoff;
use crate::outbox::StoreError;
use crate::outbox::state::keys;
use crate::sync::{SyncError, SyncReport};
use crate::transport::GatewayConnection;

/// How often a connected daemon looks for new work in the outbox.
const POLL: Duration = Duration::from_millis(500);

/// Why the loop stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The gateway refused this device for good.
    #[error("the gateway refused this device ({}); not retrying", .0.reason())]
    Refused(CloseCode),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl SessionError {
    fn close_code(&self) -> Option<CloseCode> {
        match self {
            SessionError::Connect(e) => e.close_code(),
            SessionError::Sync(SyncError::Client(e)) => e.close_code(),
            SessionError::Sync(_) => None,
        }
    }
}

/// Something the loop reports as it goes (for logs and tests).
pub trait RunObserver: Send {
    /// A sync completed.
    fn synced(&mut self, _report: &SyncReport) {}
    /// A session failed; the next attempt comes after `retry_in`.
    fn failed(&mut self, _error: &str, _retry_in: Duration) {}
}

/// Logs through `tracing`.
#[derive(Debug, Default)]
pub struct LogObserver;

impl RunObserver for LogObserver {
    fn synced(&mut self, report: &SyncReport) {
        if report.records_sent > 0
            || report.checks_uploaded > 0
            || report.roster_entries > 0
            || report.recordings_stored > 0
        {
            tracing::info!(?report, "synced");
        }
    }

    fn failed(&mut self, error: &str, retry_in: Duration) {
        tracing::warn!(%error, retry_in_ms = retry_in.as_millis() as u64, "sync failed");
    }
}

impl Agent {
    /// Runs the sync loop until `shutdown` completes.
    pub async fn run(
        &self,
        shutdown: impl Future<Output = ()>,
        observer: &mut dyn RunObserver,
    ) -> Result<(), RunError> {
        let config = self.config();
        let mut backoff = Backoff::new(
            Duration::from_millis(config.backoff_initial_ms),
            Duration::from_secs(config.backoff_max_secs),
        );
        tokio::pin!(shutdown);
        loop {
            let outcome = tokio::select! {
                () = &mut shutdown => return Ok(()),
                outcome = self.session(&mut backoff, observer) => outcome,
            };
            let error = outcome.expect_err("a session only returns on failure");
            if let Some(code) = error.close_code()
                && code.is_refusal()
                && code != CloseCode::DeviceSuspended
            {
                self.outbox()
                    .set_state(keys::LAST_ERROR, &error.to_string())
                    .await?;
                return Err(RunError::Refused(code));
            }
            if let SessionError::Connect(_) = &error {
                self.outbox()
                    .set_state(keys::LAST_ERROR, &error.to_string())
                    .await?;
            }
            let delay = backoff.next_delay(rand::random::<f64>());
            observer.failed(&error.to_string(), delay);
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One connection: sync now, then whenever there is work or the interval passes.
    /// Returns only on failure.
    async fn session(
        &self,
        backoff: &mut Backoff,
        observer: &mut dyn RunObserver,
    ) -> Result<(), SessionError> {
        let mut session = self.connect().await?;
        let result = self.sync_loop(&mut session.conn, backoff, observer).await;
        session.close().await;
        result
    }

    async fn sync_loop(
        &self,
        conn: &mut GatewayConnection,
        backoff: &mut Backoff,
        observer: &mut dyn RunObserver,
    ) -> Result<(), SessionError> {
        let interval = self.config().sync_interval();
        loop {
            let report = self.sync_once(conn).await?;
            backoff.reset();
            observer.synced(&report);
            let mut waited = Duration::ZERO;
            while waited < interval {
                tokio::select! {
                    reason = conn.closed() => return Err(SyncError::Client(reason).into()),
                    () = tokio::time::sleep(POLL) => {}
                }
                waited += POLL;
                if self.has_work().await.map_err(SyncError::from)? {
                    break;
                }
            }
        }
    }

    /// True when something waits for the gateway.
    pub async fn has_work(&self) -> Result<bool, StoreError> {
        let o = self.outbox();
        Ok(o.queued_record_count().await? > 0
            || o.queued_check_count().await? > 0
            || o.pending_recordings_summary().await?.0 > 0)
    }
}
