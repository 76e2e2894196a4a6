//! A stolen, still-enrolled device certificate in an attacker's hands: it passes
//! admission, then announces recordings without end (each accepted one is a row and a
//! deadline the gateway follows) and opens upload chunks it feeds a byte a second, more
//! at once than a device may. The gateway must refuse past its per-device caps with
//! typed codes (counted here by code, and on its `/metrics` by reason) while the honest
//! fleet keeps its acks and uploads.
//!
//! All of it runs on one connection, as the gateway keeps one live connection per
//! device (a second one would replace the first); when the gateway closes it, the
//! attacker reconnects.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::DeviceIdentity;
use agent::transport::frames::{read_message, write_message};
use agent::transport::{TransportSettings, client_config};
use protocol::frame::FrameDecoder;
use protocol::message::{Hello, MediaKind, RecordingAnnouncement, UploadHeader};
use protocol::{Request, RequestBody, Response, ResponseBody, Sha256Hash};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{AttackCounts, DEVICE_ATTACKER, MAX_FRAME, client_endpoint, pause, request};
use crate::connect::SERVER_NAME;
use crate::machine::device_now;

/// The size every announced recording claims (never sent in full).
const CLAIMED_SIZE: u64 = 1 << 20;
/// Between two bytes of a trickled chunk.
const TRICKLE: Duration = Duration::from_secs(1);

/// Starts the stolen device: one task that connects (again whenever it is closed),
/// announces without end and keeps `slow_uploads` trickling chunks open.
pub fn spawn(
    target: SocketAddr,
    identity: Arc<DeviceIdentity>,
    slow_uploads: usize,
    counts: Arc<AttackCounts>,
    stop: &watch::Sender<bool>,
) -> Vec<JoinHandle<()>> {
    let stop = stop.subscribe();
    vec![tokio::spawn(async move {
        run(target, &identity, slow_uploads, &counts, stop).await;
    })]
}

async fn run(
    target: SocketAddr,
    identity: &DeviceIdentity,
    slow_uploads: usize,
    counts: &Arc<AttackCounts>,
    mut stop: watch::Receiver<bool>,
) {
    let endpoint = match client_endpoint(DEVICE_ATTACKER) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "stolen device: cannot bind on {DEVICE_ATTACKER}");
            return;
        }
    };
    let config = match client_config(identity, &TransportSettings::default()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "stolen device: client configuration");
            return;
        }
    };
    while !*stop.borrow() {
        let conn = match endpoint.connect_with(config.clone(), target, SERVER_NAME) {
            Ok(connecting) => connecting.await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                counts.refused(format!("connect: {e}"));
                if pause(&mut stop, Duration::from_secs(1)).await {
                    break;
                }
                continue;
            }
        };
        AttackCounts::bump(&counts.stolen_connections);
        let hello = RequestBody::Hello(Hello {
            device_time: device_now(),
            agent_version: "stolen/1".into(),
            rules_digest: None,
        });
        if let Err(e) = request(&conn, hello).await {
            counts.refused(format!("hello: {e}"));
        } else {
            let announced = Arc::new(Mutex::new(Vec::new()));
            let uploads: Vec<_> = (0..slow_uploads)
                .map(|_| {
                    tokio::spawn(trickle(
                        conn.clone(),
                        announced.clone(),
                        counts.clone(),
                        stop.clone(),
                    ))
                })
                .collect();
            announce_without_end(&conn, &announced, counts, &mut stop).await;
            for u in uploads {
                u.abort();
            }
        }
        conn.close(quinn::VarInt::from_u32(0), b"");
        if pause(&mut stop, Duration::from_millis(200)).await {
            break;
        }
    }
    endpoint.close(quinn::VarInt::from_u32(0), b"");
}

/// Announces new recordings one after another, as fast as the gateway answers, until
/// `stop` or the connection ends.
async fn announce_without_end(
    conn: &quinn::Connection,
    announced: &Mutex<Vec<Uuid>>,
    counts: &AttackCounts,
    stop: &mut watch::Receiver<bool>,
) {
    while !*stop.borrow() && conn.close_reason().is_none() {
        let id = Uuid::new_v4();
        let now = device_now();
        let announcement = RecordingAnnouncement {
            recording_id: id,
            sha256: Sha256Hash::of(id.as_bytes()),
            size: CLAIMED_SIZE,
            media: MediaKind::Video,
            started_at: now.saturating_sub(60_000),
            ended_at: now,
            case_number: None,
            officer: None,
        };
        let asked = request(conn, RequestBody::AnnounceRecording(announcement));
        let reply = tokio::select! {
            r = asked => r,
            _ = stop.changed() => return,
        };
        match reply {
            Ok(ResponseBody::Error(e)) => counts.refused(format!("{:?}", e.code)),
            Ok(_) => {
                AttackCounts::bump(&counts.announced);
                announced.lock().expect("announced lock").push(id);
            }
            Err(e) => {
                counts.refused(format!("announce: {e}"));
                return;
            }
        }
    }
}

/// Keeps one chunk open at a time, fed a byte per [`TRICKLE`], each on a recording
/// not used before; when the gateway answers (a refusal or a cut-off), starts another.
async fn trickle(
    conn: quinn::Connection,
    announced: Arc<Mutex<Vec<Uuid>>>,
    counts: Arc<AttackCounts>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() && conn.close_reason().is_none() {
        let Some(id) = announced.lock().expect("announced lock").pop() else {
            if pause(&mut stop, Duration::from_millis(100)).await {
                return;
            }
            continue;
        };
        let Ok((mut send, mut recv)) = conn.open_bi().await else {
            return;
        };
        let header = UploadHeader {
            recording_id: id,
            offset: 0,
            length: CLAIMED_SIZE,
        };
        let chunk = Request::new(RequestBody::UploadChunk(header));
        if write_message(&mut send, &chunk, MAX_FRAME).await.is_err() {
            return;
        }
        AttackCounts::bump(&counts.slow_chunks);
        let reply = read_message::<Response>(&mut recv, FrameDecoder::new(MAX_FRAME));
        tokio::pin!(reply);
        loop {
            tokio::select! {
                r = &mut reply => {
                    match r {
                        Ok(Some(Response { body: ResponseBody::Error(e), .. })) => {
                            counts.refused(format!("{:?}", e.code));
                        }
                        Ok(other) => counts.refused(format!("chunk answered: {other:?}")),
                        Err(e) => counts.refused(format!("chunk: {e}")),
                    }
                    break;
                }
                () = tokio::time::sleep(TRICKLE) => {
                    if send.write_all(&[0]).await.is_err() {
                        // The gateway stopped the stream; its reply says why.
                        continue;
                    }
                }
                _ = stop.changed() => return,
            }
        }
        if pause(&mut stop, Duration::from_millis(500)).await {
            return;
        }
    }
}
