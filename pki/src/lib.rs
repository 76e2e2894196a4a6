//! The fleet PKI of fieldsync: the fleet CA, device CSRs, certificate issuance
//! (gateway and device, by CSR or as a bundle), the PKI folder's layout, the
//! enrollment file, and operator token hashing.
//!
//! This is production code, used by every program that makes, checks or reads
//! certificates: the gateway (it signs device CSRs and issues bundles through the admin
//! API, loads the fleet CA and its own certificate, hashes operator tokens, and makes a
//! development PKI on a first start), the agent (it makes its CSR), the `certs-dev`
//! command (a thin binary on [`write_pki`]), the load test and the test fixtures. One
//! implementation means one definition of what a device certificate is
//! (ARCHITECTURE.md, "Identity and trust"):
//!
//! - the fleet CA is ECDSA P-256 and signs only end-entity certificates;
//! - a device certificate names the device by the URI SAN `urn:fieldsync:device:<id>`
//!   and its serial as CN, has EKU clientAuth only, and a bounded validity;
//! - the gateway certificate has EKU serverAuth and the names it is reached by.
//!
//! Issuance is renewal-ready: every certificate gets a fresh random serial number and
//! the validity the caller passes, so renewing a device is signing its (new or same)
//! CSR again, and the result is a new certificate with a new fingerprint to enroll.
//!
//! Time is always passed in ([`Validity`]), so tests can make expired and
//! not-yet-valid certificates.

mod ca;
mod csr;
mod device;
mod enrollment;
mod error;
mod files;
pub mod layout;
mod leaf;
mod plan;
mod publish;
mod token;
mod validity;
mod write;

pub use ca::{CA_ORGANIZATION, FleetCa};
pub use csr::{DeviceCsr, make_device_csr};
pub use enrollment::{ENROLLMENT_HEADER, EnrollmentRow, read_enrollment, write_enrollment};
pub use error::PkiError;
pub use layout::{load_admin_token, load_pki_dir};
pub use leaf::{
    DEFAULT_GATEWAY_NAMES, DeviceEku, GATEWAY_COMMON_NAME, IssuedCert, MAX_SERIAL_LEN, SignedCert,
    check_gateway_name, check_serial, gateway_names_with_defaults,
};
pub use plan::{KindMix, PlannedDevice, UnknownKindMix, plan_devices, planned_device};
pub use token::{
    TOKEN_BYTES, TOKEN_PREFIX, generate_admin_token, is_well_formed_token, token_hash,
};
pub use validity::{CLOCK_SKEW_ALLOWANCE, Validity};
pub use write::{
    DEFAULT_CA_DAYS, DEFAULT_DEVICE_DAYS, DEFAULT_GATEWAY_DAYS, MAX_DEVICES, PkiOptions,
    PkiSummary, write_pki, write_pki_with_progress,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<FleetCa>();
        shareable::<PkiError>();
    }
}
