//! Revocation enforcement: closes the live connections of devices whose status stops
//! admitting them, as the store reports changes (from this gateway or, on PostgreSQL,
//! any other). After missed notifications (a resync, or a receiver that lagged) every
//! live connection's enrollment is read again.

use std::sync::Arc;

use prometheus::IntCounterVec;
use protocol::CloseCode;
use store::{DeviceStatusEvent, Store};
use tokio::sync::broadcast;

use crate::live::LiveConnections;

/// Runs until the store's events end; `closed` counts connections closed, by reason.
pub async fn run(
    mut events: broadcast::Receiver<DeviceStatusEvent>,
    live: Arc<LiveConnections>,
    store: Store,
    closed: IntCounterVec,
) {
    loop {
        match events.recv().await {
            Ok(DeviceStatusEvent::Changed {
                device_id, status, ..
            }) => {
                if let Some(code) = CloseCode::for_status(status) {
                    let n = live.close_device(&device_id, code);
                    if n > 0 {
                        closed.with_label_values(&[code.reason()]).inc_by(n as u64);
                        tracing::info!(device = %device_id, %status, closed = n, "closed a device's live connections");
                    }
                }
            }
            Ok(DeviceStatusEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                recheck_live_connections(&live, &store, &closed).await;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Re-reads every live connection's enrollment and closes those no longer admitted
/// (after missed notifications).
async fn recheck_live_connections(live: &LiveConnections, store: &Store, closed: &IntCounterVec) {
    for connection in live.snapshot() {
        match store
            .device_by_fingerprint(&connection.fingerprint.to_hex())
            .await
        {
            Ok(row) => {
                let code = match row {
                    None => Some(CloseCode::UnknownDevice),
                    Some(row) => CloseCode::for_status(row.status),
                };
                if let Some(code) = code {
                    crate::live::close(&connection.connection, code);
                    closed.with_label_values(&[code.reason()]).inc();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-check live connections; will retry on the next resync");
                return;
            }
        }
    }
}
