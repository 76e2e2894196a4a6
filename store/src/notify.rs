//! The revocation broadcast: device status changes delivered to the QUIC endpoint of
//! this gateway and, with PostgreSQL, of every gateway sharing the database.
//!
//! SQLite: the committing [`WriteTx`](super::tx::WriteTx) publishes in-process after
//! the commit. PostgreSQL: `pg_notify('fieldsync_device_status', json)` inside the
//! status-change transaction (the server delivers it on commit, never for a rolled-back
//! change), and one listener task per store forwards the notifications of ANY gateway
//! into the same broadcast channel. When the listener's connection is lost it
//! reconnects with backoff and emits [`DeviceStatusEvent::Resync`], since notifications
//! sent during the outage are gone. The payload names the schema, so deployments
//! sharing one database in different schemas do not see each other's devices.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use protocol::DeviceId;
use serde::Deserialize;
use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use super::StoreError;
use super::rows::DeviceStatusEvent;

/// The PostgreSQL notification channel for device status changes.
pub(crate) const CHANNEL: &str = "fieldsync_device_status";
/// Events buffered per receiver before it lags (and must resync).
const EVENT_CAPACITY: usize = 1024;
/// First and longest wait between listener reconnection attempts.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The broadcast channel behind [`Store::device_status_events`](super::Store::device_status_events).
pub(crate) struct EventHub {
    sender: Mutex<Option<broadcast::Sender<DeviceStatusEvent>>>,
}

