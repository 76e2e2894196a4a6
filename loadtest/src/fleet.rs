//! The simulated fleet: a development PKI with one bundle per simulated device, its
//! enrollment in the gateway's store, and the identities loaded for connecting.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent::DeviceIdentity;
use pki::layout::ENROLLMENT_FILE;
use pki::{PkiOptions, PkiSummary};

/// Why the fleet could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// certs-dev failed.
    #[error("making the PKI: {0}")]
    Pki(#[from] pki::PkiError),
    /// A bundle could not be read.
    #[error("device bundle {dir}: {source}")]
    Identity {
        /// The bundle folder.
        dir: PathBuf,
        /// Why.
        source: agent::IdentityError,
    },
    /// The devices folder could not be listed.
    #[error("listing {dir}: {source}")]
    List {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The PKI holds fewer bundles than asked for.
    #[error("{dir} holds {found} device bundles; the run needs {wanted}")]
    TooFew {
        /// The PKI folder.
        dir: PathBuf,
        /// Bundles found.
        found: usize,
        /// Devices asked for.
        wanted: usize,
    },
    /// Enrolling into the gateway's store failed.
    #[error("enrolling the fleet: {0}")]
    Enroll(String),
}

/// One simulated device.
#[derive(Clone)]
pub struct SimDevice {
    /// Its device id (`dev-00001`).
    pub id: String,
    /// Its certificate and key.
    pub identity: Arc<DeviceIdentity>,
}

/// Makes a development PKI with `devices` bundles in `dir`.
pub fn make_pki(dir: &Path, devices: u32) -> Result<PkiSummary, FleetError> {
    let now = time::OffsetDateTime::now_utc();
    Ok(pki::write_pki(dir, &PkiOptions::new(devices, now))?)
}

/// Enrolls every device of the PKI in the store the gateway `config` names, as an
/// equipment manager would before handing devices out; returns the entries of the audit
/// log afterwards (its chain verified), from which a run counts what it added.
pub async fn enroll(config: &gateway::Config, pki_dir: &Path) -> Result<i64, FleetError> {
    let err = |e: &dyn std::fmt::Display| FleetError::Enroll(e.to_string());
    std::fs::create_dir_all(&config.data_dir).map_err(|e| err(&e))?;
    let store = store::Store::open(&config.store_config())
        .await
        .map_err(|e| err(&e))?;
    let file = std::fs::File::open(pki_dir.join(ENROLLMENT_FILE)).map_err(|e| err(&e))?;
    let now = protocol::Millis::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0);
    let imported = store.import_enrollment(file, None, "loadtest", now).await;
    let audit = match imported {
        Ok(_) => store
            .verify_audit_log()
            .await
            .map(|report| report.entries)
            .map_err(|e| err(&e)),
        Err(e) => Err(err(&e)),
    };
    store.close().await;
    audit
}

/// Loads the first `wanted` device bundles of a PKI folder, in device-id order.
pub fn load(pki_dir: &Path, wanted: usize) -> Result<Vec<SimDevice>, FleetError> {
    let devices_dir = pki_dir.join("devices");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&devices_dir)
        .map_err(|source| FleetError::List {
            dir: devices_dir.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    if dirs.len() < wanted {
        return Err(FleetError::TooFew {
            dir: pki_dir.to_owned(),
            found: dirs.len(),
            wanted,
        });
    }
    dirs.truncate(wanted);
    dirs.into_iter()
        .map(|dir| {
            let identity =
                DeviceIdentity::load_bundle(&dir).map_err(|source| FleetError::Identity {
                    dir: dir.clone(),
                    source,
                })?;
            let id = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(SimDevice {
                id,
                identity: Arc::new(identity),
            })
        })
        .collect()
}
