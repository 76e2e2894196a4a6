//! TLS for the device endpoint: TLS 1.3 only, ALPN `fieldsync/1`, a client
//! certificate required and verified against the fleet CA (ring provider).
//!
//! The client-certificate verifier is wrapped so that every refusal is counted by its
//! precise cause (expired, not yet valid, wrong usage, foreign CA) and reported for
//! the audit log. Enrollment and revocation are checked after the handshake, against
//! the store (see `admission`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::sync::mpsc;

use crate::metrics::{HandshakeOutcome, Metrics};

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

/// A client certificate the handshake refused, for the audit log.
#[derive(Clone, Debug)]
pub struct RefusedCertificate {
    /// The cause, as a metrics outcome.
    pub outcome: HandshakeOutcome,
    /// The certificate's fingerprint.
    pub fingerprint: String,
    /// rustls's description of the failure.
    pub detail: String,
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

/// Builds the device endpoint's QUIC server crypto config.
pub fn server_crypto(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    metrics: Metrics,
    refusals: mpsc::Sender<RefusedCertificate>,
) -> Result<quinn::crypto::rustls::QuicServerConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca {
        roots.add(cert.clone())?;
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
    let verifier = Arc::new(CountingVerifier {
        inner,
        metrics,
        refusals,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![protocol::ALPN.to_vec()];
    config.max_early_data_size = 0;
    quinn::crypto::rustls::QuicServerConfig::try_from(config)
        .map_err(|e| TlsError::Quic(e.to_string()))
}

/// Maps a certificate error to the handshake outcome label.
pub fn classify(err: &rustls::Error) -> HandshakeOutcome {
    match err {
        rustls::Error::InvalidCertificate(e) => match e {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                HandshakeOutcome::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                HandshakeOutcome::NotYetValid
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                HandshakeOutcome::BadUsage
            }
            _ => HandshakeOutcome::BadChain,
        },
        rustls::Error::NoCertificatesPresented => HandshakeOutcome::NoCertificate,
        _ => HandshakeOutcome::BadChain,
    }
}

/// The webpki client verifier, plus counting and reporting of refusals.
#[derive(Debug)]
struct CountingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    metrics: Metrics,
    refusals: mpsc::Sender<RefusedCertificate>,
}

impl ClientCertVerifier for CountingVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let result = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(err) = &result {
            let outcome = classify(err);
            self.metrics.handshake(outcome);
            // A full queue drops the report: a flood of bad certificates must not
            // turn into a flood of audit writes. The counter above still counts it.
            let _ = self.refusals.try_send(RefusedCertificate {
                outcome,
                fingerprint: protocol::certificate_fingerprint(end_entity),
                detail: err.to_string(),
            });
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
