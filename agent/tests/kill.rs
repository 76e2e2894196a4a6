//! kill -9 at any moment loses and duplicates nothing: the real `agent` binary records
//! and syncs (as the daemon and as one-off `sync`s) against a real gateway while the
//! test SIGKILLs it at random points; afterwards every record the CLI confirmed is
//! stored exactly once, every stored record was one the CLI was asked to make, and the
//! stored chain verifies.

mod common;
#[path = "kill/crash_points.rs"]
mod crash_points;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{assert_unique, stored_texts};
use test_support::{Backend, TestGateway};
use tokio::process::{Child, Command};

fn agent(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent"));
    cmd.arg("--data")
        .arg(data)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn ok(mut cmd: Command) -> String {
    let out = cmd.output().await.expect("run agent");
    assert!(
        out.status.success(),
        "agent failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Enrolls `data` as the gateway's development device 1 through the CLI and points it
/// at the gateway, with the `extra` settings.
async fn enroll(gw: &TestGateway, data: &Path, extra: &[(&str, &str)]) {
    let (device, _) = gw.device(1);
    let bundle = pki::layout::device_dir(&gw.pki_dir(), &device);
    let mut enroll = agent(data);
    enroll.arg("enroll").arg("bundle").arg(&bundle);
    ok(enroll).await;
    let address = gw.gateway.device_addr().to_string();
    let base = [("gateway", address.as_str()), ("server_name", "localhost")];
    for (key, value) in base.iter().chain(extra) {
        let mut set = agent(data);
        set.args(["config", "set", key, value]);
        ok(set).await;
    }
}

fn record(data: &Path, text: &str) -> Command {
    let mut cmd = agent(data);
    cmd.args([
        "record",
        "--case",
        "CASE-KILL-1",
        "--target",
        "Warehouse 12",
        "--stage",
        "investigation",
        "--action-kind",
        "inspection",
        "--officer",
        "ZF-0001",
        "--text",
        text,
    ]);
    cmd
}

/// Waits for `child` or kills it (SIGKILL) after `after`; true when it was killed.
async fn kill_after(child: &mut Child, after: Duration) -> bool {
    tokio::select! {
        _ = child.wait() => false,
        () = tokio::time::sleep(after) => {
            child.kill().await.expect("SIGKILL");
            true
        }
    }
}

fn ms(range: std::ops::Range<u64>) -> Duration {
    Duration::from_millis(rand::random_range(range))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_moment_loses_and_duplicates_nothing() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    enroll(
        &gw,
        data,
        &[
            ("backoff_initial_ms", "50"),
            ("backoff_max_secs", "1"),
            ("records_per_push", "7"),
        ],
    )
    .await;

    let mut confirmed = HashSet::new();
    let mut attempted = HashSet::new();
    let (mut kills_record, mut kills_daemon, mut kills_sync) = (0, 0, 0);
    let mut daemon = agent(data).arg("run").spawn().unwrap();
    for i in 0..160 {
        let text = format!("k{i}");
        attempted.insert(text.clone());
        let mut child = record(data, &text).spawn().unwrap();
        if rand::random_range(0..4) == 0 && kill_after(&mut child, ms(0..60)).await {
            kills_record += 1;
        } else {
            let out = child.wait_with_output().await.unwrap();
            if out.status.success() {
                let line = String::from_utf8(out.stdout).unwrap();
                assert!(line.starts_with("queued record "), "{line}");
                confirmed.insert(text);
            }
        }
        if i % 16 == 8 {
            // The daemon dies at a random moment and comes back.
            if kill_after(&mut daemon, ms(0..150)).await {
                kills_daemon += 1;
            }
            daemon = agent(data).arg("run").spawn().unwrap();
        }
        if i % 20 == 13 {
            // A one-off sync, killed mid-way.
            let mut sync = agent(data).arg("sync").spawn().unwrap();
            if kill_after(&mut sync, ms(20..200)).await {
                kills_sync += 1;
            }
        }
    }
    daemon.kill().await.unwrap();

    // Whatever is left goes up now.
    let mut drained = false;
    for _ in 0..10 {
        let out = agent(data).arg("sync").output().await.unwrap();
        let mut status = agent(data);
        status.args(["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&ok(status).await).unwrap();
        if out.status.success() && status["queued_records"] == 0 {
            drained = true;
            assert_eq!(status["refused_records"], serde_json::json!([]));
            let made = status["next_sequence"].as_u64().unwrap() - 1;
            let stored = stored_texts(&gw, 1).await;
            assert_eq!(stored.len() as u64, made, "every sealed record is stored");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(drained, "the outbox did not drain");
    let stored = stored_texts(&gw, 1).await;
    assert_unique(&stored);
    let stored: HashSet<String> = stored.into_iter().collect();
    for text in &confirmed {
        assert!(stored.contains(text), "confirmed record {text} was lost");
    }
    for text in &stored {
        assert!(attempted.contains(text), "{text} was never asked for");
    }
    eprintln!(
        "{} records confirmed, {} stored; SIGKILLed {kills_record} `record`s, {kills_daemon} daemons, {kills_sync} `sync`s",
        confirmed.len(),
        stored.len()
    );
    assert!(
        kills_record > 0 && kills_daemon > 0,
        "nothing was killed: the test proved nothing"
    );
    gw.gateway.shutdown().await;
}
