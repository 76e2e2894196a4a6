//! The device's identity: its certificate and key, and the fleet CA it trusts to
//! authenticate the gateway. Loaded from a bundle folder (`device.pem`, `device.key`,
//! `ca.pem`), as `certs-dev` or the enrollment step writes it.

use std::path::{Path, PathBuf};

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
