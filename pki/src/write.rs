//! `write_pki`: the whole development PKI folder in one call, used by the `certs-dev`
//! binary and by the gateway when it makes a development PKI on first start.
//!
//! Order of work: check the options (usage errors), check the output folder, make
//! everything in a staging folder, then move it into place ([`crate::publish`]). So a
//! bad flag or an existing CA fails before any key is made, and any later failure
//! leaves the output folder as it was.

use std::io::{BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use protocol::domain::DeviceKind;
use time::OffsetDateTime;

use crate::enrollment::{EnrollmentRow, write_enrollment};
use crate::files::{Access, create_dir, create_new, sync_dir, write_new};
use crate::layout::{
    ADMIN_TOKEN_FILE, CA_CERT_FILE, CA_KEY_FILE, DEVICE_CA_FILE, DEVICE_CERT_FILE, DEVICE_KEY_FILE,
    DEVICES_DIR, ENROLLMENT_FILE, GATEWAY_CERT_FILE, GATEWAY_KEY_FILE,
};
use crate::leaf::{check_gateway_name, gateway_names_with_defaults};
use crate::plan::{KindMix, planned_device};
use crate::publish::Target;
use crate::{FleetCa, PkiError, Validity, generate_admin_token};

/// Most devices one run makes: a typo such as `--devices 10000000` should fail, not
/// fill the disk with forty million files.
pub const MAX_DEVICES: u32 = 1_000_000;
/// Default device certificate validity, days.
pub const DEFAULT_DEVICE_DAYS: u32 = 365;
/// Default gateway certificate validity, days.
pub const DEFAULT_GATEWAY_DAYS: u32 = 365;
/// Default fleet CA validity, days (about 10 years).
pub const DEFAULT_CA_DAYS: u32 = 3650;

/// What to put into a development PKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiOptions {
    /// Number of device bundles, 1 to [`MAX_DEVICES`].
    pub devices: u32,
    /// Which kinds of device.
    pub kinds: KindMix,
    /// Gateway names besides `localhost`, `127.0.0.1` and `::1`.
    pub gateway_names: Vec<String>,
    /// Device certificate validity, days.
    pub device_days: u32,
    /// Gateway certificate validity, days.
    pub gateway_days: u32,
    /// Fleet CA validity, days.
    pub ca_days: u32,
    /// Replace an existing PKI (or write among other files).
    pub force: bool,
    /// The time the validity periods start from.
    pub now: OffsetDateTime,
}

impl PkiOptions {
    /// `devices` mixed devices with the default validity periods, starting at `now`.
    pub fn new(devices: u32, now: OffsetDateTime) -> Self {
        PkiOptions {
            devices,
            kinds: KindMix::default(),
            gateway_names: Vec::new(),
            device_days: DEFAULT_DEVICE_DAYS,
            gateway_days: DEFAULT_GATEWAY_DAYS,
            ca_days: DEFAULT_CA_DAYS,
            force: false,
            now,
        }
    }
}

/// What `write_pki` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiSummary {
    /// The output folder.
    pub dir: PathBuf,
    /// Fingerprint of the fleet CA certificate.
    pub ca_fingerprint: String,
    /// Fingerprint of the gateway certificate.
    pub gateway_fingerprint: String,
    /// Every name in the gateway certificate.
    pub gateway_names: Vec<String>,
    /// Number of recorder bundles.
    pub recorders: u32,
    /// Number of terminal bundles.
    pub terminals: u32,
    /// End of the device certificates' validity.
    pub device_not_after: OffsetDateTime,
}

/// Options after checking: validities computed, gateway names complete.
struct Checked {
    ca: Validity,
    gateway: Validity,
    device: Validity,
    gateway_names: Vec<String>,
}

