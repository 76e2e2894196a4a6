//! What goes into the certificates the fleet CA issues (gateway and device), and the
//! values handed back to callers.
//!
//! The CA decides every field: a device certificate names the device by its URI SAN
//! and its serial as CN and may only be used as a TLS client; the gateway certificate
//! may only be used as a TLS server. Nothing is copied from a CSR except its key.

use std::fmt;
use std::net::IpAddr;

use protocol::{DeviceId, certificate_fingerprint};
use rand::Rng;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{PkiError, Validity};

/// Common name of the gateway's server certificate.
pub const GATEWAY_COMMON_NAME: &str = "fieldsync gateway";

/// Names every development gateway certificate carries, so that a gateway on this
/// machine is reachable by the usual loopback spellings.
pub const DEFAULT_GATEWAY_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Longest device serial accepted: the X.520 upper bound for a common name.
pub const MAX_SERIAL_LEN: usize = 64;

/// Which extended key usage a device certificate carries.
///
/// Only [`DeviceEku::ClientAuth`] is right for a device. The others exist so that
/// gateway tests can check that a certificate which chains to the fleet CA but is not
/// meant for client authentication is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceEku {
    /// EKU extension with clientAuth only: what every real device gets.
    #[default]
    ClientAuth,
    /// EKU extension with serverAuth only: must be refused as a client certificate.
    ServerAuthOnly,
    /// No EKU extension at all. WebPKI accepts such a certificate for any purpose, so
    /// whether the gateway refuses it is up to the gateway's own check.
    Absent,
}

/// A certificate the fleet CA signed for a key it did not make (the CSR path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCert {
    /// The certificate, PEM (`CERTIFICATE`).
    pub cert_pem: String,
    /// The same certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The validity written into it.
    pub validity: Validity,
}

impl SignedCert {
    /// SHA-256 of the DER, lowercase hex: what the gateway enrolls.
    pub fn fingerprint(&self) -> String {
        certificate_fingerprint(&self.cert_der)
    }
}

/// A certificate together with the private key the tool made for it (the bundle path).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM (`CERTIFICATE`).
    pub cert_pem: String,
    /// The same certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The private key, PKCS#8 PEM (`PRIVATE KEY`). Secret: write it with mode 0600.
    pub key_pem: String,
    /// The validity written into the certificate.
    pub validity: Validity,
}

impl IssuedCert {
    /// SHA-256 of the certificate DER, lowercase hex: what the gateway enrolls.
    pub fn fingerprint(&self) -> String {
        certificate_fingerprint(&self.cert_der)
    }

    /// The private key as rustls wants it.
    pub fn private_key_der(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| PkiError::BadKey {
            what: "the issued private key".into(),
            reason: e.to_string(),
        })
    }
}

impl fmt::Debug for IssuedCert {
    /// Leaves the private key out, so that it never lands in a log by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("fingerprint", &self.fingerprint())
            .field("validity", &self.validity)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Parameters of a device certificate: CN = serial, URI SAN = the device URI.
pub(crate) fn device_params(
    device: &DeviceId,
    serial: &str,
    validity: Validity,
    eku: DeviceEku,
) -> Result<CertificateParams, PkiError> {
    check_serial(serial)?;
    validity.check(&format!("the certificate of device {device}"))?;
    let uri = device.uri().try_into().map_err(|e| {
        PkiError::sign(
            format!("put the URI of device {device} into a certificate"),
            e,
        )
    })?;
    let mut params = leaf_params(validity);
    params.distinguished_name.push(DnType::CommonName, serial);
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.extended_key_usages = match eku {
        DeviceEku::ClientAuth => vec![ExtendedKeyUsagePurpose::ClientAuth],
        DeviceEku::ServerAuthOnly => vec![ExtendedKeyUsagePurpose::ServerAuth],
        DeviceEku::Absent => Vec::new(),
    };
    Ok(params)
}

/// Parameters of the gateway's server certificate for exactly `names`.
pub(crate) fn gateway_params(
    names: &[String],
    validity: Validity,
) -> Result<CertificateParams, PkiError> {
    if names.is_empty() {
        return Err(PkiError::NoGatewayNames);
    }
    validity.check("the gateway certificate")?;
    let mut params = leaf_params(validity);
    params
        .distinguished_name
        .push(DnType::CommonName, GATEWAY_COMMON_NAME);
    for name in names {
        let san = gateway_san(name)?;
        if !params.subject_alt_names.contains(&san) {
            params.subject_alt_names.push(san);
        }
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// `DEFAULT_GATEWAY_NAMES` followed by `extra`, without repeats, in that order.
pub fn gateway_names_with_defaults(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = DEFAULT_GATEWAY_NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Checks a gateway name (IP address or DNS name, optionally a `*.` wildcard) without
/// making anything, so that a bad `--gateway-name` fails before any work starts.
pub fn check_gateway_name(name: &str) -> Result<(), PkiError> {
    gateway_san(name).map(|_| ())
}

fn gateway_san(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = || PkiError::InvalidGatewayName {
        name: name.to_owned(),
    };
    if !is_dns_name(name) {
        return Err(invalid());
    }
    Ok(SanType::DnsName(name.try_into().map_err(|_| invalid())?))
}

fn is_dns_name(name: &str) -> bool {
    let host = name.strip_prefix("*.").unwrap_or(name);
    !host.is_empty()
        && name.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Refuses serials that would make a broken or misleading common name.
pub fn check_serial(serial: &str) -> Result<(), PkiError> {
    let reason = if serial.trim().is_empty() {
        Some("it is empty")
    } else if serial.len() > MAX_SERIAL_LEN {
        Some("it is longer than 64 bytes")
    } else if serial.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if serial.trim() != serial {
        Some("it starts or ends with white space")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(PkiError::InvalidSerial {
            serial: serial.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// What every end-entity certificate shares: a random serial number (so renewing a
/// device with the same key never repeats one), no CA powers, digitalSignature only
/// (ECDSA keys sign the TLS handshake; they never encipher) and an authority key
/// identifier pointing at the fleet CA.
fn leaf_params(validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial());
    params.distinguished_name = DistinguishedName::new();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params
}

/// A positive 128-bit serial number (RFC 5280 allows up to 20 octets).
pub(crate) fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // no leading zero octet, so the length is stable
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_names_accept_hosts_and_addresses() {
        for ok in [
            "localhost",
            "gw-1.fleet.example",
            "*.fleet.example",
            "10.0.0.7",
            "fe80::1",
        ] {
            assert!(check_gateway_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-gw",
            "gw-",
            "a..b",
            "bad name",
            "gw_1",
            "*",
            "a.*.b",
            &"x".repeat(64),
        ] {
            let err = check_gateway_name(bad).unwrap_err();
            assert!(err.is_usage(), "{bad}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn default_names_come_first_without_repeats() {
        let names = gateway_names_with_defaults(&["gw.local".into(), "localhost".into()]);
        assert_eq!(names, ["localhost", "127.0.0.1", "::1", "gw.local"]);
    }

    #[test]
    fn serials_must_be_plain_short_text() {
        assert!(check_serial("SN-REC-00001").is_ok());
        for bad in ["", " ", " SN-1", "SN\n1", &"S".repeat(65)] {
            assert!(check_serial(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serial_numbers_are_random_positive_and_sixteen_bytes() {
        let a = random_serial().to_bytes();
        let b = random_serial().to_bytes();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a[0] & 0x80 == 0 && a[0] != 0);
    }
}
