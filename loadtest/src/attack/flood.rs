//! Handshakes without a client certificate, at the highest rate a fixed number in
//! flight can offer: what one unauthenticated host on the internet can send at the
//! device port. Each is refused by the gateway (counted on its `/metrics` as
//! `no_certificate`, summarised in the audit log per interval); the attacker counts
//! what it saw from outside.
//!
//! In TLS 1.3 the client sends its (empty) certificate after the server's Finished,
//! so the client may see its handshake complete before the gateway refuses it. An
//! attempt whose handshake seems to complete therefore says hello: it counts as
//! refused once the connection failed or was closed by the gateway, as admitted only
//! if the gateway answered, and as unanswered if neither happened within
//! [`ANSWER_WAIT`] (a gateway too busy to get to it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;

use protocol::RequestBody;
use protocol::message::Hello;

use super::{AttackCounts, DEVICE_ATTACKER, client_endpoint, pause, request};
use crate::connect::SERVER_NAME;
use crate::machine::device_now;

/// How long one handshake, then the hello, may take before the attempt counts as
/// unanswered (the honest devices' handshake timeout).
const ANSWER_WAIT: Duration = Duration::from_secs(30);

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
    let answer = async {
        let Ok(conn) = connecting.await else {
            return Answer::Refused;
        };
        let hello = RequestBody::Hello(Hello {
            device_time: device_now(),
            agent_version: "flood/1".into(),
            rules_digest: None,
        });
        let answer = match request(&conn, hello).await {
            Ok(_) => Answer::Admitted,
            Err(_) => Answer::Refused,
        };
        conn.close(quinn::VarInt::from_u32(0), b"");
        answer
    };
    match tokio::time::timeout(ANSWER_WAIT, answer).await {
        Err(_) => AttackCounts::bump(&counts.flood_timed_out),
        Ok(Answer::Refused) => AttackCounts::bump(&counts.flood_refused),
        Ok(Answer::Admitted) => AttackCounts::bump(&counts.flood_admitted),
    }
}

/// What became of one attempt.
enum Answer {
    /// The handshake failed or the connection was closed.
    Refused,
    /// The gateway answered a request.
    Admitted,
}
