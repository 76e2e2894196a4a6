//! Reading an operator's CSV file into the rows the admin API imports, each with its
//! line number, so that every problem (here or on the gateway) names its line.
//!
//! This side checks only the file's shape: a header with every required column and no
//! unknown one, and every row with as many fields as the header. What the values mean
//! (a known agency, a unique serial, a valid class) is checked by the gateway, which
//! alone knows the registry.

use std::io::Read;

use serde_json::{Map, Value};

use crate::client::RowProblem;

/// The columns of one kind of file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileKind {
    /// What the file holds, for messages.
    pub what: &'static str,
    /// Columns that must be present.
    pub required: &'static [&'static str],
    /// Columns that may be present.
    pub optional: &'static [&'static str],
}

/// An enrollment file (what `certs-dev` writes), optionally with an agency column.
pub const DEVICES: FileKind = FileKind {
    what: "enrollment file",
    required: &["device_id", "kind", "serial", "fingerprint", "not_after"],
    optional: &["agency"],
};

/// A roster.
pub const OFFICERS: FileKind = FileKind {
    what: "roster",
    required: &[
        "certificate_number",
        "name",
        "certificate_status",
        "auxiliary",
    ],
    optional: &["unit", "post", "category", "agency", "valid_until"],
};

/// A list of agencies.
pub const AGENCIES: FileKind = FileKind {
    what: "agency file",
    required: &["name", "class"],
    optional: &["class_c_target"],
};

/// The rows of a file that has the right shape, and the lines that do not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedFile {
    /// Rows as JSON objects with a `line` field.
    pub rows: Vec<Map<String, Value>>,
    /// Lines whose shape is wrong.
    pub problems: Vec<RowProblem>,
}

/// Why a file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The header is wrong (line 1).
    #[error("line 1: {0}")]
    Header(String),
}

/// Reads `input` as a `kind` file, calling `progress` after each row.
pub fn read(
    input: impl Read,
    kind: &FileKind,
    mut progress: impl FnMut(),
) -> Result<ParsedFile, FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| FileError::Header(format!("unreadable header: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    for column in kind.required {
        if !header.iter().any(|h| h == column) {
            return Err(FileError::Header(format!(
                "the {} has no {column:?} column (required: {})",
                kind.what,
                kind.required.join(",")
            )));
        }
    }
    for column in &header {
        if !kind.required.contains(&column.as_str()) && !kind.optional.contains(&column.as_str()) {
            return Err(FileError::Header(format!(
                "unknown column {column:?} in the {} (columns: {}{}{})",
                kind.what,
                kind.required.join(","),
                if kind.optional.is_empty() { "" } else { "," },
                kind.optional.join(",")
            )));
        }
    }
    let mut parsed = ParsedFile::default();
    for record in reader.records() {
        progress();
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                parsed.problems.push(RowProblem {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            parsed.problems.push(RowProblem {
                line,
                reason: format!(
                    "{} fields, but the header has {} columns (a missing column?)",
                    record.len(),
                    header.len()
                ),
            });
            continue;
        }
        let mut row = Map::new();
        row.insert("line".into(), Value::from(line));
        for (column, value) in header.iter().zip(record.iter()) {
            row.insert(column.clone(), Value::from(value));
        }
        parsed.rows.push(row);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_their_line_and_short_rows_are_reported() {
        let text = "name,class,class_c_target\nA1,a,\nC1,c\n\"B\n1\",b,\nB2,b,\n";
        let parsed = read(text.as_bytes(), &AGENCIES, || {}).unwrap();
        let lines: Vec<u64> = parsed
            .rows
            .iter()
            .map(|r| r["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, vec![2, 4, 6]);
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(parsed.problems[0].line, 3);
        assert!(parsed.problems[0].reason.contains("missing column"));
    }

    #[test]
    fn a_missing_or_unknown_column_is_a_header_error() {
        let err = read("name\nA1\n".as_bytes(), &AGENCIES, || {}).unwrap_err();
        assert!(err.to_string().contains("\"class\""), "{err}");
        let err = read("name,class,colour\nA1,a,red\n".as_bytes(), &AGENCIES, || {}).unwrap_err();
        assert!(
            err.to_string().contains("unknown column \"colour\""),
            "{err}"
        );
    }
}
