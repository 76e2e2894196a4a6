//! Enrollment by CSR: the CA's check of a device's certificate signing request, then
//! issuance (`FleetCa::sign_device_csr`, what the admin API's `enroll-csr` runs).

use std::sync::OnceLock;

use pki::{FleetCa, Validity, make_device_csr};
use protocol::DeviceId;
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use time::macros::datetime;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::Outcome;

/// The device every fuzzed CSR is submitted for.
pub const CSR_DEVICE: &str = "dev-00001";

/// The PEM label of a CSR.
const CSR_LABEL: &str = "CERTIFICATE REQUEST";

/// One CA for the whole run: making a key per input would measure key generation.
fn fleet_ca() -> &'static FleetCa {
    static CA: OnceLock<FleetCa> = OnceLock::new();
    CA.get_or_init(|| FleetCa::generate(validity()).expect("a development CA for the fuzz target"))
}

/// Fixed dates: the target never reads a clock.
fn validity() -> Validity {
    Validity::new(
        datetime!(2026-01-01 00:00:00 UTC),
        datetime!(2027-01-01 00:00:00 UTC),
    )
}

/// Signs `data` as a CSR for [`CSR_DEVICE`]: text beginning with `-----BEGIN` is taken
/// as the PEM an operator uploads; anything else as the DER inside it (wrapped in PEM
/// here, so the fuzzer works on the ASN.1 rather than on base64). A certificate is
/// issued only for a CSR whose signature verifies, and it carries exactly the CSR's
/// public key.
pub fn enrollment_csr(data: &[u8]) -> Outcome {
    let pem_text = if data.starts_with(b"-----BEGIN") {
        match std::str::from_utf8(data) {
            Ok(text) => text.to_owned(),
            // The admin API takes JSON: a CSR that is not UTF-8 never reaches the CA.
            Err(_) => return Outcome::Refused,
        }
    } else {
        pem::encode(&pem::Pem::new(CSR_LABEL, data.to_vec()))
    };
    match fleet_ca().sign_device_csr(&pem_text, &device(CSR_DEVICE), "SN-FUZZ-00001", validity()) {
        Ok(signed) => {
            assert_eq!(
                issued_key(signed.cert_der.as_ref()),
                requested_key(&pem_text),
                "the certificate carries the CSR's public key"
            );
            Outcome::Accepted
        }
        Err(e) => {
            assert!(!e.to_string().is_empty(), "a refusal says why");
            Outcome::Refused
        }
    }
}

/// Seeds made fresh for every run (`fuzz/run` writes them to its untracked work
/// corpus; the replay test passes them through [`enrollment_csr`]): CSRs are key
/// material the PKI generates, so none is committed. Each is named as a committed seed
/// is, `valid-*` or `invalid-*` after what the target must make of it.
pub fn generated_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let ours = make_device_csr(&device(CSR_DEVICE), "SN-REC-00001").expect("a CSR");
    let der = CertificateSigningRequestDer::from_pem_slice(ours.csr_pem.as_bytes())
        .expect("a CSR")
        .as_ref()
        .to_vec();
    let other = make_device_csr(&device("dev-00002"), "SN-REC-00002").expect("a CSR");
    let mut tampered = der.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    vec![
        ("valid-csr.pem", ours.csr_pem.into_bytes()),
        ("valid-csr.der", der),
        (
            "invalid-names-another-device.pem",
            other.csr_pem.into_bytes(),
        ),
        ("invalid-bad-signature.der", tampered),
    ]
}

fn device(id: &str) -> DeviceId {
    DeviceId::new(id).expect("a valid device id")
}

/// A public key as (algorithm, parameters, key bits): the same key compares equal
/// whatever DER spelling the CSR used for it.
type Key = (String, Option<Vec<u8>>, Vec<u8>);

fn key_of(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Key {
    (
        spki.algorithm.algorithm.to_id_string(),
        spki.algorithm.parameters.as_ref().map(|p| p.data.to_vec()),
        spki.subject_public_key.data.to_vec(),
    )
}

fn issued_key(cert_der: &[u8]) -> Key {
    let (_, cert) = X509Certificate::from_der(cert_der).expect("an issued certificate parses");
    key_of(&cert.tbs_certificate.subject_pki)
}

/// The CSR's public key, found in the PEM as the CA finds it.
fn requested_key(csr_pem: &str) -> Key {
    let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .expect("an accepted CSR is PEM");
    let (_, csr) =
        X509CertificationRequest::from_der(der.as_ref()).expect("an accepted CSR parses");
    key_of(&csr.certification_request_info.subject_pki)
}
