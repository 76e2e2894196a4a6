//! Handshakes without a client certificate, at the highest rate a fixed number in
//! flight can offer: what one unauthenticated host on the internet can send at the
//! device port. Each is refused by the gateway (counted on its `/metrics` as
//! `no_certificate`, summarised in the audit log per interval); the attacker counts
//! what it saw from outside.
//!
//! In TLS 1.3 the client sends its (empty) certificate after the server's Finished,
//! so the client may see its handshake complete before the gateway refuses it; an
//! attempt therefore counts as refused once the connection failed or was closed by the
//! gateway, and as admitted if it is still open after [`CLOSE_WAIT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;

use super::{AttackCounts, DEVICE_ATTACKER, client_endpoint, pause};
use crate::connect::SERVER_NAME;

/// How long one handshake may take before it counts as unanswered.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);
/// How long a connection the client thinks is up may stay open before the attempt
/// counts as admitted.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A client configuration that trusts the fleet CA (so the gateway's certificate is
/// accepted, as an attacker who read it off the wire would) and offers no certificate.
pub fn no_certificate_config(
    ca: &[CertificateDer<'static>],
) -> Result<quinn::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots.add(c.clone()).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// Floods `target` with `in_flight` handshakes at a time until `stop`.
pub async fn run(
    target: SocketAddr,
    ca: Vec<CertificateDer<'static>>,
    in_flight: usize,
    counts: Arc<AttackCounts>,
    stop: watch::Receiver<bool>,
) {
    let (endpoint, config) = match (client_endpoint(DEVICE_ATTACKER), no_certificate_config(&ca)) {
        (Ok(e), Ok(c)) => (e, c),
        (Err(e), _) => {
            tracing::error!(error = %e, "flood: cannot bind a client socket on {DEVICE_ATTACKER}");
            return;
        }
        (_, Err(e)) => {
            tracing::error!(error = %e, "flood: cannot build the client configuration");
            return;
        }
    };
    let workers = (0..in_flight.max(1)).map(|_| {
        let (endpoint, config, counts, mut stop) = (
            endpoint.clone(),
            config.clone(),
            counts.clone(),
            stop.clone(),
        );
        async move {
            while !*stop.borrow() {
                let attempt = attempt(&endpoint, &config, target, &counts);
                tokio::select! {
                    () = attempt => {}
                    _ = stop.changed() => break,
                }
            }
        }
    });
    futures::future::join_all(workers).await;
    endpoint.close(quinn::VarInt::from_u32(0), b"");
    let mut stop = stop;
    // Let the closes go out; the endpoint is dropped afterwards.
    let _ = pause(&mut stop, Duration::from_millis(100)).await;
}

async fn attempt(
    endpoint: &quinn::Endpoint,
    config: &quinn::ClientConfig,
    target: SocketAddr,
    counts: &AttackCounts,
) {
    AttackCounts::bump(&counts.flood_attempts);
    let connecting = match endpoint.connect_with(config.clone(), target, SERVER_NAME) {
        Ok(c) => c,
        Err(e) => {
            // Local: the endpoint cannot start another connection.
            tracing::warn!(error = %e, "flood: connect");
            AttackCounts::bump(&counts.flood_timed_out);
            tokio::time::sleep(Duration::from_millis(10)).await;
            return;
        }
    };
    match tokio::time::timeout(HANDSHAKE_WAIT, connecting).await {
        Err(_) => AttackCounts::bump(&counts.flood_timed_out),
        Ok(Err(_)) => AttackCounts::bump(&counts.flood_refused),
        Ok(Ok(conn)) => match tokio::time::timeout(CLOSE_WAIT, conn.closed()).await {
            Ok(_) => AttackCounts::bump(&counts.flood_refused),
            Err(_) => {
                AttackCounts::bump(&counts.flood_admitted);
                conn.close(quinn::VarInt::from_u32(0), b"");
            }
        },
    }
}
