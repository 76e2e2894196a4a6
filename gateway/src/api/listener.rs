//! TLS for the operator listener: whether it is needed (pure), the rustls server
//! configuration with the gateway's certificate, and a listener that hands axum only
//! connections whose handshake finished.
//!
//! Handshakes run in their own tasks (at most [`MAX_HANDSHAKES`] at once, each within
//! [`HANDSHAKE_TIMEOUT`]), so a client that connects and says nothing holds up no one.
//! tokio-rustls with the ring provider, as the device endpoint uses; axum's own
//! `serve` drives the connections, so graceful shutdown is the same with or without
//! TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::HttpTls;

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; further connections wait in the TCP backlog.
pub const MAX_HANDSHAKES: usize = 256;

/// True when the operator listener on `addr` must speak TLS: on every address that
/// is not loopback (a token must never cross a network in clear text), and on
/// loopback too when configured `always`.
pub fn needs_tls(addr: SocketAddr, mode: HttpTls) -> bool {
    mode == HttpTls::Always || !addr.ip().is_loopback()
}

/// The rustls configuration of the operator listener: TLS 1.3 and 1.2 (browsers and
/// HTTP clients), HTTP/1.1, the gateway's own certificate and key.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections come out TLS-terminated.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp` and handshaking with `config`.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, incoming) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener {
            incoming,
            local,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "operator listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let handed_over = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = handed_over.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "operator TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "operator TLS handshake timed out"),
            }
        });
        if tx.is_closed() {
            return;
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(!needs_tls(addr("127.0.0.1:4480"), HttpTls::Auto));
        assert!(!needs_tls(addr("127.8.9.1:4480"), HttpTls::Auto));
        assert!(!needs_tls(addr("[::1]:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("0.0.0.0:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("[::]:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("10.1.2.3:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("[::ffff:127.0.0.1]:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("127.0.0.1:4480"), HttpTls::Always));
    }
}
