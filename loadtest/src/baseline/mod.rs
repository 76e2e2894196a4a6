//! The baselines every fieldsync figure is divided by, measured on the same machine in
//! the same run: a bare quinn + rustls mutual-TLS server (handshakes, idle-connection
//! memory, bulk transfer) and the fastest plain sqlx SQLite insert.
//!
//! The bare server uses the same TLS choices (TLS 1.3, ring, client certificates
//! verified against the fleet CA, ALPN) and the gateway's own QUIC transport settings,
//! so a ratio measures what fieldsync adds — admission against the store, the live
//! table, hello — not a difference in configuration.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gateway::tls::{load_certs, load_key, provider};
use pki::layout::{CA_CERT_FILE, GATEWAY_CERT_FILE, GATEWAY_KEY_FILE};
use rustls::server::WebPkiClientVerifier;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::child::{ChildProcess, ready_line, stdin_closed};
use crate::connect::{Connector, connect_all};
use crate::fleet::SimDevice;
use crate::stats::Stats;

mod error;
mod sqlite;
pub use error::BaselineError;
pub use sqlite::{
    RowOrder, SQLITE_DEVICES, SQLITE_ROWS_PER_STATEMENT, SQLITE_ROWS_PER_TX, SQLITE_TRIES,
    baseline_devices, baseline_records, fastest_sqlite, fresh_database, measure_sqlite,
};

/// Runs the bare server until stdin closes (the hidden `bare-server` subcommand).
pub async fn serve_bare(pki_dir: &Path, listen: SocketAddr) -> Result<(), BaselineError> {
    let tls = |e: &dyn std::fmt::Display| BaselineError::Tls(e.to_string());
    let ca = load_certs(&pki_dir.join(CA_CERT_FILE)).map_err(|e| tls(&e))?;
    let chain = load_certs(&pki_dir.join(GATEWAY_CERT_FILE)).map_err(|e| tls(&e))?;
    let key = load_key(&pki_dir.join(GATEWAY_KEY_FILE)).map_err(|e| tls(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots.add(c).map_err(|e| tls(&e))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| tls(&e))?;
    let mut crypto = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    crypto.alpn_protocols = vec![protocol::ALPN.to_vec()];
    crypto.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(crypto).map_err(|e| tls(&e))?;
    let defaults = gateway::Config::default();
    let transport = gateway::endpoint::transport_config(&defaults.device, &defaults.limits)
        .map_err(|e| BaselineError::Quic(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport));
    let endpoint = quinn::Endpoint::server(server, listen)?;
    println!("{}", ready_line(endpoint.local_addr()?, None));
    let accept = endpoint.clone();
    let serving = tokio::spawn(async move {
        while let Some(incoming) = accept.accept().await {
            tokio::spawn(async move {
                if let Ok(conn) = incoming.await {
                    while let Ok((send, recv)) = conn.accept_bi().await {
                        tokio::spawn(sink(send, recv));
                    }
                }
            });
        }
    });
    stdin_closed().await;
    endpoint.close(0u32.into(), b"done");
    serving.abort();
    Ok(())
}

/// First byte of an exchange stream (a bulk stream starts with anything else).
const EXCHANGE_TAG: u8 = 0x01;

/// Reads a stream to its end without keeping it. An exchange (tag byte, then the reply
/// length as a big-endian u32) is answered with that many bytes; anything else with
/// the byte count.
async fn sink(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let mut total: u64 = 0;
    let mut head = Vec::with_capacity(5);
    while let Ok(Some(chunk)) = recv.read_chunk(usize::MAX, true).await {
        if head.len() < 5 {
            let take = (5 - head.len()).min(chunk.bytes.len());
            head.extend_from_slice(&chunk.bytes[..take]);
        }
        total += chunk.bytes.len() as u64;
    }
    match head[..] {
        [EXCHANGE_TAG, a, b, c, d] => {
            let reply = u32::from_be_bytes([a, b, c, d]).min(1 << 16) as usize;
            let _ = send.write_all(&vec![0x42; reply]).await;
        }
        _ => {
            let _ = send.write_all(&total.to_be_bytes()).await;
        }
    }
    let _ = send.finish();
}

/// The sizes of a real hello request frame and its welcome reply frame, so the bare
/// exchange moves the bytes a device's hello moves.
pub fn hello_frame_sizes() -> (usize, usize) {
    use protocol::message::{Hello, Welcome};
    use protocol::{Request, RequestBody, Response, ResponseBody};
    let now = crate::machine::device_now();
    let limit = u32::MAX;
    let request = Request::new(RequestBody::Hello(Hello {
        device_time: now,
        agent_version: agent::AGENT_VERSION.into(),
        // A device that has synced before names its copy of the rules ...
        rules_digest: Some(protocol::Sha256Hash::of(b"rules")),
    }));
    let reply = Response::new(ResponseBody::Welcome(Welcome {
        device_id: protocol::DeviceId::new("dev-00001").expect("valid device id"),
        gateway_time: now,
        clock_skew_ms: -12,
        limits: protocol::Limits::default(),
        roster_version: 1,
        chain: protocol::chain::ChainHead::GENESIS,
        // ... and is not sent them again.
        rules: None,
    }));
    let request = protocol::frame::encode_frame(&request, limit).map(|b| b.len());
    let reply = protocol::frame::encode_frame(&reply, limit).map(|b| b.len());
    (
        request.expect("a hello fits in a frame"),
        reply.expect("a welcome fits in a frame"),
    )
}

/// The baseline figures of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Baseline {
    /// Completed mutual-TLS handshakes per second against the bare server.
    pub handshakes_per_sec: Option<f64>,
    /// Bare server memory per idle connection, bytes.
    pub idle_bytes_per_connection: Option<f64>,
    /// Bare bulk transfer goodput, bytes per second.
    pub bulk_bytes_per_sec: Option<f64>,
    /// Durable SQLite inserts per second (1,000 rows per transaction, FULL sync).
    pub sqlite_rows_per_sec: Option<f64>,
}

