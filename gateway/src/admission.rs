//! Admission: after the TLS handshake proved the certificate chains to the fleet CA,
//! decide from the store whether this device may be served.
//!
//! The decision is a pure function of what the store says about the fingerprint, what
//! the certificate names and the gateway's clock; the IO (reading the peer certificate,
//! querying the store) happens at the edge, in the endpoint.
//!
//! The validity period is checked here too, although the TLS verifier checks it on the
//! same clock: a resumed TLS session carries the certificate of the handshake that
//! made it and is not verified again, so a certificate that expired since would
//! otherwise still be served (issue 19, point 6).

use protocol::{CloseCode, DeviceId, Millis};
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::metrics::HandshakeOutcome;
use store::DeviceRow;

/// The admission decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Serve this device.
    Admitted(DeviceRow),
    /// Close the connection with this code before any request is served.
    Refused {
        /// The application close code the device sees.
        code: CloseCode,
        /// The metrics label.
        outcome: HandshakeOutcome,
        /// What the audit log says.
        why: String,
    },
}

/// What the gateway reads from a presented device certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateFacts {
    /// The device id in its `urn:fieldsync:device:` URI SAN.
    pub device_id: Option<DeviceId>,
    /// True when it carries an extended key usage extension that lists clientAuth.
    pub client_auth: bool,
    /// Its validity period, in whole seconds since the Unix epoch (`notBefore`,
    /// `notAfter`, both included, as webpki counts them); `None` when unreadable.
    pub valid: Option<(i64, i64)>,
}

/// Decides admission from what the certificate says, the enrolled row for its
/// fingerprint (if any) and the gateway's clock.
pub fn decide(
    enrolled: Option<DeviceRow>,
    certificate: &CertificateFacts,
    now: Millis,
) -> Admission {
    let refused = |code, outcome, why: String| Admission::Refused { code, outcome, why };
    let now_secs = now.div_euclid(1000);
    match certificate.valid {
        Some((from, until)) if (from..=until).contains(&now_secs) => {}
        Some((from, until)) => {
            return refused(
                CloseCode::CertificateExpired,
                HandshakeOutcome::Expired,
                format!(
                    "certificate is valid from {from} to {until} (Unix seconds), not at {now_secs}"
                ),
            );
        }
        None => {
            return refused(
                CloseCode::UnknownDevice,
                HandshakeOutcome::BadChain,
                "certificate validity cannot be read".into(),
            );
        }
    }
    // WebPKI accepts a certificate with no EKU extension for any purpose; a device
    // certificate must say clientAuth explicitly.
    if !certificate.client_auth {
        return refused(
            CloseCode::UnknownDevice,
            HandshakeOutcome::BadUsage,
            "certificate does not carry the clientAuth extended key usage".into(),
        );
    }
    let certificate_names = certificate.device_id.as_ref();
    let Some(row) = enrolled else {
        return refused(
            CloseCode::UnknownDevice,
            HandshakeOutcome::Unknown,
            "certificate fingerprint is not enrolled".into(),
        );
    };
    if certificate_names != Some(&row.id) {
        return refused(
            CloseCode::UnknownDevice,
            HandshakeOutcome::Unknown,
            format!(
                "certificate names device {:?}, but its fingerprint is enrolled as {}",
                certificate_names.map(DeviceId::as_str),
                row.id
            ),
        );
    }
    match CloseCode::for_status(row.status) {
        None => Admission::Admitted(row),
        Some(code) => {
            let outcome = outcome_for(code);
            refused(
                code,
                outcome,
                format!("device {} is {}", row.id, row.status),
            )
        }
    }
}

/// The metrics label for a refusal close code.
pub fn outcome_for(code: CloseCode) -> HandshakeOutcome {
    match code {
        CloseCode::DeviceRevoked => HandshakeOutcome::Revoked,
        CloseCode::DeviceSuspended => HandshakeOutcome::Suspended,
        CloseCode::DeviceLost => HandshakeOutcome::Lost,
        CloseCode::DeviceRetired => HandshakeOutcome::Retired,
        _ => HandshakeOutcome::Unknown,
    }
}

