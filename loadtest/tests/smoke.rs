//! Short runs of the real harness binary (gateway and bare server as child processes,
//! devices over loopback). They assert what the run found, never its speed.

use std::process::Command;

fn loadtest(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .output()
        .expect("run loadtest")
}

fn figure(report: &serde_json::Value, name: &str) -> f64 {
    report["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no figure {name} in {report}"))["value"]
        .as_f64()
        .unwrap()
}

#[test]
fn connect_storm_connects_every_device_and_writes_its_report() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = loadtest(&[
        "--scenario",
        "connect-storm",
        "--devices",
        "40",
        "--duration",
        "2s",
        "--concurrency",
        "8",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("result: PASSED"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(figure(&report, "devices connected"), 40.0);
    assert!(figure(&report, "handshakes per second") > 0.0);
    // The baseline ran in the same run, so the figure carries a ratio.
    let handshakes = report["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "handshakes per second")
        .unwrap();
    assert!(handshakes["ratio"].as_f64().unwrap() > 0.0, "{handshakes}");
    assert!(figure(&report, "gateway memory per idle connection") >= 0.0);
    let ops = report["operations"].as_array().unwrap();
    let hello = ops.iter().find(|o| o["op"] == "hello").unwrap();
    assert_eq!(hello["count"], 40);
    let reconnect = ops.iter().find(|o| o["op"] == "reconnect").unwrap();
    assert_eq!(reconnect["count"], 40);
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
    let out_dir = tempfile::tempdir().unwrap();
    let out = loadtest(&[
        "baseline",
        "--devices",
        "10",
        "--bulk-mib",
        "4",
        "--sqlite-rows",
        "2000",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("report.json")).unwrap())
            .unwrap();
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
