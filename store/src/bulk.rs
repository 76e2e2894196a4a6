//! Bulk enrollment from the admin API: thousands of devices in one write transaction,
//! every row checked against the registry first, bad rows reported by their line in
//! the operator's file.
//!
//! Without `partial`, one bad row means nothing is written. With `partial`, the good
//! rows are enrolled and the bad ones reported. Either way the whole batch is one
//! transaction, and one summary audit entry records who imported how many and why
//! (each device also gets its own `device_enrolled` entry).

use std::collections::HashMap;

use protocol::Millis;
use serde_json::json;

use super::audit::actions;
use super::rows::{DeviceRow, NewDevice, normalize_fingerprint};
use super::{Store, StoreError};

/// A row of an operator's file that cannot be applied, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowError {
    /// 1-based line in the operator's file (the header is line 1).
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// A device to enroll and the line of the file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceImportRow {
    /// Line in the operator's file.
    pub line: u64,
    /// The enrollment.
    pub device: NewDevice,
}

/// How a bulk enrollment treats bad rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// One bad row and nothing is written.
    AllOrNothing,
    /// The good rows are written, the bad ones reported.
    Partial,
    /// Every row is checked and nothing is written (the caller found bad rows of its
    /// own and wants the registry's objections to the rest too).
    CheckOnly,
}

/// What a bulk enrollment did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceImportOutcome {
    /// Devices enrolled, in file order (empty when a bad row stopped the import).
    pub enrolled: Vec<DeviceRow>,
    /// Rows that were refused, with their line numbers.
    pub rejected: Vec<RowError>,
}

impl Store {
    /// Enrolls `rows` in one transaction (see the module documentation). Returns the
    /// rejected rows; when any is rejected and `partial` is false, nothing is written.
    pub async fn enroll_devices(
        &self,
        rows: &[DeviceImportRow],
        mode: ImportMode,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<DeviceImportOutcome, StoreError> {
        let partial = mode == ImportMode::Partial;
        let mut tx = self.write().await?;
        let mut outcome = DeviceImportOutcome::default();
        let mut agencies: HashMap<String, i64> = HashMap::new();
        let mut seen: HashMap<String, u64> = HashMap::new();
        for row in rows {
            let line = row.line;
            let reject = |reason: String| RowError { line, reason };
            let device = match normalize_fingerprint(&row.device.certificate_fingerprint) {
                Ok(fp) => NewDevice {
                    certificate_fingerprint: fp,
                    serial: row.device.serial.trim().to_owned(),
                    ..row.device.clone()
                },
                Err(e) => {
                    outcome.rejected.push(reject(e.to_string()));
                    continue;
                }
            };
            if device.serial.is_empty() {
                outcome.rejected.push(reject("serial is empty".into()));
                continue;
            }
            if device.certificate_not_after <= now {
                outcome
                    .rejected
                    .push(reject("the certificate has expired".into()));
                continue;
            }
            if let Some(dup) = [
                format!("device id {}", device.id),
                format!("serial {}", device.serial),
                format!("fingerprint {}", device.certificate_fingerprint),
            ]
            .into_iter()
            .find_map(|key| {
                let first = *seen.entry(key.clone()).or_insert(line);
                (first != line).then(|| format!("{key} is also on line {first}"))
            }) {
                outcome.rejected.push(reject(dup));
                continue;
            }
            let agency_id = match &device.agency {
                None => None,
                Some(name) => match agencies.get(name) {
                    Some(id) => Some(*id),
                    None => match tx.agency_id(Some(name)).await {
                        Ok(id) => {
                            if let Some(id) = id {
                                agencies.insert(name.clone(), id);
                            }
                            id
                        }
                        Err(e @ StoreError::UnknownAgency(_)) => {
                            outcome.rejected.push(reject(e.to_string()));
                            continue;
                        }
                        Err(e) => return Err(e),
                    },
                },
            };
            if let Some(conflict) = tx
                .enrollment_conflict(&device.id, &device.serial, &device.certificate_fingerprint)
                .await?
            {
                outcome.rejected.push(reject(conflict.to_string()));
                continue;
            }
            if mode == ImportMode::CheckOnly || (!outcome.rejected.is_empty() && !partial) {
                // Nothing will be written: keep checking (to report every bad row) but
                // do not insert.
                continue;
            }
            let enrolled = tx.insert_device(&device, agency_id, actor, now).await?;
            outcome.enrolled.push(enrolled);
        }
        if mode == ImportMode::CheckOnly
            || (!outcome.rejected.is_empty() && !partial)
            || outcome.enrolled.is_empty()
        {
            tx.rollback().await?;
            outcome.enrolled.clear();
            return Ok(outcome);
        }
        let detail = json!({
            "enrolled": outcome.enrolled.len(),
            "rejected": outcome.rejected.len(),
            "partial": partial,
            "reason": reason,
        });
        tx.append_audit(
            actor,
            actions::ENROLLMENT_IMPORTED,
            "admin api",
            &detail.to_string(),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(outcome)
    }
}
