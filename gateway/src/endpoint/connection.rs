//! One driver per connection: finish the handshake, admit the device against the
//! store, then serve one request per bidirectional stream until the connection ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use protocol::frame::FrameDecoder;
use protocol::{CloseCode, Request, Response, ResponseBody};
use tracing::Instrument;

use super::frames::{ReadError, read_message, write_message};
use crate::admission::{Admission, certificate_facts, decide, peer_certificate};
use crate::handlers::{ConnectionContext, dispatch};
use crate::live::close;
use crate::metrics::HandshakeOutcome;
use crate::state::GatewayState;

/// How long a device may take to send a request's frame once it opened the stream.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a written reply may take to reach the device before its request ends.
const REPLY_DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Malformed requests tolerated on one connection before it is closed.
const MAX_PROTOCOL_ERRORS: u32 = 8;

/// Completes the handshake of one incoming connection and serves it.
pub(super) async fn handle_incoming(state: Arc<GatewayState>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let connection = match incoming.accept() {
        Ok(connecting) => connecting.await,
        Err(e) => Err(e),
    };
    match connection {
        Ok(connection) => admit_and_serve(state, connection).await,
        Err(err) => handshake_failed(&state, remote, &err),
    }
}

/// Counts a failed handshake by its reason and, when it was a refusal, notes it for the
/// audit log's next summary. Nothing here waits for the store: an outsider can make
/// thousands of these a second (issue 19).
fn handshake_failed(state: &GatewayState, remote: SocketAddr, err: &quinn::ConnectionError) {
    let outcome = crate::tls::refusal_reason(err).unwrap_or(HandshakeOutcome::Failed);
    state.metrics.handshake(outcome);
    // Debug, not info: a flood of refusals must not become a flood of log lines either;
    // the metrics and the audit summaries count them.
    tracing::debug!(%remote, error = %err, outcome = outcome.as_str(), "handshake failed");
    if outcome != HandshakeOutcome::Failed {
        state
            .refusals
            .note(outcome, &remote.to_string(), state.clock.now());
    }
}

async fn admit_and_serve(state: Arc<GatewayState>, connection: quinn::Connection) {
    let remote = connection.remote_address();
    let Some(certificate) = peer_certificate(&connection) else {
        // rustls requires a client certificate, so this cannot happen; refuse anyway.
        close(&connection, CloseCode::UnknownDevice);
        state.metrics.handshake(HandshakeOutcome::NoCertificate);
        return;
    };
    let digest = protocol::Sha256Hash::of(&certificate);
    let fingerprint = digest.to_hex();
    let facts = certificate_facts(&certificate);
    // Register before reading the store: a revocation committed after the read
    // below still finds this connection in the table and closes it.
    let guard = facts
        .device_id
        .clone()
        .map(|id| state.live.register(id, digest, connection.clone()));
    let enrolled = match state.store.device_by_fingerprint(&fingerprint).await {
        Ok(row) => row,
        Err(e) => {
            tracing::error!(error = %e, "store unavailable during admission");
            close(&connection, CloseCode::GoingAway);
            return;
        }
    };
    let device = match decide(enrolled, &facts, state.clock.now()) {
        Admission::Admitted(device) => device,
        Admission::Refused { code, outcome, why } => {
            close(&connection, code);
            state.metrics.handshake(outcome);
            state
                .metrics
                .closed
                .with_label_values(&[code.reason()])
                .inc();
            tracing::info!(%remote, %fingerprint, %why, "device refused");
            state.refusals.note(
                outcome,
                &format!("{remote} {fingerprint}"),
                state.clock.now(),
            );
            return;
        }
    };
    state.metrics.handshake(HandshakeOutcome::Ok);
    state.metrics.live_connections.inc();
    // One live connection per device: the newest admitted one stays.
    let replaced = guard
        .as_ref()
        .map_or(0, crate::live::LiveGuard::replace_older);
    if replaced > 0 {
        state
            .metrics
            .closed
            .with_label_values(&[CloseCode::Replaced.reason()])
            .inc_by(replaced as u64);
        tracing::info!(device = %device.id, %remote, replaced, "a newer connection replaced the device's older one");
    }
    // One copy of the id for the live table and the context (decide checked they match).
    let device_id = match facts.device_id {
        Some(id) if id == device.id => id,
        _ => device.id,
    };
    tracing::info!(device = %device_id, %remote, "device connected");
    // Serve on a task of its own and let this one end: the handshake's and the
    // admission's futures (a store query's is several KiB) would otherwise stay
    // allocated inside every idle device's task for as long as it is connected.
    let ctx = Arc::new(ConnectionContext::new(device_id));
    let connections = state.connections.clone();
    connections.spawn(serve(state, connection, ctx, guard));
}

