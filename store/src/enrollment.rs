//! Import of the enrollment file that `certs-dev` (or the provisioning CLI) writes:
//! CSV with the header `device_id,kind,serial,fingerprint,not_after` (`not_after` in
//! RFC 3339).
//!
//! Every row is validated before anything is written (errors name the line); then
//! all rows are applied in one write transaction, so a file is enrolled entirely or
//! not at all. Re-importing a file is idempotent: a row identical to an existing
//! enrollment (same id, kind, serial, certificate and expiry) is skipped and counted; a
//! row that conflicts with the registry fails the whole import.

use std::collections::HashMap;
use std::io::Read;

use protocol::domain::DeviceKind;
use protocol::{DeviceId, Millis};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::audit::actions;
use super::rows::{DeviceRow, NewDevice, normalize_fingerprint};
use super::{Store, StoreError};

/// The required header line of an enrollment file.
pub const ENROLLMENT_HEADER: [&str; 5] =
    ["device_id", "kind", "serial", "fingerprint", "not_after"];

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Devices newly enrolled, in file order.
    pub enrolled: Vec<DeviceId>,
    /// Rows skipped because the identical enrollment exists already.
    pub already_enrolled: usize,
}

/// A validated row and the line it came from.
#[derive(Debug)]
struct Row {
    line: u64,
    device: NewDevice,
}

fn bad(line: u64, reason: impl Into<String>) -> StoreError {
    StoreError::BadEnrollmentRow {
        line,
        reason: reason.into(),
    }
}

/// Reads and validates the whole file; nothing is written yet.
fn parse(reader: impl Read, agency: Option<&str>) -> Result<Vec<Row>, StoreError> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header = csv
        .headers()
        .map_err(|e| bad(1, format!("unreadable header: {e}")))?;
    if header.iter().ne(ENROLLMENT_HEADER) {
        return Err(bad(
            1,
            format!("the header must be {}", ENROLLMENT_HEADER.join(",")),
        ));
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in csv.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or_default();
        let id = DeviceId::new(field(0)).map_err(|e| bad(line, format!("device_id: {e}")))?;
        let kind: DeviceKind = field(1)
            .parse()
            .map_err(|e| bad(line, format!("kind: {e}")))?;
        let serial = field(2);
        if serial.is_empty() {
            return Err(bad(line, "serial is empty"));
        }
        let fingerprint =
            normalize_fingerprint(field(3)).map_err(|e| bad(line, format!("fingerprint: {e}")))?;
        let not_after = OffsetDateTime::parse(field(4), &Rfc3339).map_err(|e| {
            bad(
                line,
                format!("not_after {:?} is not RFC 3339: {e}", field(4)),
            )
        })?;
        let not_after = (not_after.unix_timestamp_nanos() / 1_000_000) as Millis;
        for key in [
            format!("id {id}"),
            format!("serial {serial}"),
            format!("fingerprint {fingerprint}"),
        ] {
            if let Some(first) = seen.insert(key.clone(), line) {
                return Err(bad(line, format!("{key} is also on line {first}")));
            }
        }
        rows.push(Row {
            line,
            device: NewDevice {
                id,
                kind,
                serial: serial.to_owned(),
                certificate_fingerprint: fingerprint,
                certificate_not_after: not_after,
                agency: agency.map(str::to_owned),
            },
        });
    }
    Ok(rows)
}

/// Reads and validates a whole enrollment file and writes nothing: the devices an
/// import would enroll, in file order, or the first bad line. The import's own first
/// step; public so the enrollment fuzz target drives the parser that runs.
pub fn check_enrollment_file(reader: impl Read) -> Result<Vec<NewDevice>, StoreError> {
    Ok(parse(reader, None)?
        .into_iter()
        .map(|row| row.device)
        .collect())
}

/// True when an existing enrollment is exactly what the row asks for.
fn same_enrollment(existing: &DeviceRow, new: &NewDevice) -> bool {
    existing.kind == new.kind
        && existing.serial == new.serial
        && existing.certificate_fingerprint == new.certificate_fingerprint
        && existing.certificate_not_after == new.certificate_not_after
}

