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

/// Runs `loadtest` with `args` and `--out` a new folder, asserts that the run passed,
/// and returns the folder and its report.
pub(crate) fn passing_run(args: &[&str]) -> (tempfile::TempDir, serde_json::Value) {
    let out_dir = tempfile::tempdir().unwrap();
    let mut all = args.to_vec();
    all.extend(["--out", out_dir.path().to_str().unwrap()]);
    let out = loadtest(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("result: PASSED"), "{stdout}");
    let report = report(out_dir.path());
    (out_dir, report)
}

/// A figure (name, value, baseline, ratio, target).
pub(crate) fn figure_entry<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no figure {name} in {report}"))
}

/// A figure's value.
pub(crate) fn figure(report: &serde_json::Value, name: &str) -> f64 {
    figure_entry(report, name)["value"].as_f64().unwrap()
}

/// A figure's ratio to its baseline measured in the same run.
pub(crate) fn ratio(report: &serde_json::Value, name: &str) -> f64 {
    let f = figure_entry(report, name);
    f["ratio"]
        .as_f64()
        .unwrap_or_else(|| panic!("figure without a ratio: {f}"))
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
