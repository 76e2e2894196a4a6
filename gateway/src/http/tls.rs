//! TLS for the operator listener: the rustls server configuration with the gateway's
//! certificate (ring provider, as the device endpoint uses). Whether TLS is needed is
//! the setting's to say ([`crate::config::http::needs_tls`]).
//!
//! Each handshake runs in its connection's own task within
//! `http.tls_handshake_timeout_secs` (see [`super::connection`]), and counts against
//! the connection caps like any connection: there is no separate pool of handshake
//! places that silent clients could fill while others wait behind them.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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
