//! Running the harness binary and reading its report, for the scenario tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Runs `loadtest` with `args` to completion.
pub(crate) fn loadtest(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run loadtest")
}

/// The `report.json` a run wrote into `dir`.
pub(crate) fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

/// A figure's value.
pub(crate) fn figure(report: &serde_json::Value, name: &str) -> f64 {
    report["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no figure {name} in {report}"))["value"]
        .as_f64()
        .unwrap()
}

/// How many of an operation completed (0 when none did).
pub(crate) fn operation_count(report: &serde_json::Value, op: &str) -> u64 {
    report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == op)
        .map_or(0, |o| o["count"].as_u64().unwrap())
}
