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

mod sqlite;
pub use sqlite::{
    RowOrder, SQLITE_DEVICES, SQLITE_ROWS_PER_STATEMENT, SQLITE_ROWS_PER_TX, SQLITE_TRIES,
    baseline_devices, baseline_records, fastest_sqlite, fresh_database, measure_sqlite,
};

/// Why a baseline could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// TLS set-up failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// QUIC failed.
    #[error("QUIC: {0}")]
    Quic(String),
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// File system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

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
    let now = crate::scenario::device_now();
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
    let started = Instant::now();
    let (mut send, mut recv) = conn.quic().open_bi().await.map_err(|e| quic(&e))?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        send.write_all(&chunk[..n]).await.map_err(|e| quic(&e))?;
        left -= n as u64;
    }
    send.shutdown().await.map_err(|e| quic(&e))?;
    let mut count = [0u8; 8];
    recv.read_exact(&mut count).await.map_err(|e| quic(&e))?;
    let took = started.elapsed();
    conn.close();
    if u64::from_be_bytes(count) != bytes {
        return Err(quic(&"bare server received a different byte count"));
    }
    Ok(bytes as f64 / took.as_secs_f64().max(1e-9))
}

/// `loadtest baseline`: every baseline on a fresh PKI, as a report.
pub async fn run_all(
    options: &crate::scenario::RunOptions,
    bulk_bytes: u64,
    sqlite_rows: usize,
) -> Result<crate::report::Report, crate::scenario::RunError> {
    use crate::report::{Figure, Report, Target};
    let progress = crate::progress::Progress::start("baseline");
    std::fs::create_dir_all(&options.out_dir)?;
    let pki = options.out_dir.join("pki");
    let devices = u32::try_from(options.devices)
        .map_err(|_| crate::scenario::RunError::Options("--devices is too large".into()))?;
    crate::fleet::make_pki(&pki, devices)?;
    let fleet = crate::fleet::load(&pki, options.devices)?;
    progress.set("bare server: handshakes and idle memory");
    let server = crate::scenario::start_bare_server(options, &pki).await?;
    let stats = Stats::new();
    let bare = measure_bare_connections(&server, &fleet, options.concurrency, &stats).await?;
    progress.set("bare server: bulk transfer");
    let bulk = measure_bare_bulk(&server, &fleet[0], bulk_bytes).await?;
    let _ = server.stop().await;
    progress.set("SQLite: durable multi-row inserts");
    let rows = fastest_sqlite(&options.out_dir, sqlite_rows).await?;
    progress.set("the gateway's store alone: the same rows");
    let store_alone = crate::store_alone::fastest_store(&options.out_dir, sqlite_rows).await?;
    progress.finish();
    Ok(Report {
        scenario: "baseline".into(),
        devices: fleet.len(),
        duration_secs: 0.0,
        cores: crate::scenario::cores(),
        figures: vec![
            Figure::new(
                "bare handshakes per second",
                bare.handshakes_per_sec,
                "/s",
                None,
                Target::None,
            ),
            Figure::new(
                "bare memory per idle connection",
                bare.bytes_after_exchange,
                "bytes",
                None,
                Target::None,
            ),
            Figure::new(
                "  of which before the first exchange",
                bare.bytes_after_handshake,
                "bytes",
                None,
                Target::None,
            ),
            Figure::new(
                "bare bulk goodput",
                bulk / 1_048_576.0,
                "MiB/s",
                None,
                Target::None,
            ),
            Figure::new(
                "SQLite durable inserts (1,000/tx)",
                rows,
                "rows/s",
                None,
                Target::None,
            ),
            Figure::new(
                "the gateway's store alone, same rows (no network)",
                store_alone,
                "records/s",
                Some(rows),
                Target::None,
            ),
        ],
        operations: stats.summaries(),
        errors: stats.errors(),
        throughput: stats.throughput(),
        gateway: vec![],
        failures: vec![],
    })
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
