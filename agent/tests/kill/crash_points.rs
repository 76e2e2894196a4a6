//! The agent stopped (SIGKILL, from a failpoint) at each of its durable steps in turn:
//! acks received and applied, a roster delta received and applied, a recording's
//! "stored" heard and its copy deleted. After every stop nothing acknowledged is lost,
//! nothing is stored twice, the chain verifies, the device has deleted no recording the
//! gateway does not hold, and the roster is whole. The steps: docs/durability.md.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use agent::outbox::recordings::RecordingState;
use agent::{Agent, AgentConfig};
use sha2::Digest;
use test_support::{Backend, TestGateway};

use crate::{agent, enroll, ok, record};

/// The agent's crash points, in the order one `sync` meets them.
const POINTS: &[&str] = &[
    "agent.acks_received",
    "agent.acks_applied",
    "agent.roster_received",
    "agent.roster_applied",
    "agent.stored_heard",
    "agent.copy_deleted",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_stopped_at_every_durable_step_loses_nothing_acknowledged() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let camera = tempfile::tempdir().unwrap();
    let (device, _) = gw.device(1);
    enroll(&gw, data, &[("upload_chunk_bytes", "65536")]).await;

    let mut made = Vec::new();
    for (round, point) in POINTS.iter().enumerate() {
        // Work for every step of a sync: records, a roster change, a recording.
        for i in 0..3 {
            let text = format!("r{round}-{i}");
            ok(record(data, &text)).await;
            made.push(text);
        }
        officer(&gw, round).await;
        let clip = camera.path().join(format!("clip-{round}.mp4"));
        std::fs::write(&clip, vec![round as u8; 200_000]).unwrap();
        let mut add = agent(data);
        add.args(["recording", "add"]).arg(&clip).args([
            "--start",
            "1780000000000",
            "--end",
            "1780000060000",
        ]);
        ok(add).await;

        let mut sync = agent(data);
        sync.arg("sync")
            .env("FAILPOINTS", format!("{point}=return(crash)"));
        let out = sync.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{point} was not reached: {stderr}"
        );
        assert!(
            stderr.contains(&format!("failpoint {point}: stopping the process")),
            "{stderr}"
        );
        check(&gw, data, &made, &format!("a stop at {point}")).await;
    }

    // A sync without failpoints finishes everything.
    ok({
        let mut sync = agent(data);
        sync.arg("sync");
        sync
    })
    .await;
    check(&gw, data, &made, "the last sync").await;
    let local = Agent::open(data, AgentConfig::load(data).unwrap())
        .await
        .unwrap();
    let status = local.status().await.unwrap();
    assert_eq!(status.queued_records, 0);
    assert_eq!(status.pending_recordings, 0);
    let store = &gw.gateway.state().store;
    assert_eq!(status.roster_version, store.roster_version().await.unwrap());
    assert_eq!(
        status.roster_size,
        POINTS.len() as u64,
        "every officer, once"
    );
    let stored: Vec<String> = store
        .device_records(&device)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record.content.text)
        .collect();
    assert_eq!(stored, made, "every record stored exactly once, in order");
    for r in local.recordings().await.unwrap() {
        assert_eq!(r.state, RecordingState::Stored);
        assert!(!r.path.exists(), "the copy is deleted once stored");
    }
    local.outbox().close().await;
    gw.gateway.shutdown().await;
}

/// Adds officer `n` to the roster (a new roster version for the device to fetch).
async fn officer(gw: &TestGateway, n: usize) {
    let record = crate::common::officer_record(&format!("ZF-{:04}", 100 + n));
    crate::common::list_officer(gw, &record, 1_780_000_000_000).await;
}

/// What must hold after any stop (docs/durability.md), read from the agent's files
/// (the process is gone) and the gateway's store.
async fn check(gw: &TestGateway, data: &Path, made: &[String], after: &str) {
    let local = Agent::open(data, AgentConfig::load(data).unwrap())
        .await
        .unwrap();
    let queued: Vec<String> = local
        .outbox()
        .queued_records(u32::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.record.content.text)
        .collect();
    let store = &gw.gateway.state().store;
    let device = local.device_id().clone();
    let stored = store.device_records(&device).await.unwrap();
    let texts: Vec<&str> = stored
        .iter()
        .map(|r| r.record.content.text.as_str())
        .collect();
    assert!(
        stored.iter().all(|r| r.chain_break.is_none())
            && protocol::chain::verify_chain(&device, stored.iter().map(|r| &r.record)).is_ok(),
        "after {after}: the chain verifies"
    );
    let mut seen = std::collections::HashSet::new();
    for text in &texts {
        assert!(seen.insert(*text), "after {after}: {text} stored twice");
        assert!(
            made.iter().any(|m| m == text),
            "after {after}: {text} was never made"
        );
    }
    for text in made {
        if !queued.contains(text) {
            assert!(
                texts.contains(&text.as_str()),
                "after {after}: {text} left the outbox but the gateway does not hold it"
            );
        }
    }
    for r in local.recordings().await.unwrap() {
        if r.path.exists() {
            continue;
        }
        let row = store.recording(r.recording_id).await.unwrap();
        assert!(
            row.is_some_and(|row| row.is_stored()),
            "after {after}: recording {} deleted but not stored",
            r.recording_id
        );
        let held = gw
            .gateway
            .state()
            .media
            .local_path(&r.sha256)
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| protocol::Sha256Hash(sha2::Sha256::digest(&b).into()));
        assert_eq!(held, Some(r.sha256), "after {after}: held with its bytes");
    }
    assert!(local.status().await.unwrap().roster_version <= store.roster_version().await.unwrap());
    local.outbox().close().await;
}
