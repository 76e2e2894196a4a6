//! The fleet CA: made once per deployment, it signs the gateway's server certificate
//! and every device certificate, and nothing else.
//!
//! It is ECDSA P-256 and may sign only end-entity certificates (path length 0), so a
//! leaked device key can never be turned into a certificate authority.

use std::fmt;

use protocol::certificate_fingerprint;
use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::leaf::{self, IssuedCert, SignedCert};
use crate::{PkiError, Validity};

/// Organisation written into the CA's subject.
pub const CA_ORGANIZATION: &str = "fieldsync";

/// The fleet CA's certificate and signing key.
pub struct FleetCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
}

impl FleetCa {
    /// Makes a new CA with a fresh P-256 key, valid for `validity`.
    ///
    /// The common name carries a random tag, so that two development CAs are told
    /// apart in error messages ("unknown issuer ... tag 3f2a9c1e") instead of looking
    /// identical.
    pub fn generate(validity: Validity) -> Result<FleetCa, PkiError> {
        validity.check("the fleet CA certificate")?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::sign("generate the fleet CA key", e))?;
        let tag: [u8; 4] = rand::rng().random();
        let mut params = CertificateParams::default();
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(leaf::random_serial());
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, CA_ORGANIZATION);
        params.distinguished_name.push(
            DnType::CommonName,
            format!("fieldsync development fleet CA {}", hex::encode(tag)),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params
            .self_signed(&key)
            .map_err(|e| PkiError::sign("self-sign the fleet CA certificate", e))?;
        Ok(FleetCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and key, both PEM.
    ///
    /// Checks that the certificate is a CA and that the key is the one it certifies,
    /// so a mismatched pair fails here rather than as "bad signature" on every device.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<FleetCa, PkiError> {
        FleetCa::load_named(
            cert_pem,
            key_pem,
            "the fleet CA certificate",
            "the fleet CA key",
        )
    }

    /// [`FleetCa::load`], naming the certificate and key (paths) in errors.
    pub(crate) fn load_named(
        cert_pem: &str,
        key_pem: &str,
        cert_name: &str,
        key_name: &str,
    ) -> Result<FleetCa, PkiError> {
        let bad_cert = |reason: String| PkiError::BadCertificate {
            what: cert_name.to_owned(),
            reason,
        };
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| bad_cert(format!("no PEM CERTIFICATE found ({e})")))?;
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|e| bad_cert(format!("it does not parse as X.509 ({e})")))?;
        if !cert.is_ca() {
            return Err(bad_cert(
                "it is not a CA certificate (basicConstraints CA is not set)".into(),
            ));
        }
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::BadKey {
            what: key_name.to_owned(),
            reason: e.to_string(),
        })?;
        if key.subject_public_key_info() != cert.public_key().raw {
            return Err(PkiError::BadKey {
                what: key_name.to_owned(),
                reason: format!("it is not the key certified by {cert_name}"),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| bad_cert(format!("rcgen cannot sign with it ({e})")))?;
        let cert_pem = pem_of(&cert_der);
        Ok(FleetCa {
            issuer,
            cert_pem,
            cert_der,
        })
    }

    /// The CA certificate, PEM: what devices and the gateway trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA's private key, PKCS#8 PEM. Secret: whoever has it can mint devices.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// SHA-256 of the CA certificate DER, lowercase hex (advertised over mDNS).
    pub fn fingerprint(&self) -> String {
        certificate_fingerprint(&self.cert_der)
    }

    /// Issues the gateway's server certificate (EKU serverAuth) for exactly `names`,
    /// each an IP address or a DNS name, with a key made here.
    ///
    /// `names` is used as given; [`crate::gateway_names_with_defaults`] adds the
    /// loopback names a development gateway wants.
    pub fn issue_gateway_cert(
        &self,
        names: &[String],
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        let params = leaf::gateway_params(names, validity)?;
        self.issue_with_new_key(&params, validity, "the gateway certificate")
    }

    /// Makes a P-256 key and a certificate for it.
    pub(crate) fn issue_with_new_key(
        &self,
        params: &CertificateParams,
        validity: Validity,
        what: &str,
    ) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::sign(format!("generate the key for {what}"), e))?;
        let signed = self.sign(params, &key, validity, what)?;
        Ok(IssuedCert {
            cert_pem: signed.cert_pem,
            cert_der: signed.cert_der,
            key_pem: key.serialize_pem(),
            validity,
        })
    }

    /// Signs `params` for `public_key`.
    pub(crate) fn sign(
        &self,
        params: &CertificateParams,
        public_key: &impl PublicKeyData,
        validity: Validity,
        what: &str,
    ) -> Result<SignedCert, PkiError> {
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(|e| PkiError::sign(format!("sign {what}"), e))?;
        Ok(SignedCert {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            validity,
        })
    }
}

impl fmt::Debug for FleetCa {
    /// Shows which CA this is, never its key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetCa")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// PEM of a certificate, LF line endings as rcgen writes them on Unix, so that a
/// loaded CA's `ca.pem` copies are byte-identical to freshly generated ones.
fn pem_of(der: &CertificateDer<'_>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), config)
}
