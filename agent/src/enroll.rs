//! Enrollment: how a device gets its identity into `<data>/identity/`.
//!
//! - The secure path: [`request`] makes the device's key and a CSR on the device (the
//!   key never leaves it); the equipment manager has the fleet CA sign the CSR and
//!   hands back a certificate file, which [`install_certificate`] checks against the
//!   pending key and the fleet CA before installing it.
//! - The bundle path: [`install_bundle`] copies a certs-dev bundle folder
//!   (`device.pem`, `device.key`, `ca.pem`), after the same checks.
//!
//! Files are written atomically; the certificate goes last, so an interrupted install
//! leaves no half identity that looks complete.

use std::path::{Path, PathBuf};

use protocol::DeviceId;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::identity::{CA_FILE, CERT_FILE, DeviceIdentity, IdentityError, KEY_FILE, device_id_of};
use durable::files::{write_atomic, write_atomic_mode};

/// Folder of the installed identity inside the data folder.
pub const IDENTITY_DIR: &str = "identity";
/// The key made by [`request`], waiting for its certificate.
pub const PENDING_KEY_FILE: &str = "pending.key";
/// The CSR made by [`request`] (a copy for the operator).
pub const CSR_FILE: &str = "request.csr";

/// Why enrollment failed. Nothing was installed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The data folder has no identity yet.
    #[error("this device is not enrolled: no identity in {0} (run `agent enroll`)")]
    NotEnrolled(PathBuf),
    /// An identity is installed already.
    #[error("an identity for device {0} is installed already; pass --force to replace it")]
    AlreadyEnrolled(String),
    /// `install` was run without a pending key from `request`.
    #[error("no pending key in {0}: run `agent enroll request` first")]
    NoPendingKey(PathBuf),
    /// The certificate was not made for the pending key.
    #[error("the certificate is not for this device's key (was it made from another CSR?)")]
    KeyMismatch,
    /// The certificate is not signed by the given fleet CA.
    #[error("the certificate is not signed by the fleet CA in {0}")]
    NotSignedByCa(String),
    /// A file or the CSR could not be made or read.
    #[error("{0}")]
    Identity(#[from] IdentityError),
    /// The CSR could not be made.
    #[error("cannot make the certificate signing request: {0}")]
    Csr(#[from] pki::PkiError),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The identity folder of a data folder.
pub fn identity_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(IDENTITY_DIR)
}

/// True when an identity is installed.
pub fn is_enrolled(data_dir: &Path) -> bool {
    identity_dir(data_dir).join(CERT_FILE).exists()
}

/// Loads the installed identity.
pub fn load(data_dir: &Path) -> Result<DeviceIdentity, EnrollError> {
    let dir = identity_dir(data_dir);
    if !dir.join(CERT_FILE).exists() {
        return Err(EnrollError::NotEnrolled(dir));
    }
    Ok(DeviceIdentity::load_bundle(&dir)?)
}

fn refuse_if_enrolled(data_dir: &Path, force: bool) -> Result<(), EnrollError> {
    if force || !is_enrolled(data_dir) {
        return Ok(());
    }
    let who = load(data_dir)
        .ok()
        .and_then(|i| i.device_id().ok())
        .map(|d| d.to_string())
        .unwrap_or_else(|| "(unreadable)".into());
    Err(EnrollError::AlreadyEnrolled(who))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EnrollError + '_ {
    move |source| EnrollError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes the device key (kept in the data folder, mode 0600) and a CSR naming
/// `device` and `serial`; returns the CSR (PEM) for the equipment manager.
pub fn request(
    data_dir: &Path,
    device: &DeviceId,
    serial: &str,
    force: bool,
) -> Result<String, EnrollError> {
    refuse_if_enrolled(data_dir, force)?;
    let csr = pki::make_device_csr(device, serial)?;
    let dir = identity_dir(data_dir);
    let key_path = dir.join(PENDING_KEY_FILE);
    write_atomic_mode(&key_path, csr.key_pem.as_bytes(), 0o600).map_err(io(&key_path))?;
    let csr_path = dir.join(CSR_FILE);
    write_atomic(&csr_path, csr.csr_pem.as_bytes()).map_err(io(&csr_path))?;
    Ok(csr.csr_pem)
}

/// Installs the certificate signed from this device's CSR, with the fleet CA that
/// signed it. Checks that the certificate carries the pending key, is signed by the
/// CA and names a device; returns the device id.
pub fn install_certificate(
    data_dir: &Path,
    cert_pem: &str,
    ca_pem: &str,
    force: bool,
) -> Result<DeviceId, EnrollError> {
    refuse_if_enrolled(data_dir, force)?;
    let dir = identity_dir(data_dir);
    let pending = dir.join(PENDING_KEY_FILE);
    let key_pem = std::fs::read_to_string(&pending)
        .map_err(|_| EnrollError::NoPendingKey(pending.clone()))?;
    let identity = DeviceIdentity::from_pem(cert_pem, &key_pem, ca_pem)?;
    let device = check(&identity, &key_pem, "the given CA file")?;
    install(&dir, cert_pem, &key_pem, ca_pem)?;
    let _ = std::fs::remove_file(&pending);
    let _ = std::fs::remove_file(dir.join(CSR_FILE));
    Ok(device)
}

/// Installs a certs-dev bundle folder (`device.pem`, `device.key`, `ca.pem`), after
/// the same checks as [`install_certificate`]; returns the device id.
pub fn install_bundle(
    data_dir: &Path,
    bundle: &Path,
    force: bool,
) -> Result<DeviceId, EnrollError> {
    refuse_if_enrolled(data_dir, force)?;
    let read = |name: &str| {
        let path = bundle.join(name);
        std::fs::read_to_string(&path).map_err(|e| {
            EnrollError::Identity(IdentityError::Pem {
                path,
                message: e.to_string(),
            })
        })
    };
    let (cert_pem, key_pem, ca_pem) = (read(CERT_FILE)?, read(KEY_FILE)?, read(CA_FILE)?);
    let identity = DeviceIdentity::from_pem(&cert_pem, &key_pem, &ca_pem)?;
    let device = check(
        &identity,
        &key_pem,
        &bundle.join(CA_FILE).display().to_string(),
    )?;
    install(&identity_dir(data_dir), &cert_pem, &key_pem, &ca_pem)?;
    Ok(device)
}

fn install(dir: &Path, cert_pem: &str, key_pem: &str, ca_pem: &str) -> Result<(), EnrollError> {
    let ca = dir.join(CA_FILE);
    write_atomic(&ca, ca_pem.as_bytes()).map_err(io(&ca))?;
    let key = dir.join(KEY_FILE);
    write_atomic_mode(&key, key_pem.as_bytes(), 0o600).map_err(io(&key))?;
    let cert = dir.join(CERT_FILE);
    write_atomic(&cert, cert_pem.as_bytes()).map_err(io(&cert))?;
    Ok(())
}

/// Checks that the leaf carries `key_pem`'s public key, is signed by one of the CA
/// certificates, and names a device.
fn check(identity: &DeviceIdentity, key_pem: &str, ca_name: &str) -> Result<DeviceId, EnrollError> {
    let leaf = &identity.chain[0];
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| IdentityError::NoDeviceId(format!("the certificate does not parse ({e})")))?;
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| IdentityError::Pem {
        path: PathBuf::from("device key"),
        message: e.to_string(),
    })?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(EnrollError::KeyMismatch);
    }
    let signed = identity.ca.iter().any(|ca: &CertificateDer<'_>| {
        x509_parser::parse_x509_certificate(ca.as_ref())
            .map(|(_, ca)| cert.verify_signature(Some(ca.public_key())).is_ok())
            .unwrap_or(false)
    });
    if !signed {
        return Err(EnrollError::NotSignedByCa(ca_name.to_owned()));
    }
    Ok(device_id_of(leaf)?)
}

