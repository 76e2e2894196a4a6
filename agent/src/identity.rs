//! The device's identity: its certificate and key, and the fleet CA it trusts to
//! authenticate the gateway. Loaded from a bundle folder (`device.pem`, `device.key`,
//! `ca.pem`), as `certs-dev` or the enrollment step writes it.

use std::path::{Path, PathBuf};

use protocol::DeviceId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Certificate file inside a bundle.
pub const CERT_FILE: &str = "device.pem";
/// Key file inside a bundle.
pub const KEY_FILE: &str = "device.key";
/// Fleet CA file inside a bundle.
pub const CA_FILE: &str = "ca.pem";

/// Why an identity cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file is missing or unreadable, or holds no usable PEM.
    #[error("cannot load {path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The certificate does not name a device (`urn:fieldsync:device:<id>` URI SAN).
    #[error("the device certificate names no device: {0}")]
    NoDeviceId(String),
}

/// A device's credentials.
pub struct DeviceIdentity {
    /// The device certificate chain (leaf first).
    pub chain: Vec<CertificateDer<'static>>,
    /// The device key.
    pub key: PrivateKeyDer<'static>,
    /// The fleet CA certificates the gateway must chain to.
    pub ca: Vec<CertificateDer<'static>>,
}

impl Clone for DeviceIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            ca: self.ca.clone(),
        }
    }
}

impl DeviceIdentity {
    /// Loads a bundle folder.
    pub fn load_bundle(dir: &Path) -> Result<Self, IdentityError> {
        Self::load(
            &dir.join(CERT_FILE),
            &dir.join(KEY_FILE),
            &dir.join(CA_FILE),
        )
    }

    /// Loads the three files.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Self, IdentityError> {
        Ok(Self {
            chain: certs(cert)?,
            key: private_key(key)?,
            ca: certs(ca)?,
        })
    }

    /// Builds an identity from PEM text (for tests and simulators).
    pub fn from_pem(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Result<Self, IdentityError> {
        let err = |what: &str, e: String| IdentityError::Pem {
            path: PathBuf::from(what),
            message: e,
        };
        let parse_certs = |what: &str, pem: &str| {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(what, e.to_string()))?;
            if certs.is_empty() {
                return Err(err(what, "no certificate".into()));
            }
            Ok(certs)
        };
        Ok(Self {
            chain: parse_certs("device certificate", cert_pem)?,
            key: PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| err("device key", e.to_string()))?,
            ca: parse_certs("fleet CA", ca_pem)?,
        })
    }
}

impl DeviceIdentity {
    /// The device id the certificate names in its `urn:fieldsync:device:<id>` URI SAN:
    /// records are sealed under it before the device ever reaches the gateway.
    pub fn device_id(&self) -> Result<DeviceId, IdentityError> {
        let leaf = self
            .chain
            .first()
            .ok_or_else(|| IdentityError::NoDeviceId("the chain is empty".into()))?;
        device_id_of(leaf)
    }

    /// The SHA-256 fingerprint of the fleet CA certificate, as the gateway's mDNS
    /// advertisement carries it.
    pub fn ca_fingerprint(&self) -> Option<String> {
        self.ca
            .first()
            .map(|ca| protocol::certificate_fingerprint(ca))
    }
}

/// The device id a certificate names in its URI SAN.
pub fn device_id_of(cert: &CertificateDer<'_>) -> Result<DeviceId, IdentityError> {
    let bad = |m: String| IdentityError::NoDeviceId(m);
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| bad(format!("it does not parse ({e})")))?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("it has no subject alternative name".into()))?;
    let uri = san
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri)
                if uri.starts_with(protocol::device::DEVICE_URI_PREFIX) =>
            {
                Some(*uri)
            }
            _ => None,
        })
        .ok_or_else(|| bad("no urn:fieldsync:device: URI".into()))?;
    DeviceId::from_uri(uri).map_err(|e| bad(e.to_string()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let err = |message: String| IdentityError::Pem {
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, IdentityError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| IdentityError::Pem {
        path: path.to_owned(),
        message: e.to_string(),
    })
}