/// Memory settles after a burst of handshakes (buffers freed); wait this long before
/// reading a process's resident size.
pub const SETTLE: Duration = Duration::from_secs(3);

/// What the bare server's connections cost.
#[derive(Clone, Copy, Debug)]
pub struct BareConnections {
    /// Completed handshakes per second of wall time.
    pub handshakes_per_sec: f64,
    /// Resident bytes per connection right after the handshakes.
    pub bytes_after_handshake: f64,
    /// Resident bytes per connection after each did one request/response exchange on
    /// a stream (as every gateway device does with its hello).
    pub bytes_after_exchange: f64,
}

/// Handshakes and idle memory against the bare server child.
pub async fn measure_bare_connections(
    server: &ChildProcess,
    fleet: &[SimDevice],
    concurrency: usize,
    stats: &Stats,
) -> Result<BareConnections, BaselineError> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.sample()?;
    let connector = Connector::new(server.device_addr, fleet.len())
        .map_err(|e| BaselineError::Quic(e.to_string()))?;
    let phase = connect_all(&connector, fleet, concurrency, stats, "bare_handshake").await;
    tokio::time::sleep(SETTLE).await;
    let handshaken = server.sample()?;
    let connected = phase.connected.max(1) as f64;
    let (request, reply) = hello_frame_sizes();
    futures::stream::iter(phase.connections.iter().flatten())
        .for_each_concurrent(concurrency.max(1), |conn| async move {
            let t = Instant::now();
            match exchange(conn, request, reply).await {
                Ok(()) => stats.record("bare_exchange", t.elapsed()),
                Err(e) => stats.error(format!("bare_exchange: {e}")),
            }
        })
        .await;
    tokio::time::sleep(SETTLE).await;
    let exchanged = server.sample()?;
    for conn in phase.connections.iter().flatten() {
        conn.close();
    }
    Ok(BareConnections {
        handshakes_per_sec: phase.handshakes_per_sec(),
        bytes_after_handshake: handshaken.rss_bytes.saturating_sub(before.rss_bytes) as f64
            / connected,
        bytes_after_exchange: exchanged.rss_bytes.saturating_sub(before.rss_bytes) as f64
            / connected,
    })
}

/// Sends `request` bytes on a new stream asking the bare server for `reply` bytes
/// back, and reads them: a hello's exchange without fieldsync in it.
async fn exchange(
    conn: &agent::GatewayConnection,
    request: usize,
    reply: usize,
) -> Result<(), BaselineError> {
    let quic = |e: &dyn std::fmt::Display| BaselineError::Quic(e.to_string());
    let (mut send, mut recv) = conn.quic().open_bi().await.map_err(|e| quic(&e))?;
    let mut message = vec![0x17; request.max(5)];
    message[0] = EXCHANGE_TAG;
    message[1..5].copy_from_slice(&(reply as u32).to_be_bytes());
    send.write_all(&message).await.map_err(|e| quic(&e))?;
    send.finish().map_err(|e| quic(&e))?;
    let answer = recv.read_to_end(reply + 1).await.map_err(|e| quic(&e))?;
    if answer.len() != reply {
        return Err(quic(
            &"the bare server answered a different number of bytes",
        ));
    }
    Ok(())
}

/// Bulk goodput: one device streams `bytes` to the bare server on one stream.
pub async fn measure_bare_bulk(
    server: &ChildProcess,
    device: &SimDevice,
    bytes: u64,
) -> Result<f64, BaselineError> {
    let quic = |e: &dyn std::fmt::Display| BaselineError::Quic(e.to_string());
    let connector = Connector::new(server.device_addr, 1).map_err(|e| quic(&e))?;
    let conn = connector.connect(0, device).await.map_err(|e| quic(&e))?;
    let chunk = vec![0x5au8; 64 * 1024];
    let whole = usize::try_from(bytes / chunk.len() as u64).unwrap_or(usize::MAX);
    let tail = usize::try_from(bytes % chunk.len() as u64).unwrap_or(0);
    let parts = std::iter::repeat_n(chunk.as_slice(), whole).chain([&chunk[..tail]]);
    let started = Instant::now();
    let sent = bulk_stream(&conn, parts).await;
    let took = started.elapsed();
    conn.close();
    sent?;
    Ok(bytes as f64 / took.as_secs_f64().max(1e-9))
}

/// Streams `parts` to the bare server on one stream of `conn` and checks that it read
/// every byte (it answers the count when the stream ends).
pub async fn bulk_stream<'a>(
    conn: &agent::GatewayConnection,
    parts: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), BaselineError> {
    let quic = |e: &dyn std::fmt::Display| BaselineError::Quic(e.to_string());
    let (mut send, mut recv) = conn.quic().open_bi().await.map_err(|e| quic(&e))?;
    let mut sent = 0u64;
    for part in parts {
        send.write_all(part).await.map_err(|e| quic(&e))?;
        sent += part.len() as u64;
    }
    send.shutdown().await.map_err(|e| quic(&e))?;
    let mut count = [0u8; 8];
    recv.read_exact(&mut count).await.map_err(|e| quic(&e))?;
    if u64::from_be_bytes(count) != sent {
        return Err(quic(&"bare server received a different byte count"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_exchange_moves_a_hello_and_a_welcome() {
        let (request, reply) = hello_frame_sizes();
        // A hello is a timestamp and a version; a welcome adds limits and a chain head.
        assert!((5..200).contains(&request), "{request}");
        assert!(reply > request + 32 && reply < 1024, "{reply}");
    }
}
