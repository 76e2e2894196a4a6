//! The enrollment file, `enrollment.csv`: one row per device certificate, which the
//! gateway imports so that it admits exactly these certificates.
//!
//! Header `device_id,kind,serial,fingerprint,not_after`; the fingerprint is
//! [`protocol::certificate_fingerprint`] of the certificate DER, `not_after` is RFC 3339
//! in UTC. The reader here is strict (exact header, well-formed fields) so that a
//! hand-edited file fails on import with the line at fault, not later at a handshake.

use std::io::{Read, Write};

use protocol::DeviceId;
use protocol::domain::DeviceKind;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::PkiError;
use crate::leaf::check_serial;

/// The header line, in order.
pub const ENROLLMENT_HEADER: [&str; 5] =
    ["device_id", "kind", "serial", "fingerprint", "not_after"];

/// One enrolled device certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentRow {
    /// The device the certificate names.
    pub device_id: DeviceId,
    /// Recorder or terminal.
    pub kind: DeviceKind,
    /// The serial (the certificate's CN).
    pub serial: String,
    /// SHA-256 of the certificate DER, 64 lowercase hex digits.
    pub fingerprint: String,
    /// End of the certificate's validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// Writes the header and `rows` as CSV.
pub fn write_enrollment<W: Write>(out: W, rows: &[EnrollmentRow]) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    for row in rows {
        writer.serialize(row)?;
    }
    writer.flush()?;
    Ok(())
}

/// Reads an enrollment file; `what` names it (a path) in errors.
pub fn read_enrollment<R: Read>(input: R, what: &str) -> Result<Vec<EnrollmentRow>, PkiError> {
    let bad = |reason: String| PkiError::BadEnrollment {
        what: what.to_owned(),
        reason,
    };
    let mut reader = csv::Reader::from_reader(input);
    let header = reader.headers().map_err(|e| bad(e.to_string()))?;
    if header.iter().ne(ENROLLMENT_HEADER) {
        return Err(bad(format!(
            "the header is {:?}; expected {:?}",
            header.iter().collect::<Vec<_>>().join(","),
            ENROLLMENT_HEADER.join(",")
        )));
    }
    let mut rows = Vec::new();
    for (n, row) in reader.deserialize::<EnrollmentRow>().enumerate() {
        let line = n + 2;
        let row = row.map_err(|e| bad(format!("line {line}: {e}")))?;
        // The serial is the certificate's CN: a file may hold only what issuance
        // accepts (the gateway's import refuses an empty one; found by fuzzing).
        check_serial(&row.serial).map_err(|e| bad(format!("line {line}: {e}")))?;
        if !is_fingerprint(&row.fingerprint) {
            return Err(bad(format!(
                "line {line}: fingerprint {:?} is not 64 lowercase hex digits",
                row.fingerprint
            )));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn is_fingerprint(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn row() -> EnrollmentRow {
        EnrollmentRow {
            device_id: DeviceId::new("dev-00001").unwrap(),
            kind: DeviceKind::Recorder,
            serial: "SN-REC-00001".into(),
            fingerprint: "ab".repeat(32),
            not_after: datetime!(2027-03-01 10:00:00 UTC),
        }
    }

    #[test]
    fn writes_the_documented_format_and_reads_it_back() {
        let mut out = Vec::new();
        write_enrollment(&mut out, &[row()]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!(
                "device_id,kind,serial,fingerprint,not_after\ndev-00001,recorder,SN-REC-00001,{},2027-03-01T10:00:00Z\n",
                "ab".repeat(32)
            )
        );
        assert_eq!(read_enrollment(text.as_bytes(), "test").unwrap(), [row()]);
    }

    #[test]
    fn a_wrong_header_is_refused() {
        let err = read_enrollment("id,kind\n".as_bytes(), "x.csv").unwrap_err();
        assert!(
            err.to_string().contains("x.csv") && err.to_string().contains("header"),
            "{err}"
        );
    }

    #[test]
    fn bad_fields_name_the_line() {
        let head = "device_id,kind,serial,fingerprint,not_after\n";
        let good = format!("dev-1,terminal,S,{},2027-03-01T10:00:00Z\n", "0".repeat(64));
        let cases = [
            format!(
                "{head}{good}dev-2,terminal,S,{},2027-03-01T10:00:00Z\n",
                "A".repeat(64)
            ),
            format!(
                "{head}{good}dev-2,drone,S,{},2027-03-01T10:00:00Z\n",
                "0".repeat(64)
            ),
            format!(
                "{head}{good}dev/2,terminal,S,{},2027-03-01T10:00:00Z\n",
                "0".repeat(64)
            ),
            format!(
                "{head}{good}dev-2,terminal,S,{},next year\n",
                "0".repeat(64)
            ),
            // Regression (fuzzing): an empty or padded serial is no certificate's CN.
            format!(
                "{head}{good}dev-2,terminal,,{},2027-03-01T10:00:00Z\n",
                "0".repeat(64)
            ),
            format!(
                "{head}{good}dev-2,terminal, S2,{},2027-03-01T10:00:00Z\n",
                "0".repeat(64)
            ),
        ];
        for text in cases {
            let err = read_enrollment(text.as_bytes(), "e.csv").unwrap_err();
            assert!(err.to_string().contains("line 3"), "{err}");
        }
    }
}