/// Reads the device id and the clientAuth usage from a DER certificate.
pub fn certificate_facts(certificate: &CertificateDer<'_>) -> CertificateFacts {
    let Ok((_, cert)) = X509Certificate::from_der(certificate.as_ref()) else {
        return CertificateFacts::default();
    };
    let device_id = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                GeneralName::URI(uri) => DeviceId::from_uri(uri).ok(),
                _ => None,
            })
        });
    let client_auth = matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.client_auth);
    let validity = cert.validity();
    CertificateFacts {
        device_id,
        client_auth,
        valid: Some((
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        )),
    }
}

/// The end-entity certificate the peer presented.
pub fn peer_certificate(connection: &quinn::Connection) -> Option<CertificateDer<'static>> {
    let identity = connection.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::domain::{DeviceKind, DeviceStatus};

    fn row(status: DeviceStatus) -> DeviceRow {
        DeviceRow {
            id: DeviceId::new("dev-1").unwrap(),
            kind: DeviceKind::Recorder,
            serial: "SN-1".into(),
            agency_id: None,
            assigned_officer: None,
            status,
            certificate_fingerprint: "00".repeat(32),
            certificate_not_after: 0,
            enrolled_at: 0,
            last_seen: None,
            clock_skew_ms: None,
            status_changed_at: 0,
        }
    }

    /// Gateway time in the tests; certificates are valid an hour either side.
    const NOW: Millis = 1_790_000_000_000;

    fn facts(id: &str) -> CertificateFacts {
        CertificateFacts {
            device_id: Some(DeviceId::new(id).unwrap()),
            client_auth: true,
            valid: Some((NOW / 1000 - 3600, NOW / 1000 + 3600)),
        }
    }

    #[test]
    fn only_in_service_devices_are_admitted() {
        let id = facts("dev-1");
        assert!(matches!(
            decide(Some(row(DeviceStatus::InService)), &id, NOW),
            Admission::Admitted(_)
        ));
        for (status, code) in [
            (DeviceStatus::Revoked, CloseCode::DeviceRevoked),
            (DeviceStatus::Suspended, CloseCode::DeviceSuspended),
            (DeviceStatus::Lost, CloseCode::DeviceLost),
            (DeviceStatus::Retired, CloseCode::DeviceRetired),
        ] {
            match decide(Some(row(status)), &id, NOW) {
                Admission::Refused { code: c, .. } => assert_eq!(c, code),
                other => panic!("{status} admitted: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_or_mismatched_certificates_are_refused() {
        let other = facts("dev-2");
        let unnamed = CertificateFacts {
            device_id: None,
            ..facts("dev-1")
        };
        let no_usage = CertificateFacts {
            client_auth: false,
            ..facts("dev-1")
        };
        for decision in [
            decide(None, &other, NOW),
            decide(Some(row(DeviceStatus::InService)), &other, NOW),
            decide(Some(row(DeviceStatus::InService)), &unnamed, NOW),
            decide(Some(row(DeviceStatus::InService)), &no_usage, NOW),
        ] {
            assert!(matches!(
                decision,
                Admission::Refused {
                    code: CloseCode::UnknownDevice,
                    ..
                }
            ));
        }
    }

    #[test]
    fn a_certificate_outside_its_validity_on_the_gateway_clock_is_refused() {
        let id = facts("dev-1");
        let enrolled = || Some(row(DeviceStatus::InService));
        let hour = 3_600_000;
        // Both ends are included, to the second, as webpki counts them.
        for now in [NOW - hour, NOW + hour + 999] {
            assert!(matches!(
                decide(enrolled(), &id, now),
                Admission::Admitted(_)
            ));
        }
        for now in [NOW - hour - 1, NOW + hour + 1000, 0] {
            match decide(enrolled(), &id, now) {
                Admission::Refused { code, outcome, .. } => {
                    assert_eq!(code, CloseCode::CertificateExpired);
                    assert_eq!(outcome, HandshakeOutcome::Expired);
                }
                other => panic!("admitted at {now}: {other:?}"),
            }
        }
    }
}
