//! Certificates issued by the fleet CA, checked the way the gateway and the agent check
//! them: rustls (WebPKI) verification, and the fields parsed back with x509-parser.

mod support;

use pki::{DeviceEku, FleetCa, PkiError, Validity, make_device_csr};
use protocol::DeviceId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::CertificateError;
use support::{common_name, der_of_pem, parse, uris, valid_for_days, verify_client, verify_server};
use time::Duration;
use x509_parser::prelude::FromDer;

fn ca() -> FleetCa {
    FleetCa::generate(valid_for_days(3650)).unwrap()
}

fn dev(id: &str) -> DeviceId {
    DeviceId::new(id).unwrap()
}

fn invalid_cert(err: rustls::Error) -> CertificateError {
    match err {
        rustls::Error::InvalidCertificate(e) => e,
        other => panic!("expected an invalid-certificate error, got {other:?}"),
    }
}

#[test]
fn device_cert_verifies_against_its_fleet_ca() {
    let ca = ca();
    let cert = ca
        .issue_device_bundle(&dev("dev-00001"), "SN-REC-00001", valid_for_days(365))
        .unwrap();
    verify_client(ca.cert_der(), &cert.cert_der).unwrap();
    assert_eq!(der_of_pem(&cert.cert_pem), cert.cert_der);
}

#[test]
fn device_cert_from_another_ca_is_refused() {
    let ours = ca();
    let theirs = ca();
    let cert = theirs
        .issue_device_bundle(&dev("dev-00001"), "SN-REC-00001", valid_for_days(365))
        .unwrap();
    let err = invalid_cert(verify_client(ours.cert_der(), &cert.cert_der).unwrap_err());
    assert!(
        matches!(
            err,
            CertificateError::UnknownIssuer | CertificateError::BadSignature
        ),
        "{err:?}"
    );
}

