//! Operators' CSV files: rosters and device lists as the provisioning CLI reads them and
//! the gateway's admin API then checks them row by row, and the enrollment file that
//! `certs-dev` writes and the gateway imports.

use std::collections::{BTreeSet, HashSet};

use gateway::api::devices::{self, DeviceImportRowText};
use gateway::api::officers::{self, OfficerImportRow};
use gateway::config::Config;
use provisioning::csvfile::{self, FileKind, ParsedFile};
use serde::de::DeserializeOwned;

use crate::Outcome;

/// The agency the fuzzed rows may name (any other name is refused as unknown).
pub const KNOWN_AGENCY: &str = "市场监管局";

/// Reads `data` as the CLI does; `None` when the header is refused.
fn read_file(data: &[u8], kind: &FileKind) -> Option<ParsedFile> {
    match csvfile::read(data, kind, || {}) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            assert!(e.to_string().starts_with("line 1: "), "{e}");
            None
        }
    }
}

/// The rows the CLI sends, as the gateway's API reads them: every row the CLI accepts
/// must be one the gateway can read (it decides what the values mean).
fn sent_rows<T: DeserializeOwned>(parsed: ParsedFile) -> Vec<T> {
    parsed
        .rows
        .into_iter()
        .map(|row| {
            let json = serde_json::to_vec(&row).expect("a row serializes");
            serde_json::from_slice(&json).expect("the gateway reads every row the CLI sends")
        })
        .collect()
}

/// A roster (officers), read by the CLI and checked by the gateway. Accepted when every
/// line is a good row.
pub fn roster_csv(data: &[u8]) -> Outcome {
    let Some(parsed) = read_file(data, &csvfile::OFFICERS) else {
        return Outcome::Refused;
    };
    let mut whole = parsed.problems.is_empty();
    let agencies = HashSet::from([KNOWN_AGENCY.to_owned()]);
    let zone = Config::default().zone();
    for row in sent_rows::<OfficerImportRow>(parsed) {
        whole &= officers::parse_row(&row, &agencies, &zone).is_ok();
    }
    if whole {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

/// A device list, read by the CLI and checked by the gateway. Accepted when every line
/// is a good row.
pub fn device_csv(data: &[u8]) -> Outcome {
    let Some(parsed) = read_file(data, &csvfile::DEVICES) else {
        return Outcome::Refused;
    };
    let mut whole = parsed.problems.is_empty();
    for row in sent_rows::<DeviceImportRowText>(parsed) {
        whole &= devices::parse_row(&row).is_ok();
    }
    if whole {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

/// The enrollment file, read by both of its readers: `pki`'s (strict, what tools read
/// back) and the gateway's import. A file `pki` reads must import, device for device,
/// unless it repeats a device, serial or certificate (which the import refuses and
/// `pki` does not look for); and it must write back to a file that reads the same.
pub fn enrollment_csv(data: &[u8]) -> Outcome {
    let imported = store::check_enrollment_file(data);
    let read = pki::read_enrollment(data, "fuzz.csv");
    if let Ok(rows) = &read {
        let mut written = Vec::new();
        pki::write_enrollment(&mut written, rows).expect("writing into a Vec");
        assert_eq!(
            &pki::read_enrollment(written.as_slice(), "again.csv").expect("reads back"),
            rows,
            "an enrollment file survives a round trip"
        );
        if all_distinct(rows) {
            let devices = imported
                .as_ref()
                .expect("the gateway imports what pki reads");
            let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
            let read_ids: Vec<&str> = rows.iter().map(|r| r.device_id.as_str()).collect();
            assert_eq!(ids, read_ids, "both readers see the same devices");
        }
    }
    Outcome::of(&imported)
}

fn all_distinct(rows: &[pki::EnrollmentRow]) -> bool {
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.device_id.as_str()).collect();
    let serials: BTreeSet<&str> = rows.iter().map(|r| r.serial.as_str()).collect();
    let fingerprints: BTreeSet<&str> = rows.iter().map(|r| r.fingerprint.as_str()).collect();
    ids.len() == rows.len() && serials.len() == rows.len() && fingerprints.len() == rows.len()
}