impl EventHub {
    pub(crate) fn new() -> Self {
        Self {
            sender: Mutex::new(Some(broadcast::channel(EVENT_CAPACITY).0)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<broadcast::Sender<DeviceStatusEvent>>> {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new receiver; after [`close`](Self::close) one that is already closed.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<DeviceStatusEvent> {
        match &*self.lock() {
            Some(sender) => sender.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// A sender for the listener task (it keeps the channel open while it runs).
    pub(crate) fn sender(&self) -> broadcast::Sender<DeviceStatusEvent> {
        match &*self.lock() {
            Some(sender) => sender.clone(),
            None => broadcast::channel(1).0,
        }
    }

    /// Publishes an event; having no receiver is not an error.
    pub(crate) fn send(&self, event: DeviceStatusEvent) {
        if let Some(sender) = &*self.lock() {
            let _ = sender.send(event);
        }
    }

    /// Drops the store's sender: receivers see `Closed` once the listener stopped too.
    pub(crate) fn close(&self) {
        self.lock().take();
    }
}

/// Sends the notification for a status change inside the caller's transaction.
pub(crate) async fn pg_notify(
    conn: &mut PgConnection,
    event: &DeviceStatusEvent,
) -> Result<(), sqlx::Error> {
    let DeviceStatusEvent::Changed {
        device_id,
        fingerprint,
        status,
    } = event
    else {
        return Ok(());
    };
    sqlx::query(
        "SELECT pg_notify($1, json_build_object('schema', current_schema(), \
         'device_id', $2::text, 'fingerprint', $3::text, 'status', $4::text)::text)",
    )
    .bind(CHANNEL)
    .bind(device_id.as_str())
    .bind(fingerprint)
    .bind(status.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Deserialize)]
struct Payload {
    schema: String,
    device_id: String,
    fingerprint: String,
    status: String,
}

/// Decodes a notification: `None` if it belongs to another schema, `Resync` if it
/// cannot be understood (something changed, but we cannot tell what).
fn decode(payload: &str, schema: &str) -> Option<DeviceStatusEvent> {
    let Ok(p) = serde_json::from_str::<Payload>(payload) else {
        tracing::warn!(payload, "undecodable device status notification");
        return Some(DeviceStatusEvent::Resync);
    };
    if p.schema != schema {
        return None;
    }
    match (DeviceId::new(p.device_id), p.status.parse()) {
        (Ok(device_id), Ok(status)) => Some(DeviceStatusEvent::Changed {
            device_id,
            fingerprint: p.fingerprint,
            status,
        }),
        _ => {
            tracing::warn!(payload, "invalid device status notification");
            Some(DeviceStatusEvent::Resync)
        }
    }
}

/// The running listener of one store.
pub(crate) struct ListenerTask {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
    pool: PgPool,
}

impl ListenerTask {
    /// Stops the task, waits for it, and closes its connection.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.handle.await {
            tracing::warn!(error = %e, "device status listener task failed");
        }
        self.pool.close().await;
    }
}

/// Subscribes (before returning, so nothing committed afterwards is missed) and spawns
/// the forwarding task. The listener has its own small pool, named
/// `fieldsync-listener/<schema>` in `pg_stat_activity`.
pub(crate) async fn start_listener(
    options: PgConnectOptions,
    schema: String,
    events: broadcast::Sender<DeviceStatusEvent>,
) -> Result<ListenerTask, StoreError> {
    let app_name = format!("fieldsync-listener/{schema}");
    // Two connections: a dropped listener returns its (dead) connection in the
    // background while the replacement connects.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .connect_lazy_with(options.application_name(&app_name));
    let listener = match subscribe(&pool).await {
        Ok(listener) => listener,
        Err(e) => {
            pool.close().await;
            return Err(e.into());
        }
    };
    let (stop, stop_rx) = oneshot::channel();
    let handle = tokio::spawn(forward(listener, pool.clone(), schema, events, stop_rx));
    Ok(ListenerTask { stop, handle, pool })
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards notifications until stopped; on a lost connection, reconnects and emits
/// `Resync`.
async fn forward(
    listener: PgListener,
    pool: PgPool,
    schema: String,
    events: broadcast::Sender<DeviceStatusEvent>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut listener = Some(listener);
    loop {
        let Some(active) = listener.as_mut() else {
            match reconnect(&pool, &mut stop).await {
                Some(fresh) => {
                    tracing::info!("device status listener reconnected; resync");
                    listener = Some(fresh);
                    let _ = events.send(DeviceStatusEvent::Resync);
                    continue;
                }
                None => return,
            }
        };
        tokio::select! {
            _ = &mut stop => return,
            received = active.try_recv() => match received {
                Ok(Some(notification)) => {
                    if let Some(event) = decode(notification.payload(), &schema) {
                        let _ = events.send(event);
                    }
                }
                // Whatever went wrong, start over on a fresh connection: the old
                // one may be half-dead, and notifications sent meanwhile are lost.
                Ok(None) => {
                    tracing::warn!("device status listener lost its connection");
                    listener = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "device status listener failed");
                    listener = None;
                }
            },
        }
    }
}

/// Tries to subscribe again, with exponential backoff, until it works or the store stops.
async fn reconnect(pool: &PgPool, stop: &mut oneshot::Receiver<()>) -> Option<PgListener> {
    let mut delay = BACKOFF_START;
    loop {
        tokio::select! {
            _ = &mut *stop => return None,
            attempt = subscribe(pool) => match attempt {
                Ok(listener) => return Some(listener),
                Err(e) => tracing::warn!(error = %e, ?delay, "device status listener cannot reconnect"),
            },
        }
        tokio::select! {
            _ = &mut *stop => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::domain::DeviceStatus;

    #[test]
    fn payloads_are_filtered_by_schema() {
        let p = r#"{"schema":"s1","device_id":"dev-1","fingerprint":"ab","status":"revoked"}"#;
        assert_eq!(
            decode(p, "s1"),
            Some(DeviceStatusEvent::Changed {
                device_id: DeviceId::new("dev-1").unwrap(),
                fingerprint: "ab".into(),
                status: DeviceStatus::Revoked,
            })
        );
        assert_eq!(decode(p, "s2"), None);
    }

    #[test]
    fn garbage_means_resync() {
        assert_eq!(decode("not json", "s1"), Some(DeviceStatusEvent::Resync));
        let bad = r#"{"schema":"s1","device_id":"a/b","fingerprint":"ab","status":"revoked"}"#;
        assert_eq!(decode(bad, "s1"), Some(DeviceStatusEvent::Resync));
    }

    #[tokio::test]
    async fn hub_closes_receivers() {
        let hub = EventHub::new();
        let mut rx = hub.subscribe();
        hub.send(DeviceStatusEvent::Resync);
        assert_eq!(rx.recv().await.unwrap(), DeviceStatusEvent::Resync);
        hub.close();
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Closed)
        ));
        assert!(matches!(
            hub.subscribe().recv().await,
            Err(broadcast::error::RecvError::Closed)
        ));
    }
}
