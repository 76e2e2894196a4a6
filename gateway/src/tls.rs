//! TLS for the device endpoint: TLS 1.3 only, ALPN `fieldsync/1`, a client
//! certificate required and verified against the fleet CA (ring provider).
//!
//! A refused handshake is classified by the TLS alert it ended with
//! ([`refusal_reason`]), where the endpoint also knows the peer's address; enrollment,
//! revocation and (for resumed sessions) validity are checked after the handshake, in
//! `admission`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::AlertDescription;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::time_provider::TimeProvider;

use crate::metrics::HandshakeOutcome;
use clock::SharedClock;

/// Why the TLS set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("cannot load {path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier cannot be built (no usable CA).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// quinn refused the rustls configuration.
    #[error("QUIC TLS configuration: {0}")]
    Quic(String),
}

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("no certificate in the file".into()));
    }
    Ok(certs)
}

/// Reads a private key from a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The ring crypto provider every fieldsync TLS config uses (no aws-lc, no cmake).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the device endpoint's QUIC server crypto config. Certificates are checked
/// against `clock`, the gateway's clock, as admission checks resumed sessions
/// (`admission::check_validity`), so both say the same about the same certificate.
pub fn server_crypto(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    clock: SharedClock,
) -> Result<quinn::crypto::rustls::QuicServerConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca {
        roots.add(cert.clone())?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
    let mut config =
        rustls::ServerConfig::builder_with_details(provider(), Arc::new(GatewayTime(clock)))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![protocol::ALPN.to_vec()];
    config.max_early_data_size = 0;
    quinn::crypto::rustls::QuicServerConfig::try_from(config)
        .map_err(|e| TlsError::Quic(e.to_string()))
}

/// The gateway's clock, as rustls asks for the time.
struct GatewayTime(SharedClock);

impl std::fmt::Debug for GatewayTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayTime")
    }
}

impl TimeProvider for GatewayTime {
    fn current_time(&self) -> Option<UnixTime> {
        let secs = u64::try_from(self.0.now() / 1000).ok()?;
        Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            secs,
        )))
    }
}

/// Why a handshake that the TLS layer ended was refused, from the TLS alert quinn
/// reports (`0x100 + alert`), or `None` when it was not a refusal (a timeout, a
/// transport error, a peer that went away).
///
/// The alert is what rustls derives from the verifier's error, so it names the cause
/// without parsing messages; it cannot tell "expired" from "not valid yet" (TLS sends
/// `certificate_expired` for both: "expired or not currently valid"), so both count as
/// expired.
pub fn refusal_reason(err: &quinn::ConnectionError) -> Option<HandshakeOutcome> {
    let quinn::ConnectionError::TransportError(e) = err else {
        return None;
    };
    let code = u64::from(e.code);
    let alert = code.checked_sub(0x100).filter(|a| *a <= 0xff)?;
    Some(match AlertDescription::from(alert as u8) {
        AlertDescription::CertificateRequired => HandshakeOutcome::NoCertificate,
        AlertDescription::CertificateExpired => HandshakeOutcome::Expired,
        AlertDescription::UnsupportedCertificate => HandshakeOutcome::BadUsage,
        AlertDescription::NoApplicationProtocol => HandshakeOutcome::WrongAlpn,
        AlertDescription::UnknownCA
        | AlertDescription::BadCertificate
        | AlertDescription::CertificateUnknown
        | AlertDescription::CertificateRevoked
        | AlertDescription::DecryptError
        | AlertDescription::AccessDenied => HandshakeOutcome::BadChain,
        _ => return None,
    })
}