#[test]
fn expired_device_cert_is_refused() {
    let ca = ca();
    let now = support::now();
    let expired = Validity::new(now - Duration::days(30), now - Duration::days(1));
    let cert = ca
        .issue_device_bundle(&dev("dev-00001"), "SN-REC-00001", expired)
        .unwrap();
    let err = invalid_cert(verify_client(ca.cert_der(), &cert.cert_der).unwrap_err());
    assert!(
        matches!(
            err,
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn not_yet_valid_device_cert_is_refused() {
    let ca = ca();
    let now = support::now();
    let later = Validity::new(now + Duration::days(1), now + Duration::days(30));
    let cert = ca
        .issue_device_bundle(&dev("dev-00001"), "SN-REC-00001", later)
        .unwrap();
    let err = invalid_cert(verify_client(ca.cert_der(), &cert.cert_der).unwrap_err());
    assert!(
        matches!(
            err,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn device_cert_for_server_auth_only_is_refused_as_a_client() {
    let ca = ca();
    let id = dev("dev-00001");
    let cert = ca
        .issue_device_bundle_with(
            &id,
            "SN-REC-00001",
            valid_for_days(365),
            DeviceEku::ServerAuthOnly,
        )
        .unwrap();
    let err = invalid_cert(verify_client(ca.cert_der(), &cert.cert_der).unwrap_err());
    assert!(
        matches!(
            err,
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
        ),
        "{err:?}"
    );
    let absent = ca
        .issue_device_bundle_with(&id, "SN-REC-00001", valid_for_days(365), DeviceEku::Absent)
        .unwrap();
    assert!(
        parse(&absent.cert_der)
            .extended_key_usage()
            .unwrap()
            .is_none()
    );
}

#[test]
fn device_cert_names_the_device_and_serial_and_is_client_only() {
    let ca = ca();
    let validity = valid_for_days(365);
    let cert = ca
        .issue_device_bundle(&dev("dev-00042"), "SN-TRM-00042", validity)
        .unwrap();
    let x509 = parse(&cert.cert_der);
    assert_eq!(common_name(&x509), "SN-TRM-00042");
    assert_eq!(uris(&x509), ["urn:fieldsync:device:dev-00042"]);
    let san = x509.subject_alternative_name().unwrap().unwrap();
    assert_eq!(san.value.general_names.len(), 1, "only the device URI");
    let eku = x509.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && !eku.any && eku.other.is_empty());
    assert!(!x509.is_ca());
    assert_eq!(
        x509.validity().not_before.to_datetime(),
        validity.not_before
    );
    assert_eq!(x509.validity().not_after.to_datetime(), validity.not_after);
    assert_eq!(cert.validity, validity);
    assert_eq!(x509.issuer(), parse(ca.cert_der()).subject());
    // The device id comes back out through the shared parser.
    assert_eq!(
        DeviceId::from_uri(&uris(&x509)[0]).unwrap(),
        dev("dev-00042")
    );
}

#[test]
fn csr_signed_cert_verifies_and_carries_the_csr_key_and_device_uri() {
    let ca = ca();
    let id = dev("dev-00007");
    let csr = make_device_csr(&id, "SN-REC-00007").unwrap();
    let cert = ca
        .sign_device_csr(&csr.csr_pem, &id, "SN-REC-00007", valid_for_days(365))
        .unwrap();
    verify_client(ca.cert_der(), &cert.cert_der).unwrap();
    let x509 = parse(&cert.cert_der);
    let device_key = KeyPair::from_pem(&csr.key_pem).unwrap();
    use rcgen::PublicKeyData;
    assert_eq!(
        x509.public_key().raw,
        device_key.subject_public_key_info().as_slice()
    );
    assert_eq!(uris(&x509), ["urn:fieldsync:device:dev-00007"]);
    assert_eq!(common_name(&x509), "SN-REC-00007");
}

#[test]
fn csr_fields_other_than_the_key_are_not_copied() {
    let ca = ca();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
        .subject_alt_names
        .push(SanType::URI("urn:other:thing".try_into().unwrap()));
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();

    let id = dev("dev-00003");
    let cert = ca
        .sign_device_csr(&csr, &id, "SN-REC-00003", valid_for_days(30))
        .unwrap();
    let x509 = parse(&cert.cert_der);
    assert!(!x509.is_ca());
    assert_eq!(common_name(&x509), "SN-REC-00003");
    assert_eq!(
        x509.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .len(),
        1
    );
    assert_eq!(uris(&x509), ["urn:fieldsync:device:dev-00003"]);
    let eku = x509.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    verify_client(ca.cert_der(), &cert.cert_der).unwrap();
}

/// A CSR for a fresh RSA-2048 key, made by the `openssl` command (ring, which rcgen
/// signs with, cannot make RSA keys); the key is written to a temporary folder and
/// thrown away.
fn rsa_csr() -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=SN-RSA-1",
        ])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .output()
        .expect("this test needs the openssl command (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn csr_with_an_unaccepted_key_type_is_refused() {
    let csr = rsa_csr();
    let err = ca()
        .sign_device_csr(&csr, &dev("dev-1"), "SN-1", valid_for_days(30))
        .unwrap_err();
    assert!(matches!(err, PkiError::BadCsr { .. }), "{err}");
    assert!(
        err.to_string().contains("not accepted for devices"),
        "{err}"
    );
}

#[test]
fn fleet_ca_is_a_p256_ca_limited_to_signing_end_entities() {
    let ca = ca();
    let x509 = parse(ca.cert_der());
    let bc = x509.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = x509.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
    assert_eq!(
        x509.public_key()
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string()),
        Some("1.2.840.10045.3.1.7".to_owned()),
        "prime256v1"
    );
    assert_eq!(
        ca.fingerprint(),
        protocol::certificate_fingerprint(ca.cert_der())
    );
    assert!(!format!("{ca:?}").contains("PRIVATE"));
}

#[test]
fn gateway_cert_verifies_as_a_server_for_its_names_only() {
    let ca = ca();
    let names = ["localhost", "127.0.0.1", "::1", "gw.fleet.test"].map(String::from);
    let cert = ca.issue_gateway_cert(&names, valid_for_days(365)).unwrap();
    for name in &names {
        verify_server(ca.cert_der(), &cert.cert_der, name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let err = invalid_cert(verify_server(ca.cert_der(), &cert.cert_der, "other.test").unwrap_err());
    assert!(
        matches!(
            err,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ),
        "{err:?}"
    );
    // serverAuth only: it cannot pose as a device.
    assert!(verify_client(ca.cert_der(), &cert.cert_der).is_err());
    assert!(matches!(
        ca.issue_gateway_cert(&[], valid_for_days(1)),
        Err(PkiError::NoGatewayNames)
    ));
}

#[test]
fn a_loaded_ca_signs_certs_that_verify_against_the_original() {
    let original = ca();
    let loaded = FleetCa::load(original.cert_pem(), &original.key_pem()).unwrap();
    assert_eq!(loaded.cert_pem(), original.cert_pem());
    assert_eq!(loaded.fingerprint(), original.fingerprint());
    let cert = loaded
        .issue_device_bundle(&dev("dev-00001"), "SN-REC-00001", valid_for_days(365))
        .unwrap();
    verify_client(original.cert_der(), &cert.cert_der).unwrap();
}

#[test]
fn load_refuses_a_key_of_another_ca_and_a_non_ca_certificate() {
    let a = ca();
    let b = ca();
    let err = FleetCa::load(a.cert_pem(), &b.key_pem()).unwrap_err();
    assert!(matches!(err, PkiError::BadKey { .. }), "{err}");
    let device = a
        .issue_device_bundle(&dev("dev-1"), "SN-1", valid_for_days(1))
        .unwrap();
    let err = FleetCa::load(&device.cert_pem, &device.key_pem).unwrap_err();
    assert!(matches!(err, PkiError::BadCertificate { .. }), "{err}");
    assert!(err.to_string().contains("not a CA"), "{err}");
    assert!(FleetCa::load("not pem", &a.key_pem()).is_err());
}

#[test]
fn an_empty_validity_or_bad_serial_is_refused_before_signing() {
    let ca = ca();
    let now = support::now();
    let backwards = Validity::new(now, now - Duration::seconds(1));
    let err = ca
        .issue_device_bundle(&dev("dev-1"), "SN-1", backwards)
        .unwrap_err();
    assert!(matches!(err, PkiError::EmptyValidity { .. }), "{err}");
    let err = ca
        .issue_device_bundle(&dev("dev-1"), "SN\u{0}1", valid_for_days(1))
        .unwrap_err();
    assert!(matches!(err, PkiError::InvalidSerial { .. }), "{err}");
}

#[test]
fn issued_cert_debug_hides_the_key_and_the_key_loads_into_rustls() {
    let ca = ca();
    let cert = ca
        .issue_device_bundle(&dev("dev-1"), "SN-1", valid_for_days(1))
        .unwrap();
    assert!(!format!("{cert:?}").contains("PRIVATE KEY"));
    let key = cert.private_key_der().unwrap();
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    assert_eq!(signing.algorithm(), rustls::SignatureAlgorithm::ECDSA);
    // Each certificate gets its own random serial number.
    let again = ca
        .issue_device_bundle(&dev("dev-1"), "SN-1", valid_for_days(1))
        .unwrap();
    assert_ne!(
        parse(&cert.cert_der).raw_serial(),
        parse(&again.cert_der).raw_serial()
    );
    let _ = x509_parser::certificate::X509Certificate::from_der(&again.cert_der).unwrap();
}
