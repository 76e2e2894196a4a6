//! Bulk CSV imports: read and check the file here (with a progress bar), send the rows
//! in one request, and report every bad row with its line number.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use provisioning::client::{ApiClient, ClientError, RowProblem};
use provisioning::csvfile::{self, FileKind};
use provisioning::output;
use serde_json::{Value, json};

use super::args::ImportArgs;
use super::{Outcome, Show};

/// Reads a CSV file (with a progress bar), sends its rows in one request, and reports
/// every bad row with its line number.
pub(super) fn import(
    api: &ApiClient,
    show: Show,
    kind: &FileKind,
    endpoint: &str,
    args: &ImportArgs,
    fill: impl Fn(&mut serde_json::Map<String, Value>),
) -> anyhow::Result<Outcome> {
    let bytes = fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    let bar = ProgressBar::new(lines.saturating_sub(1)).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("reading {}", args.file.display()));
    let parsed = csvfile::read(bytes.as_slice(), kind, || bar.inc(1))
        .with_context(|| format!("{}", args.file.display()))?;
    bar.finish_and_clear();
    // Lines this side refused still leave the others to the gateway's value checks,
    // so every bad row is reported in one pass; without `--partial` the gateway then
    // only checks (nothing can be applied while any line is bad).
    let check_only = !parsed.problems.is_empty() && !args.partial;
    let mut rows = parsed.rows;
    rows.iter_mut().for_each(&fill);
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!(
        "the gateway is checking and applying {} rows",
        rows.len()
    ));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let body = json!({
        "rows": rows, "partial": args.partial, "check_only": check_only,
        "reason": args.why.reason,
    });
    let sent = api.post(endpoint, &body);
    spinner.finish_and_clear();
    match sent {
        Ok(_) if check_only => {
            report_bad_rows(show, &args.file, &parsed.problems);
            Ok(Outcome::BadRows)
        }
        Ok(mut report) => {
            let mut rejected: Vec<RowProblem> =
                serde_json::from_value(report["rejected"].take()).unwrap_or_default();
            rejected.extend(parsed.problems);
            rejected.sort_by_key(|r| r.line);
            report["rejected"] = serde_json::to_value(&rejected)?;
            if show.json {
                println!("{}", output::json(&report));
            } else {
                println!(
                    "applied {}, unchanged {}, rejected {}",
                    output::cell(report.get("applied")),
                    output::cell(report.get("unchanged")),
                    rejected.len()
                );
                for r in &rejected {
                    eprintln!("{}:{}: {}", args.file.display(), r.line, r.reason);
                }
            }
            if rejected.is_empty() {
                Ok(Outcome::Done)
            } else {
                Ok(Outcome::PartlyApplied)
            }
        }
        Err(ClientError::Refused { status: 422, body }) if body.error == "bad_rows" => {
            let mut rows = body.rows;
            rows.extend(parsed.problems);
            rows.sort_by_key(|r| r.line);
            report_bad_rows(show, &args.file, &rows);
            Ok(Outcome::BadRows)
        }
        Err(e) => Err(e.into()),
    }
}

fn report_bad_rows(show: Show, file: &Path, rows: &[RowProblem]) {
    if show.json {
        println!(
            "{}",
            output::json(&json!({ "applied": 0, "rejected": rows }))
        );
    }
    for r in rows {
        eprintln!("{}:{}: {}", file.display(), r.line, r.reason);
    }
    eprintln!(
        "{} bad row(s); nothing was applied (fix them, or pass --partial to apply the good rows)",
        rows.len()
    );
}
