//! Device certificates, by both paths the architecture allows:
//!
//! - the secure path, [`FleetCa::sign_device_csr`]: the device made its key and sent a
//!   CSR; only the CSR's public key is used, and the key never leaves the device;
//! - the bundle path, [`FleetCa::issue_device_bundle`]: the tool makes the key, for
//!   development, simulation and devices that cannot make a CSR.
//!
//! Either way the CA alone decides the subject, SAN, EKU and validity.

use protocol::DeviceId;

use crate::leaf::{self, DeviceEku, IssuedCert, SignedCert};
use crate::{FleetCa, PkiError, Validity, csr};

impl FleetCa {
    /// Makes a key and a client certificate for `device` (bundle path).
    pub fn issue_device_bundle(
        &self,
        device: &DeviceId,
        serial: &str,
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        self.issue_device_bundle_with(device, serial, validity, DeviceEku::ClientAuth)
    }

    /// [`FleetCa::issue_device_bundle`] with a chosen EKU; anything but
    /// [`DeviceEku::ClientAuth`] is for tests that the gateway refuses it.
    pub fn issue_device_bundle_with(
        &self,
        device: &DeviceId,
        serial: &str,
        validity: Validity,
        eku: DeviceEku,
    ) -> Result<IssuedCert, PkiError> {
        let params = leaf::device_params(device, serial, validity, eku)?;
        self.issue_with_new_key(
            &params,
            validity,
            &format!("the certificate of device {device}"),
        )
    }

    /// Signs a device's CSR (PEM) as `device` with common name `serial` (secure path).
    ///
    /// The CSR's signature must verify (proving the requester holds the key), and its
    /// key must be ECDSA P-256, P-384 or Ed25519. The subject, SANs and extensions it
    /// asks for are ignored, except that a CSR naming a *different* device by its
    /// URI SAN is refused as a mix-up.
    pub fn sign_device_csr(
        &self,
        csr_pem: &str,
        device: &DeviceId,
        serial: &str,
        validity: Validity,
    ) -> Result<SignedCert, PkiError> {
        self.sign_device_csr_with(csr_pem, device, serial, validity, DeviceEku::ClientAuth)
    }

    /// [`FleetCa::sign_device_csr`] with a chosen EKU (for tests).
    pub fn sign_device_csr_with(
        &self,
        csr_pem: &str,
        device: &DeviceId,
        serial: &str,
        validity: Validity,
        eku: DeviceEku,
    ) -> Result<SignedCert, PkiError> {
        let public_key = csr::requested_public_key(csr_pem, device)?;
        let params = leaf::device_params(device, serial, validity, eku)?;
        self.sign(
            &params,
            &public_key,
            validity,
            &format!("the certificate of device {device}"),
        )
    }
}