/// Accepts request streams until the connection ends.
///
/// This task is what every idle device costs, so it waits on nothing but the next
/// stream: shutdown does not wake it. Once the gateway is shutting down it refuses new
/// streams; the gateway waits for the requests in flight and then closes every
/// connection with "going away" (`RunningGateway::shutdown`), which ends this loop.
/// It holds no tracing span either (a span's formatted fields live as long as it
/// does): each request gets its own.
async fn serve(
    state: Arc<GatewayState>,
    connection: quinn::Connection,
    ctx: Arc<ConnectionContext>,
    guard: Option<crate::live::LiveGuard>,
) {
    loop {
        let (send, mut recv) = match connection.accept_bi().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::info!(device = %ctx.device_id, reason = %e, "device disconnected");
                break;
            }
        };
        if state.shutdown.is_cancelled() {
            // Not served: the device sends it again after it reconnects.
            let _ = recv.stop(quinn::VarInt::from_u32(CloseCode::GoingAway.to_u32()));
            continue;
        }
        let span = tracing::info_span!("device", id = %ctx.device_id);
        let task = handle_stream(state.clone(), connection.clone(), ctx.clone(), send, recv);
        state.tasks.spawn(task.instrument(span));
    }
    state.metrics.live_connections.dec();
    drop(guard);
}

/// Serves one request: read its frame, dispatch it, write the reply.
async fn handle_stream(
    state: Arc<GatewayState>,
    connection: quinn::Connection,
    ctx: Arc<ConnectionContext>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let started = Instant::now();
    let max_frame = state.config.limits.max_frame_bytes;
    let read = tokio::time::timeout(
        REQUEST_READ_TIMEOUT,
        read_message::<Request, _>(&mut recv, FrameDecoder::new(max_frame)),
    )
    .await;
    let (kind, response) = match read {
        Ok(Ok(Some(request))) => {
            let kind = request.body.kind();
            // An upload chunk's raw bytes follow its frame on this stream, so its
            // handler reads them from `recv`; every other request is its frame alone.
            // The handlers' futures are boxed (here and in `dispatch`): inline they made
            // every request task 4,272 bytes, and freeing that between the small
            // allocations a hello leaves behind cost every idle device ~0.8 KB of
            // resident memory.
            let served = match request.body {
                protocol::RequestBody::UploadChunk(header) => {
                    Box::pin(crate::handlers::upload(&state, &ctx, header, &mut recv)).await
                }
                body => dispatch(&state, &ctx, body).await,
            };
            let body = match served {
                Ok(body) => body,
                Err(err) => {
                    if let crate::handlers::HandlerError::Store(e) = &err {
                        tracing::error!(error = %e, kind, "request failed in the store");
                    }
                    ResponseBody::Error(err.reply())
                }
            };
            (kind, Response::new(body))
        }
        Ok(Ok(None) | Err(ReadError::Stream(_))) => return,
        Ok(Err(ReadError::Frame(err))) => {
            let count = ctx.protocol_errors.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::info!(error = %err, count, "malformed request");
            if count >= MAX_PROTOCOL_ERRORS {
                close(&connection, CloseCode::ProtocolViolation);
                state
                    .metrics
                    .closed
                    .with_label_values(&[CloseCode::ProtocolViolation.reason()])
                    .inc();
                return;
            }
            ("malformed", Response::error(err.code(), err.to_string()))
        }
        Err(_) => (
            "timeout",
            Response::error(
                protocol::ErrorCode::MalformedMessage,
                "request frame not received in time",
            ),
        ),
    };
    let outcome = match &response.body {
        ResponseBody::Error(e) => format!("{:?}", e.code),
        _ => "ok".to_owned(),
    };
    if let Err(e) = write_message(&mut send, &response, max_frame).await {
        tracing::debug!(error = %e, "reply not delivered");
    }
    let _ = send.finish();
    state
        .metrics
        .requests
        .with_label_values(&[kind, &outcome])
        .inc();
    state
        .metrics
        .request_seconds
        .with_label_values(&[kind])
        .observe(started.elapsed().as_secs_f64());
    // A written reply is only queued. The request ends when the device has it, so
    // that shutdown, which waits for requests and then closes every connection
    // (discarding what is queued), never drops a reply. (Not in the latency above:
    // that is the gateway's time to answer.)
    let _ = tokio::time::timeout(REPLY_DELIVERY_TIMEOUT, send.stopped()).await;
    // Test builds: stop once the device has its acks or its "stored".
    durable::failpoint::crash_point(match &response.body {
        ResponseBody::RecordAcks(_) => "reply.acks_delivered",
        ResponseBody::RecordingStored(_) => "reply.stored_delivered",
        _ => "reply.delivered",
    });
}
