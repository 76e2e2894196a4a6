//! Helpers shared by the integration tests: rustls verification the way the gateway
//! and the agent do it, certificate parsing, and folder snapshots.
//!
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use pki::Validity;

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Valid from a day ago for `days` more days.
pub(crate) fn valid_for_days(days: i64) -> Validity {
    let now = now();
    Validity::new(now - Duration::days(1), now + Duration::days(days))
}

fn roots(ca: &CertificateDer<'_>) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone().into_owned())
        .expect("the CA certificate is accepted as a root");
    Arc::new(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the gateway does with a device's certificate during the handshake.
pub(crate) fn verify_client(
    ca: &CertificateDer<'_>,
    cert: &CertificateDer<'_>,
) -> Result<(), rustls::Error> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
        .build()
        .expect("a client verifier with one root builds");
    verifier
        .verify_client_cert(cert, &[], UnixTime::now())
        .map(|_| ())
}

/// What the agent does with the gateway's certificate during the handshake.
pub(crate) fn verify_server(
    ca: &CertificateDer<'_>,
    cert: &CertificateDer<'_>,
    name: &str,
) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca), provider())
        .build()
        .expect("a server verifier with one root builds");
    let name = ServerName::try_from(name.to_owned()).expect("a valid server name");
    verifier
        .verify_server_cert(cert, &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

pub(crate) fn der_of_pem(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
}

pub(crate) fn der_of_file(path: &Path) -> CertificateDer<'static> {
    der_of_pem(&fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

pub(crate) fn parse<'a>(der: &'a CertificateDer<'_>) -> X509Certificate<'a> {
    let (rest, cert) = X509Certificate::from_der(der).expect("X.509 certificate");
    assert!(rest.is_empty(), "trailing bytes after the certificate");
    cert
}

pub(crate) fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .expect("a CN")
        .as_str()
        .expect("a UTF-8 CN")
        .to_owned()
}

/// The URI SANs of a certificate.
pub(crate) fn uris(cert: &X509Certificate<'_>) -> Vec<String> {
    let san = cert.subject_alternative_name().expect("one SAN extension");
    san.map(|ext| {
        ext.value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::URI(u) => Some((*u).to_owned()),
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Every file under `dir`, relative path to contents.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(dir).unwrap().to_owned(),
                    fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

/// Names of the entries directly in `dir`, sorted.
pub(crate) fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
