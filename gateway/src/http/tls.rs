//! TLS for the operator listener: whether it is needed (pure) and the rustls server
//! configuration with the gateway's certificate (ring provider, as the device
//! endpoint uses).
//!
//! Each handshake runs in its connection's own task within
//! `http.tls_handshake_timeout_secs` (see [`super::connection`]), and counts against
//! the connection caps like any connection: there is no separate pool of handshake
//! places that silent clients could fill while others wait behind them.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::HttpTls;

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