/// Reads a PEM certificate file for `install_certificate`, refusing a file with no
/// certificate in it.
pub fn read_certificate_file(path: &Path) -> Result<String, EnrollError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EnrollError::Identity(IdentityError::Pem {
            path: path.to_owned(),
            message: e.to_string(),
        })
    })?;
    if CertificateDer::pem_slice_iter(text.as_bytes())
        .next()
        .is_none()
    {
        return Err(EnrollError::Identity(IdentityError::Pem {
            path: path.to_owned(),
            message: "no certificate in the file".into(),
        }));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pki::{FleetCa, Validity};

    fn ca() -> FleetCa {
        let now = time::OffsetDateTime::now_utc();
        FleetCa::generate(Validity::new(
            now - time::Duration::hours(1),
            now + time::Duration::days(30),
        ))
        .unwrap()
    }

    fn validity() -> Validity {
        let now = time::OffsetDateTime::now_utc();
        Validity::new(
            now - time::Duration::hours(1),
            now + time::Duration::days(10),
        )
    }

    #[test]
    fn a_csr_signed_by_the_fleet_ca_installs_and_names_the_device() {
        let data = tempfile::tempdir().unwrap();
        let ca = ca();
        let device = DeviceId::new("dev-00042").unwrap();
        let csr = request(data.path(), &device, "SN-42", false).unwrap();
        let signed = ca
            .sign_device_csr(&csr, &device, "SN-42", validity())
            .unwrap();
        assert!(!is_enrolled(data.path()));
        let installed =
            install_certificate(data.path(), &signed.cert_pem, ca.cert_pem(), false).unwrap();
        assert_eq!(installed, device);
        let identity = load(data.path()).unwrap();
        assert_eq!(identity.device_id().unwrap(), device);
        assert_eq!(identity.ca_fingerprint(), Some(ca.fingerprint()));
        assert!(!identity_dir(data.path()).join(PENDING_KEY_FILE).exists());
        // A second enrollment needs --force.
        let err = request(data.path(), &device, "SN-42", false).unwrap_err();
        assert!(matches!(err, EnrollError::AlreadyEnrolled(ref d) if d == "dev-00042"));
    }

    #[test]
    fn a_certificate_for_another_key_or_from_another_ca_is_refused() {
        let data = tempfile::tempdir().unwrap();
        let ca = ca();
        let device = DeviceId::new("dev-1").unwrap();
        request(data.path(), &device, "SN-1", false).unwrap();
        // Signed from a CSR made elsewhere: another key.
        let other = pki::make_device_csr(&device, "SN-1").unwrap();
        let wrong_key = ca
            .sign_device_csr(&other.csr_pem, &device, "SN-1", validity())
            .unwrap();
        let err = install_certificate(data.path(), &wrong_key.cert_pem, ca.cert_pem(), false)
            .unwrap_err();
        assert!(matches!(err, EnrollError::KeyMismatch), "{err}");
        // Right key, but we are told to trust another CA.
        let csr = request(data.path(), &device, "SN-1", false).unwrap();
        let signed = ca
            .sign_device_csr(&csr, &device, "SN-1", validity())
            .unwrap();
        let stranger = self::ca();
        let err = install_certificate(data.path(), &signed.cert_pem, stranger.cert_pem(), false)
            .unwrap_err();
        assert!(matches!(err, EnrollError::NotSignedByCa(_)), "{err}");
        assert!(!is_enrolled(data.path()), "nothing was installed");
    }

    #[test]
    fn install_without_request_says_what_to_do() {
        let data = tempfile::tempdir().unwrap();
        let ca = ca();
        let err =
            install_certificate(data.path(), ca.cert_pem(), ca.cert_pem(), false).unwrap_err();
        assert!(matches!(err, EnrollError::NoPendingKey(_)), "{err}");
        assert!(matches!(
            load(data.path()),
            Err(EnrollError::NotEnrolled(_))
        ));
    }

    #[test]
    fn a_certs_dev_bundle_installs() {
        let data = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let ca = ca();
        let device = DeviceId::new("dev-7").unwrap();
        let issued = ca.issue_device_bundle(&device, "SN-7", validity()).unwrap();
        std::fs::write(bundle.path().join(CERT_FILE), &issued.cert_pem).unwrap();
        std::fs::write(bundle.path().join(KEY_FILE), &issued.key_pem).unwrap();
        std::fs::write(bundle.path().join(CA_FILE), ca.cert_pem()).unwrap();
        assert_eq!(
            install_bundle(data.path(), bundle.path(), false).unwrap(),
            device
        );
        assert_eq!(load(data.path()).unwrap().device_id().unwrap(), device);
        // A bundle whose key belongs to another certificate is refused.
        let other = ca.issue_device_bundle(&device, "SN-7", validity()).unwrap();
        std::fs::write(bundle.path().join(KEY_FILE), &other.key_pem).unwrap();
        let err = install_bundle(data.path(), bundle.path(), true).unwrap_err();
        assert!(matches!(err, EnrollError::KeyMismatch), "{err}");
    }
}
