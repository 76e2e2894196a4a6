//! Where each file of a development PKI folder lives, and reading the parts the
//! gateway needs back from such a folder.
//!
//! ```text
//! DIR/
//!   ca.pem  ca.key                 fleet CA (key 0600)
//!   gateway.pem  gateway.key       gateway server certificate (key 0600)
//!   enrollment.csv                 device_id,kind,serial,fingerprint,not_after
//!   admin.token                    fst_<64 hex>, 0600
//!   devices/<id>/device.pem        device certificate
//!   devices/<id>/device.key        device key (0600)
//!   devices/<id>/ca.pem            copy of the fleet CA certificate
//! ```

use std::path::{Path, PathBuf};

use protocol::DeviceId;

use crate::files::read_text;
use crate::{FleetCa, PkiError};

/// Fleet CA certificate. Its presence marks a folder as holding a PKI.
pub const CA_CERT_FILE: &str = "ca.pem";
/// Fleet CA private key.
pub const CA_KEY_FILE: &str = "ca.key";
/// Gateway server certificate.
pub const GATEWAY_CERT_FILE: &str = "gateway.pem";
/// Gateway private key.
pub const GATEWAY_KEY_FILE: &str = "gateway.key";
/// Enrollment file for the gateway to import.
pub const ENROLLMENT_FILE: &str = "enrollment.csv";
/// The first admin bearer token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Folder of device bundles.
pub const DEVICES_DIR: &str = "devices";
/// Device certificate, inside a bundle.
pub const DEVICE_CERT_FILE: &str = "device.pem";
/// Device private key, inside a bundle.
pub const DEVICE_KEY_FILE: &str = "device.key";
/// Copy of the fleet CA certificate, inside a bundle (the device trusts it).
pub const DEVICE_CA_FILE: &str = "ca.pem";

/// Every top-level entry `write_pki` makes, in the order it moves them into an
/// existing folder: `ca.pem` last, so that it appears only once the rest is there.
pub(crate) const TOP_LEVEL_ENTRIES: [&str; 7] = [
    DEVICES_DIR,
    ENROLLMENT_FILE,
    GATEWAY_CERT_FILE,
    GATEWAY_KEY_FILE,
    ADMIN_TOKEN_FILE,
    CA_KEY_FILE,
    CA_CERT_FILE,
];

/// The bundle folder of `device` under the PKI folder `root`.
pub fn device_dir(root: &Path, device: &DeviceId) -> PathBuf {
    root.join(DEVICES_DIR).join(device.as_str())
}

/// Loads the fleet CA from `dir/ca.pem` and `dir/ca.key`.
///
/// Logs a warning if the key file is readable by other users.
pub fn load_pki_dir(dir: &Path) -> Result<FleetCa, PkiError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    let cert_pem = read_text(&cert_path)?;
    let key_pem = read_text(&key_path)?;
    warn_if_exposed(&key_path);
    FleetCa::load_named(
        &cert_pem,
        &key_pem,
        &cert_path.display().to_string(),
        &key_path.display().to_string(),
    )
}

/// Reads `dir/admin.token`, without the trailing newline.
pub fn load_admin_token(dir: &Path) -> Result<String, PkiError> {
    let path = dir.join(ADMIN_TOKEN_FILE);
    Ok(read_text(&path)?.trim().to_owned())
}

fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the fleet CA key is readable by other users");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
