//! The smoke run of the issue: about 200 simulated agents for 10 s of a field day
//! (records at an open-loop rate, identity checks, small recordings) against a real
//! gateway child process, then the end-of-run verification of its store. It asserts
//! what verification found, never the speed.

mod common;

use common::{figure, operation_count, passing_run};

#[test]
fn two_hundred_devices_for_ten_seconds_lose_and_duplicate_nothing() {
    let (out_dir, report) = passing_run(&[
        "--scenario",
        "field-day",
        "--devices",
        "200",
        "--duration",
        "10s",
        "--record-rate",
        "1",
        "--backlog",
        "5",
        "--recordings",
        "1",
        "--recording-size",
        "16KiB",
        "--check-every",
        "3",
    ]);
    assert_eq!(figure(&report, "devices run"), 200.0);
    let made = figure(&report, "records made");
    // 5 offline + about 10 in the steady phase, per device.
    assert!(made >= 200.0 * 14.0, "{made}");
    assert_eq!(figure(&report, "records acknowledged"), made);
    assert_eq!(figure(&report, "recordings stored / made"), 200.0);
    assert_eq!(figure(&report, "verify: acknowledged records lost"), 0.0);
    assert_eq!(figure(&report, "verify: records stored twice"), 0.0);
    assert_eq!(figure(&report, "verify: chains not verifying"), 0.0);
    assert_eq!(figure(&report, "verify: acknowledged recordings lost"), 0.0);
    assert!(operation_count(&report, "identity check") > 0);
    assert_eq!(operation_count(&report, "recording (queued→stored)"), 200);
    assert!(report["failures"].as_array().unwrap().is_empty());
    // Every simulated device is a real agent with its own outbox under the run's
    // folder.
    let agents = std::fs::read_dir(out_dir.path().join("agents"))
        .unwrap()
        .count();
    assert_eq!(agents, 200);
}