impl Store {
    /// Imports an enrollment file (see the module documentation), enrolling its
    /// devices into `agency` if given. All or nothing; idempotent.
    pub async fn import_enrollment(
        &self,
        reader: impl Read,
        agency: Option<&str>,
        actor: &str,
        now: Millis,
    ) -> Result<ImportSummary, StoreError> {
        let rows = parse(reader, agency)?;
        let mut tx = self.write().await?;
        let agency_id = tx.agency_id(agency).await?;
        let mut summary = ImportSummary::default();
        for Row { line, device } in &rows {
            if let Some(existing) = tx.device(&device.id).await? {
                if same_enrollment(&existing, device) {
                    summary.already_enrolled += 1;
                    continue;
                }
                return Err(bad(
                    *line,
                    format!(
                        "device id {} is already enrolled with a different certificate or serial",
                        device.id
                    ),
                ));
            }
            if let Some(conflict) = tx
                .enrollment_conflict(&device.id, &device.serial, &device.certificate_fingerprint)
                .await?
            {
                return Err(bad(*line, conflict.to_string()));
            }
            if device.certificate_not_after <= now {
                return Err(bad(*line, "the certificate has expired"));
            }
            tx.insert_device(device, agency_id, actor, now).await?;
            summary.enrolled.push(device.id.clone());
        }
        if summary.enrolled.is_empty() {
            tx.rollback().await?;
            return Ok(summary);
        }
        let detail = json!({
            "enrolled": summary.enrolled.len(),
            "already_enrolled": summary.already_enrolled,
            "agency": agency,
        });
        tx.append_audit(
            actor,
            actions::ENROLLMENT_IMPORTED,
            agency.unwrap_or("-"),
            &detail.to_string(),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const FP2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn err_line(text: &str) -> (u64, String) {
        match parse(text.as_bytes(), None) {
            Err(StoreError::BadEnrollmentRow { line, reason }) => (line, reason),
            other => panic!("expected a bad row, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_good_file() {
        let text = format!(
            "device_id,kind,serial,fingerprint,not_after\n\
             dev-1,recorder,SN1,{FP1},2030-01-01T00:00:00Z\n\
             dev-2, terminal ,SN2,{},2030-01-01T08:00:00+08:00\n",
            FP2.to_uppercase()
        );
        let rows = parse(text.as_bytes(), Some("A1")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[1].device.kind, DeviceKind::Terminal);
        assert_eq!(rows[1].device.certificate_fingerprint, FP2);
        assert_eq!(rows[0].device.certificate_not_after, 1_893_456_000_000);
        assert_eq!(rows[1].device.certificate_not_after, 1_893_456_000_000);
        assert_eq!(rows[0].device.agency.as_deref(), Some("A1"));
    }

    #[test]
    fn reports_the_line_of_a_bad_row() {
        let head = "device_id,kind,serial,fingerprint,not_after\n";
        let good = format!("dev-1,recorder,SN1,{FP1},2030-01-01T00:00:00Z\n");
        let (line, reason) = err_line(&format!(
            "{head}{good}dev/2,recorder,SN2,{FP2},2030-01-01T00:00:00Z\n"
        ));
        assert_eq!(line, 3);
        assert!(reason.contains("device_id"), "{reason}");
        let (line, _) = err_line(&format!(
            "{head}{good}dev-2,drone,SN2,{FP2},2030-01-01T00:00:00Z\n"
        ));
        assert_eq!(line, 3);
        let (line, _) = err_line(&format!(
            "{head}{good}dev-2,recorder,SN2,abc,2030-01-01T00:00:00Z\n"
        ));
        assert_eq!(line, 3);
        let (line, _) = err_line(&format!("{head}{good}dev-2,recorder,SN2,{FP2},tomorrow\n"));
        assert_eq!(line, 3);
        let (line, reason) = err_line(&format!(
            "{head}{good}dev-2,recorder,SN1,{FP2},2030-01-01T00:00:00Z\n"
        ));
        assert_eq!((line, reason.as_str()), (3, "serial SN1 is also on line 2"));
        let (line, _) = err_line(&format!("{head}{good}dev-2,recorder\n"));
        assert_eq!(line, 3);
        let (line, _) = err_line("id,kind\n");
        assert_eq!(line, 1);
    }

    #[test]
    fn a_header_only_file_is_empty() {
        assert!(
            parse(
                "device_id,kind,serial,fingerprint,not_after\n".as_bytes(),
                None
            )
            .unwrap()
            .is_empty()
        );
    }
}
