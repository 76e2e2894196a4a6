//! Short runs of the real harness binary (gateway and bare server as child processes,
//! devices over loopback). They assert what the run found, never its speed.

mod common;

use common::{figure, loadtest, operation_count, passing_run, ratio};

#[test]
fn connect_storm_connects_every_device_and_writes_its_report() {
    let (out_dir, report) = passing_run(&[
        "--scenario",
        "connect-storm",
        "--devices",
        "40",
        "--duration",
        "2s",
        "--concurrency",
        "8",
    ]);
    assert_eq!(figure(&report, "devices connected"), 40.0);
    assert!(figure(&report, "handshakes per second") > 0.0);
    // The baseline ran in the same run, so the figure carries a ratio.
    assert!(ratio(&report, "handshakes per second") > 0.0);
    assert!(figure(&report, "gateway memory per idle connection") >= 0.0);
    assert_eq!(operation_count(&report, "hello"), 40);
    assert_eq!(operation_count(&report, "reconnect"), 40);
    assert!(report["failures"].as_array().unwrap().is_empty());
    let page = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(page.contains("<svg"));
}

#[test]
fn an_external_gateway_needs_its_pki() {
    let out = loadtest(&["--gateway", "127.0.0.1:4433", "--devices", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--pki"), "{stderr}");
}

#[test]
fn the_baseline_command_reports_all_four_baselines() {
    let (_dir, report) = passing_run(&[
        "baseline",
        "--devices",
        "10",
        "--bulk-mib",
        "4",
        "--sqlite-rows",
        "2000",
    ]);
    for name in [
        "bare handshakes per second",
        "bare memory per idle connection",
        "bare bulk goodput",
        "SQLite durable inserts (1,000/tx)",
    ] {
        assert!(figure(&report, name) >= 0.0, "{name}");
    }
    assert!(figure(&report, "bare handshakes per second") > 0.0);
}

#[test]
fn the_upload_benchmark_uploads_against_plain_quinn_in_rounds() {
    let (_dir, report) = passing_run(&[
        "upload",
        "--size",
        "2MiB",
        "--uploads",
        "4",
        "--rounds",
        "2",
        "--chunk",
        "256KiB",
    ]);
    // Both kinds of phase ran against the bare server in the same run.
    assert!(ratio(&report, "1 upload: goodput") > 0.0);
    assert!(ratio(&report, "4 uploads at once: goodput") > 0.0);
    // Every upload was stored: 1 + 4 per round.
    assert_eq!(operation_count(&report, "upload (alone)"), 2);
    assert_eq!(operation_count(&report, "upload (one of several)"), 8);
    // The gateway timed its read-back of every staged file, and it took some time.
    let share = figure(&report, "1 upload: read-back, share of upload time");
    assert!(share > 0.0 && share < 100.0, "{share}");
}