fn check(opts: &PkiOptions) -> Result<Checked, PkiError> {
    if opts.devices == 0 {
        return Err(PkiError::NoDevices);
    }
    if opts.devices > MAX_DEVICES {
        return Err(PkiError::TooManyDevices {
            requested: opts.devices,
            max: MAX_DEVICES,
        });
    }
    for name in &opts.gateway_names {
        check_gateway_name(name)?;
    }
    Ok(Checked {
        ca: Validity::days_from(opts.now, opts.ca_days, "--ca-days")?,
        gateway: Validity::days_from(opts.now, opts.gateway_days, "--gateway-days")?,
        device: Validity::days_from(opts.now, opts.device_days, "--device-days")?,
        gateway_names: gateway_names_with_defaults(&opts.gateway_names),
    })
}

/// Writes a development PKI into `out_dir` (see [`crate::layout`] for the files).
///
/// Refuses a folder that holds a CA (`ca.pem`) or other files unless `opts.force`;
/// on any error the folder is left as it was.
pub fn write_pki(out_dir: &Path, opts: &PkiOptions) -> Result<PkiSummary, PkiError> {
    write_pki_with_progress(out_dir, opts, &|| {})
}

/// [`write_pki`], calling `on_device` once per device bundle written (from worker
/// threads), for a progress bar.
pub fn write_pki_with_progress(
    out_dir: &Path,
    opts: &PkiOptions,
    on_device: &(dyn Fn() + Sync),
) -> Result<PkiSummary, PkiError> {
    let checked = check(opts)?;
    let target = Target::inspect(out_dir, opts.force)?;
    let staging = target.staging()?;
    let root = staging.path();

    let ca = FleetCa::generate(checked.ca)?;
    write_new(
        &root.join(CA_CERT_FILE),
        ca.cert_pem().as_bytes(),
        Access::Public,
        true,
    )?;
    write_new(
        &root.join(CA_KEY_FILE),
        ca.key_pem().as_bytes(),
        Access::Secret,
        true,
    )?;

    let gateway = ca.issue_gateway_cert(&checked.gateway_names, checked.gateway)?;
    write_new(
        &root.join(GATEWAY_CERT_FILE),
        gateway.cert_pem.as_bytes(),
        Access::Public,
        true,
    )?;
    write_new(
        &root.join(GATEWAY_KEY_FILE),
        gateway.key_pem.as_bytes(),
        Access::Secret,
        true,
    )?;

    let rows = write_devices(root, &ca, opts, checked.device, on_device)?;
    write_enrollment_file(&root.join(ENROLLMENT_FILE), &rows)?;

    let token = generate_admin_token()?;
    write_new(
        &root.join(ADMIN_TOKEN_FILE),
        format!("{token}\n").as_bytes(),
        Access::Secret,
        true,
    )?;

    sync_dir(&root.join(DEVICES_DIR))?;
    sync_dir(root)?;
    target.publish(staging)?;

    let recorders = rows
        .iter()
        .filter(|r| r.kind == DeviceKind::Recorder)
        .count();
    Ok(PkiSummary {
        dir: out_dir.to_owned(),
        ca_fingerprint: ca.fingerprint(),
        gateway_fingerprint: gateway.fingerprint(),
        gateway_names: checked.gateway_names,
        recorders: u32::try_from(recorders).unwrap_or(u32::MAX),
        terminals: opts.devices - u32::try_from(recorders).unwrap_or(u32::MAX),
        device_not_after: checked.device.not_after,
    })
}

