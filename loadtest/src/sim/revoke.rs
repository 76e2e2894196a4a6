//! `revoke-under-load`'s device side: a device revoked while it pushes watches its
//! connection close (the revocation latency, an upper bound: from sending the admin
//! request to seeing the close) and then checks that a reconnect is refused.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agent::outbox::recordings::LocalRecording;
use uuid::Uuid;

use super::device::{
    AckedRecord, Fleet, Live, Prepared, RevocationSeen, ensure_connected, ops, settle,
};
use crate::connect::SERVER_NAME;

/// How long the harness waits for a revoked device's connection to close.
const REVOCATION_WAIT: Duration = Duration::from_secs(10);

/// Revokes this device while it pushes, and watches its connection close; then
/// checks that a reconnect is refused.
pub(super) async fn revoke(
    device: &mut Prepared,
    fleet: &Fleet,
    live: &mut Live,
    acked: &mut Vec<AckedRecord>,
    stored: &mut HashMap<Uuid, LocalRecording>,
) -> RevocationSeen {
    let Some(revoker) = fleet.revoker.clone() else {
        return RevocationSeen {
            close_after: None,
            reconnect_refused: false,
            reconnect: "no revoker".into(),
        };
    };
    // The device must be connected (and greeted) when the revocation lands.
    let mut ready = false;
    for _ in 0..5 {
        if ensure_connected(device, fleet, live).await {
            let conn = live.conn.as_mut().expect("connected");
            if device.agent.hello(conn).await.is_ok() {
                ready = true;
                break;
            }
        }
    }
    if !ready {
        return RevocationSeen {
            close_after: None,
            reconnect_refused: false,
            reconnect: "could not connect before the revocation".into(),
        };
    }
    let conn = live.conn.as_mut().expect("connected");
    let quic = conn.quic().clone();
    let sent = Instant::now();
    let watcher = tokio::spawn(async move {
        let _ = tokio::time::timeout(REVOCATION_WAIT, quic.closed()).await;
        quic.close_reason().map(|_| Instant::now())
    });
    // Push while the revocation lands (the sync is expected to fail).
    let _ = device.make_record(Some(sent)).await;
    let id = device.agent.device_id().clone();
    let (revoked, _) = tokio::join!(revoker.revoke(&id), device.agent.sync_once(conn));
    if let Err(e) = revoked {
        fleet.stats.error(format!("revoke: {e}"));
    }
    let closed_at = watcher.await.ok().flatten();
    let close_after = closed_at.map(|t| t.saturating_duration_since(sent));
    if let Some(d) = close_after {
        fleet.stats.record(ops::REVOCATION_CLOSE, d);
    }
    live.conn = None;
    let addr = *fleet.addr.borrow();
    let (reconnect_refused, reconnect) = match device
        .agent
        .connect_via(fleet.endpoint(device.index), addr, SERVER_NAME)
        .await
    {
        Err(e) => (
            e.close_code().is_some_and(protocol::CloseCode::is_refusal),
            e.to_string(),
        ),
        Ok(mut conn) => {
            // The handshake may finish before the gateway's refusal arrives.
            let r = device.agent.hello(&mut conn).await;
            let refused = conn.quic().close_reason().is_some() && r.is_err();
            let word = match r {
                Ok(_) => "reconnected and was greeted".to_owned(),
                Err(e) => e.to_string(),
            };
            conn.close();
            (refused, word)
        }
    };
    settle(device, fleet, acked, stored).await;
    RevocationSeen {
        close_after,
        reconnect_refused,
        reconnect,
    }
}
