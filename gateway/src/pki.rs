//! The gateway's side of the PKI: load the fleet CA and the gateway's certificate, and
//! on a new machine make a development PKI (with a few enrolled device bundles) so that
//! one command gives a working gateway.

use std::path::{Path, PathBuf};

use pki::layout::{CA_CERT_FILE, ENROLLMENT_FILE, GATEWAY_CERT_FILE, GATEWAY_KEY_FILE};
use pki::{PkiError, PkiOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::{TlsError, load_certs, load_key};

/// Why the PKI cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PkiSetupError {
    /// No CA, and the configuration forbids making a development one.
    #[error(
        "no fleet CA in {0}: put ca.pem, gateway.pem and gateway.key there, or set \
         pki.auto_dev_pki = true to make a development PKI"
    )]
    Missing(PathBuf),
    /// Making the development PKI failed.
    #[error("cannot make a development PKI: {0}")]
    Make(#[from] PkiError),
    /// A PEM file cannot be loaded.
    #[error(transparent)]
    Load(#[from] TlsError),
}

/// What the device endpoint needs from the PKI.
pub struct GatewayPki {
    /// The folder it came from.
    pub dir: PathBuf,
    /// The fleet CA certificate(s) devices must chain to.
    pub ca: Vec<CertificateDer<'static>>,
    /// The fleet CA's fingerprint (advertised over mDNS).
    pub ca_fingerprint: String,
    /// The gateway's certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// The gateway's private key.
    pub key: PrivateKeyDer<'static>,
    /// True when a development PKI was made by this start: its enrollment file should
    /// be imported.
    pub made_now: bool,
}

impl GatewayPki {
    /// The enrollment file of a development PKI.
    pub fn enrollment_file(&self) -> PathBuf {
        self.dir.join(ENROLLMENT_FILE)
    }
}

/// Loads the PKI from `dir`, first making a development PKI there when there is no CA
/// and `auto_dev_pki` allows it.
pub fn prepare(
    dir: &Path,
    auto_dev_pki: bool,
    dev_devices: u32,
    now: time::OffsetDateTime,
) -> Result<GatewayPki, PkiSetupError> {
    let mut made_now = false;
    if !dir.join(CA_CERT_FILE).exists() {
        if !auto_dev_pki {
            return Err(PkiSetupError::Missing(dir.to_owned()));
        }
        let summary = pki::write_pki(dir, &PkiOptions::new(dev_devices, now))?;
        tracing::warn!(
            dir = %dir.display(),
            ca = %summary.ca_fingerprint,
            "made a DEVELOPMENT PKI; use a real fleet CA in production"
        );
        made_now = true;
    }
    let ca = load_certs(&dir.join(CA_CERT_FILE))?;
    let ca_fingerprint = protocol::certificate_fingerprint(&ca[0]);
    Ok(GatewayPki {
        dir: dir.to_owned(),
        ca_fingerprint,
        ca,
        chain: load_certs(&dir.join(GATEWAY_CERT_FILE))?,
        key: load_key(&dir.join(GATEWAY_KEY_FILE))?,
        made_now,
    })
}