/// Writes every device bundle under `root/devices`, on all cores (key generation and
/// signing dominate), and returns the enrollment rows in device order.
///
/// Device files are not synced one by one: for thousands of bundles that would cost
/// far more than the run itself. The top-level files (CA, gateway, token, enrollment)
/// and the folders are synced.
fn write_devices(
    root: &Path,
    ca: &FleetCa,
    opts: &PkiOptions,
    validity: Validity,
    on_device: &(dyn Fn() + Sync),
) -> Result<Vec<EnrollmentRow>, PkiError> {
    let devices_dir = root.join(DEVICES_DIR);
    create_dir(&devices_dir)?;
    let count = opts.devices;
    let workers = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(count as usize)
        .max(1);
    let failed = AtomicBool::new(false);
    let results: Vec<Result<Vec<(u32, EnrollmentRow)>, PkiError>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let failed = &failed;
                scope.spawn(move || {
                    let mut rows = Vec::with_capacity(count as usize / workers + 1);
                    // Worker w takes devices w+1, w+1+workers, ...
                    for index in (1..=count).skip(worker).step_by(workers) {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        match write_device(root, ca, index, opts, validity) {
                            Ok(row) => rows.push((index, row)),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                        on_device();
                    }
                    Ok(rows)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut rows = Vec::with_capacity(count as usize);
    for result in results {
        rows.extend(result?);
    }
    rows.sort_unstable_by_key(|(index, _)| *index);
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

fn write_device(
    root: &Path,
    ca: &FleetCa,
    index: u32,
    opts: &PkiOptions,
    validity: Validity,
) -> Result<EnrollmentRow, PkiError> {
    let device = planned_device(index, opts.devices, opts.kinds);
    let issued = ca.issue_device_bundle(&device.id, &device.serial, validity)?;
    let dir = crate::layout::device_dir(root, &device.id);
    create_dir(&dir)?;
    write_new(
        &dir.join(DEVICE_CERT_FILE),
        issued.cert_pem.as_bytes(),
        Access::Public,
        false,
    )?;
    write_new(
        &dir.join(DEVICE_KEY_FILE),
        issued.key_pem.as_bytes(),
        Access::Secret,
        false,
    )?;
    write_new(
        &dir.join(DEVICE_CA_FILE),
        ca.cert_pem().as_bytes(),
        Access::Public,
        false,
    )?;
    Ok(EnrollmentRow {
        fingerprint: issued.fingerprint(),
        not_after: issued.validity.not_after,
        device_id: device.id,
        kind: device.kind,
        serial: device.serial,
    })
}

fn write_enrollment_file(path: &Path, rows: &[EnrollmentRow]) -> Result<(), PkiError> {
    let file = create_new(path, Access::Public)?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    write_enrollment(&mut out, rows).map_err(|e| PkiError::io("write", path, e.into()))?;
    out.flush().map_err(|e| PkiError::io("write", path, e))?;
    let file = out
        .into_inner()
        .map_err(|e| PkiError::io("write", path, e.into_error()))?;
    file.sync_all().map_err(|e| PkiError::io("sync", path, e))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn opts(devices: u32) -> PkiOptions {
        PkiOptions::new(devices, datetime!(2026-03-01 12:00:00 UTC))
    }

    #[test]
    fn usage_errors_are_found_before_any_work() {
        assert!(matches!(check(&opts(0)), Err(PkiError::NoDevices)));
        assert!(matches!(
            check(&opts(MAX_DEVICES + 1)),
            Err(PkiError::TooManyDevices { .. })
        ));
        let mut bad_name = opts(1);
        bad_name.gateway_names = vec!["no spaces allowed".into()];
        assert!(matches!(
            check(&bad_name),
            Err(PkiError::InvalidGatewayName { .. })
        ));
        let mut zero_days = opts(1);
        zero_days.device_days = 0;
        let err = check(&zero_days).err().unwrap();
        assert!(
            err.is_usage() && err.to_string().contains("--device-days"),
            "{err}"
        );
    }

    #[test]
    fn checked_options_hold_the_defaults() {
        let mut o = opts(3);
        o.gateway_names = vec!["gw.fleet.test".into()];
        let c = check(&o).unwrap();
        assert_eq!(
            c.gateway_names,
            ["localhost", "127.0.0.1", "::1", "gw.fleet.test"]
        );
        assert_eq!(c.device.not_after, datetime!(2027-03-01 12:00:00 UTC));
        assert_eq!(c.ca.not_after, datetime!(2036-02-27 12:00:00 UTC));
    }
}
