//! Certificate signing requests: made on the device ([`make_device_csr`]), checked by
//! the CA before it signs one (`requested_public_key`).
//!
//! The CA takes exactly one thing from a CSR, its public key, and only after the CSR's
//! signature shows the requester holds the matching private key.

use std::fmt;

use protocol::DeviceId;
use protocol::device::DEVICE_URI_PREFIX;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PublicKeyData, SanType, SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::PkiError;
use crate::leaf::check_serial;

/// A CSR and the private key it was made with, as a device (agent) makes them.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCsr {
    /// The request, PEM (`CERTIFICATE REQUEST`): sent to the CA.
    pub csr_pem: String,
    /// The private key, PKCS#8 PEM: stays on the device.
    pub key_pem: String,
}

impl fmt::Debug for DeviceCsr {
    /// Leaves the private key out, so that it never lands in a log by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCsr")
            .field("csr_pem", &self.csr_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Makes a P-256 key and a CSR naming `device` (URI SAN) and `serial` (CN).
///
/// The names are only a hint for the operator and a mix-up check: the CA sets the
/// certificate's names itself.
pub fn make_device_csr(device: &DeviceId, serial: &str) -> Result<DeviceCsr, PkiError> {
    check_serial(serial)?;
    let what = || format!("make a certificate signing request for device {device}");
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| PkiError::sign(what(), e))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, serial);
    let uri = device
        .uri()
        .try_into()
        .map_err(|e| PkiError::sign(what(), e))?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    let csr = params
        .serialize_request(&key)
        .map_err(|e| PkiError::sign(what(), e))?;
    Ok(DeviceCsr {
        csr_pem: csr.pem().map_err(|e| PkiError::sign(what(), e))?,
        key_pem: key.serialize_pem(),
    })
}

/// The public key of a CSR submitted for `device`, after checking the CSR.
pub(crate) fn requested_public_key(
    csr_pem: &str,
    device: &DeviceId,
) -> Result<SubjectPublicKeyInfo, PkiError> {
    let refuse = |reason: String| PkiError::BadCsr {
        device: device.to_string(),
        reason,
    };
    let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .map_err(|e| refuse(format!("no PEM CERTIFICATE REQUEST found ({e})")))?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| refuse(format!("it does not parse ({e})")))?;
    if !rest.is_empty() {
        return Err(refuse("trailing bytes after the request".into()));
    }
    csr.verify_signature().map_err(|e| {
        refuse(format!(
            "its signature does not verify with the key it carries ({e})"
        ))
    })?;
    if let Some(named) = named_device(&csr)
        && named != device.uri()
    {
        let named = named
            .strip_prefix(DEVICE_URI_PREFIX)
            .unwrap_or(&named)
            .to_owned();
        return Err(PkiError::CsrNamesOtherDevice {
            requested: device.to_string(),
            named,
        });
    }
    let spki_der = csr.certification_request_info.subject_pki.raw;
    let key = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| refuse(format!("its public key is not supported ({e})")))?;
    let allowed = [
        &PKCS_ECDSA_P256_SHA256,
        &PKCS_ECDSA_P384_SHA384,
        &PKCS_ED25519,
    ];
    if !allowed.contains(&key.algorithm()) {
        return Err(refuse(format!(
            "its key type {:?} is not accepted for devices (ECDSA P-256, P-384 or Ed25519)",
            key.algorithm()
        )));
    }
    Ok(key)
}

/// The first `urn:fieldsync:device:` URI among the CSR's requested SANs, if any.
fn named_device(csr: &X509CertificationRequest<'_>) -> Option<String> {
    csr.requested_extensions()?.find_map(|ext| match ext {
        ParsedExtension::SubjectAlternativeName(san) => {
            san.general_names.iter().find_map(|name| match name {
                GeneralName::URI(uri) if uri.starts_with(DEVICE_URI_PREFIX) => {
                    Some((*uri).to_owned())
                }
                _ => None,
            })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str) -> DeviceId {
        DeviceId::new(id).unwrap()
    }

    #[test]
    fn a_fresh_csr_is_accepted_with_its_own_key() {
        let csr = make_device_csr(&dev("dev-00001"), "SN-REC-00001").unwrap();
        assert!(
            csr.csr_pem
                .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
        );
        let key = requested_public_key(&csr.csr_pem, &dev("dev-00001")).unwrap();
        let device_key = KeyPair::from_pem(&csr.key_pem).unwrap();
        assert_eq!(key.der_bytes(), device_key.der_bytes());
        assert!(!format!("{csr:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn a_csr_for_another_device_is_refused() {
        let csr = make_device_csr(&dev("dev-00002"), "SN-TRM-00002").unwrap();
        let err = requested_public_key(&csr.csr_pem, &dev("dev-00001")).unwrap_err();
        assert!(
            matches!(&err, PkiError::CsrNamesOtherDevice { named, .. } if named == "dev-00002"),
            "{err}"
        );
    }

    #[test]
    fn a_tampered_csr_is_refused() {
        let csr = make_device_csr(&dev("dev-00001"), "SN-REC-00001").unwrap();
        let mut der = CertificateSigningRequestDer::from_pem_slice(csr.csr_pem.as_bytes())
            .unwrap()
            .to_vec();
        // Flip a bit in the last byte: the signature.
        let last = der.len() - 1;
        der[last] ^= 1;
        let pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
        let err = requested_public_key(&pem, &dev("dev-00001")).unwrap_err();
        assert!(
            err.to_string().contains("signature does not verify"),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_refused_with_the_device_named() {
        let err = requested_public_key("hello", &dev("dev-00009")).unwrap_err();
        assert!(matches!(err, PkiError::BadCsr { .. }));
        assert!(err.to_string().contains("dev-00009"), "{err}");
    }
}
