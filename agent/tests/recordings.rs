//! Recordings end to end (DOMAIN R2) from the agent's side, against a real gateway:
//! upload with the local copy deleted only after "stored", earliest deadline first
//! within a bandwidth limit, resume from the gateway's offset after the agent (the CLI
//! process, SIGKILLed) or the gateway stops mid-transfer, corrupted bytes refused with
//! the copy kept, and deadlines on gateway time whatever the device clock says.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent::outbox::recordings::RecordingState;
use agent::recordings::NewRecording;
use agent::{Agent, AgentConfig};
use clock::ManualClock;
use clock::{Clock, ManualClock as DeviceClock};
use common::{agent_for, agent_with, config_for};
use protocol::Sha256Hash;
use protocol::deadline::UploadState;
use protocol::message::MediaKind;
use test_support::{Backend, TestGateway, backends};

const T0: i64 = 1_780_000_000_000;
const HOUR: i64 = 3_600_000;

/// A file of `size` random bytes in `dir`.
fn media_file(dir: &Path, name: &str, size: usize) -> (PathBuf, Sha256Hash) {
    let bytes: Vec<u8> = (0..size).map(|_| rand::random::<u8>()).collect();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, Sha256Hash::of(&bytes))
}

fn new(file: PathBuf, ended_at: i64) -> NewRecording {
    NewRecording {
        file,
        media: MediaKind::Video,
        started_at: ended_at - HOUR / 2,
        ended_at,
        case_number: Some("CASE-2026-0042".into()),
        officer: Some("ZF-0001".into()),
    }
}

async fn sync(agent: &Agent) -> agent::SyncReport {
    let mut session = agent.connect().await.expect("connect");
    let report = agent.sync_once(&mut session.conn).await.expect("sync");
    session.close().await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_uploaded_and_the_local_copy_deleted_only_once_stored() {
    for backend in backends().await {
        let gw = TestGateway::start(&backend, 1).await;
        let dir = tempfile::tempdir().unwrap();
        let camera = tempfile::tempdir().unwrap();
        let config = AgentConfig {
            upload_chunk_bytes: 1 << 20,
            ..config_for(&gw)
        };
        let agent = agent_with(&gw, 1, dir.path(), config, Arc::new(clock::SystemClock)).await;
        let (file, sha) = media_file(camera.path(), "clip.mp4", (3 << 20) + 17);
        let added = agent.add_recording(new(file.clone(), T0)).await.unwrap();
        assert!(!file.exists(), "the agent took the file");
        assert!(added.path.exists());
        assert_eq!(added.sha256, sha);
        assert_eq!(added.size, (3 << 20) + 17);
        assert_eq!(agent.status().await.unwrap().pending_recordings, 1);

        let report = sync(&agent).await;
        assert_eq!(report.recordings_announced, 1);
        assert_eq!(
            report.recordings_stored,
            1,
            "{}: {report:?}",
            backend.name()
        );
        assert_eq!(report.recording_bytes_sent, added.size);
        // In fixed 1 MiB chunks, 3 MiB + 17 bytes would take 4 requests. After the first,
        // the agent sizes each chunk to about a second at the rate it measured, so on any
        // link above 1 MiB/s (loopback by far) the rest goes in fewer.
        let chunks = gw
            .gateway
            .state()
            .metrics
            .requests
            .with_label_values(&["upload_chunk", "ok"])
            .get();
        assert!((2..4).contains(&chunks), "{chunks} upload requests");
        let row = gw
            .gateway
            .state()
            .store
            .recording(added.recording_id)
            .await
            .unwrap()
            .unwrap();
        assert!(row.is_stored());
        assert_eq!(row.sha256, sha);
        assert!(!added.path.exists(), "deleted after the gateway stored it");
        let local = agent
            .outbox()
            .recording(added.recording_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(local.state, RecordingState::Stored);
        assert_eq!(agent.status().await.unwrap().pending_recordings, 0);
        assert_eq!(sync(&agent).await.recording_bytes_sent, 0);
        gw.gateway.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_earliest_deadline_goes_first_within_the_bandwidth_limit() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let camera = tempfile::tempdir().unwrap();
    // 64 KiB/s with one second of burst: the first 64 KiB recording goes at once, each
    // later one waits about a second.
    let config = AgentConfig {
        upload_bytes_per_sec: 64 << 10,
        ..config_for(&gw)
    };
    let agent = agent_with(&gw, 1, dir.path(), config, Arc::new(clock::SystemClock)).await;
    let mut ids = Vec::new();
    // Added out of order: the one that ended first has the earliest deadline.
    for (name, ended) in [
        ("late", T0 + 3 * HOUR),
        ("first", T0),
        ("middle", T0 + HOUR),
    ] {
        let (file, _) = media_file(camera.path(), name, 64 << 10);
        ids.push((name, agent.add_recording(new(file, ended)).await.unwrap()));
    }
    let mut session = agent.connect().await.unwrap();
    let quic = session.conn.quic().clone();
    let task = {
        let agent = agent.clone();
        tokio::spawn(async move {
            let result = agent.sync_once(&mut session.conn).await;
            (result, session)
        })
    };
    let state = |name: &str| {
        let id = ids.iter().find(|(n, _)| *n == name).unwrap().1.recording_id;
        let agent = agent.clone();
        async move { agent.outbox().recording(id).await.unwrap().unwrap().state }
    };
    // Once the first is stored, the next one waits about a second for the limit: cut
    // the link then.
    let first_stored = || async { state("first").await == RecordingState::Stored };
    assert!(test_support::eventually(Duration::from_secs(20), first_stored).await);
    quic.close(quinn::VarInt::from_u32(0), b"link lost");
    let (result, _session) = task.await.unwrap();
    assert!(result.is_err(), "the sync was cut");
    assert_eq!(state("first").await, RecordingState::Stored);
    assert_eq!(state("middle").await, RecordingState::Pending);
    assert_eq!(state("late").await, RecordingState::Pending);
    let report = sync(&agent).await;
    assert_eq!(report.recordings_stored, 2);
    assert_eq!(state("late").await, RecordingState::Stored);
    gw.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_interrupted_by_a_gateway_restart_resumes_from_its_offset() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let addr = gw.gateway.device_addr();
    let dir = tempfile::tempdir().unwrap();
    let camera = tempfile::tempdir().unwrap();
    let config = AgentConfig {
        upload_chunk_bytes: 256 << 10,
        upload_bytes_per_sec: 1 << 20,
        ..config_for(&gw)
    };
    let agent = agent_with(&gw, 1, dir.path(), config, Arc::new(clock::SystemClock)).await;
    let size = 4 << 20;
    let (file, sha) = media_file(camera.path(), "long.mp4", size);
    let added = agent.add_recording(new(file, T0)).await.unwrap();

    let mut session = agent.connect().await.unwrap();
    let task = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.sync_once(&mut session.conn).await })
    };
    // Stop the gateway once it holds part of the recording (4 MiB at 1 MiB/s).
    let store = gw.gateway.state().store.clone();
    let id = added.recording_id;
    let receiving = || async {
        store
            .recording(id)
            .await
            .unwrap()
            .is_some_and(|r| r.bytes_received > 0)
    };
    assert!(test_support::eventually(Duration::from_secs(20), receiving).await);
    let (data, mut gw_config) = gw.stop().await;
    assert!(
        task.await.unwrap().is_err(),
        "the gateway went away mid-transfer"
    );
    assert!(
        added.path.exists(),
        "the copy stays while the gateway lacks it"
    );

    gw_config.device.listen = addr;
    let gw = TestGateway::start_with(gw_config, data, Arc::new(clock::SystemClock)).await;
    let held = gw
        .gateway
        .state()
        .store
        .recording(added.recording_id)
        .await
        .unwrap()
        .unwrap()
        .bytes_received;
    assert!(held > 0 && held < size as u64, "partly held: {held}");
    let report = sync(&agent).await;
    assert_eq!(report.recordings_stored, 1);
    assert_eq!(
        report.recording_bytes_sent,
        size as u64 - held,
        "resumed from the gateway's offset, not from 0"
    );
    let row = gw
        .gateway
        .state()
        .store
        .recording(added.recording_id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.is_stored());
    assert_eq!(row.sha256, sha);
    assert!(!added.path.exists());
    gw.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_bytes_are_refused_and_the_local_copy_kept() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let camera = tempfile::tempdir().unwrap();
    let agent = agent_for(&gw, 1, dir.path()).await;
    let (file, _) = media_file(camera.path(), "clip.mp4", 200_000);
    let added = agent.add_recording(new(file, T0)).await.unwrap();
    // A bit flips in the device's copy after it was registered.
    let mut bytes = std::fs::read(&added.path).unwrap();
    bytes[1234] ^= 0x40;
    std::fs::write(&added.path, &bytes).unwrap();

    let report = sync(&agent).await;
    assert_eq!(report.recordings_stored, 0);
    let local = agent
        .outbox()
        .recording(added.recording_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(local.state, RecordingState::Refused);
    assert!(local.reason.unwrap().contains("no longer matches"));
    assert!(added.path.exists(), "the copy is kept");
    let row = gw
        .gateway
        .state()
        .store
        .recording(added.recording_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!row.is_stored());
    // A refused recording does not hold back the next one.
    let (file, _) = media_file(camera.path(), "next.mp4", 1000);
    agent.add_recording(new(file, T0 + 1)).await.unwrap();
    assert_eq!(sync(&agent).await.recordings_stored, 1);
    gw.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_device_clock_does_not_move_the_deadline_and_a_day_offline_is_late() {
    let gw_clock = ManualClock::new(T0);
    let gw = TestGateway::start_with_clock(&Backend::Sqlite, 1, gw_clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let camera = tempfile::tempdir().unwrap();
    // The device's clock runs two hours fast.
    let device_clock = DeviceClock::new(T0 + 2 * HOUR);
    let agent = agent_with(
        &gw,
        1,
        dir.path(),
        config_for(&gw),
        Arc::new(device_clock.clone()),
    )
    .await;
    let (file, _) = media_file(camera.path(), "clip.mp4", 5000);
    // It ended "now" by the device's clock: really at T0.
    let added = agent
        .add_recording(new(file, device_clock.now()))
        .await
        .unwrap();
    // Offline for 25 hours.
    gw_clock.advance(25 * HOUR);
    device_clock.advance(25 * HOUR);
    let report = sync(&agent).await;
    assert_eq!(report.recordings_stored, 1);
    let local = agent
        .outbox()
        .recording(added.recording_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        local.gateway_deadline,
        Some(T0 + 24 * HOUR),
        "deadline on gateway time"
    );
    let row = gw
        .gateway
        .state()
        .store
        .recording(added.recording_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.deadline, T0 + 24 * HOUR);
    assert_eq!(row.state, UploadState::UploadedLate);
    gw.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_resumes_its_upload_and_deletes_only_after_stored() {
    use tokio::process::Command;
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let camera = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent"));
        cmd.arg("--data")
            .arg(data)
            .args(args)
            .env("RUST_LOG", "error");
        cmd.kill_on_drop(true);
        cmd
    };
    let (device, _) = gw.device(1);
    let bundle = pki::layout::device_dir(&gw.pki_dir(), &device);
    let addr = gw.gateway.device_addr().to_string();
    for args in [
        vec!["enroll", "bundle", bundle.to_str().unwrap()],
        vec!["config", "set", "gateway", &addr],
        vec!["config", "set", "server_name", "localhost"],
        vec!["config", "set", "upload_chunk_bytes", "262144"],
        vec!["config", "set", "upload_bytes_per_sec", "1048576"],
    ] {
        assert!(cli(&args).status().await.unwrap().success(), "{args:?}");
    }
    let size = 4 << 20;
    let (file, sha) = media_file(camera.path(), "clip.mp4", size);
    let out = cli(&[
        "recording",
        "add",
        file.to_str().unwrap(),
        "--start",
        "2026-05-01T08:00:00Z",
        "--end",
        "2026-05-01T08:30:00Z",
        "--case",
        "CASE-2026-0042",
        "--officer",
        "ZF-0001",
    ])
    .output()
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let id: uuid::Uuid = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let copy = data.join("media").join(id.to_string());
    assert!(copy.exists());

    // SIGKILL the uploading agent mid-transfer.
    let mut sync = cli(&["sync"]).spawn().unwrap();
    // Kill it once the gateway holds part of the recording (4 MiB at 1 MiB/s).
    let store = gw.gateway.state().store.clone();
    let receiving = || async {
        store
            .recording(id)
            .await
            .unwrap()
            .is_some_and(|r| r.bytes_received > 0)
    };
    assert!(test_support::eventually(Duration::from_secs(20), receiving).await);
    sync.kill().await.unwrap();
    assert!(copy.exists(), "the copy stays while the gateway lacks it");
    let held = gw
        .gateway
        .state()
        .store
        .recording(id)
        .await
        .unwrap()
        .unwrap()
        .bytes_received;
    assert!(held > 0 && held < size as u64, "partly held: {held}");

    let out = cli(&["sync"]).output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8(out.stdout).unwrap();
    // The gateway may have taken in a few more bytes that were in flight at the kill,
    // so the resume starts at `held` or later, never at 0.
    let sent: u64 = summary
        .split("recordings stored (")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {summary:?}"));
    assert!(summary.contains("1 recordings stored"), "{summary}");
    assert!(
        sent > 0 && sent <= size as u64 - held,
        "resumed from at least {held}: sent {sent}"
    );
    let row = gw
        .gateway
        .state()
        .store
        .recording(id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.is_stored());
    assert_eq!(row.sha256, sha);
    assert!(!copy.exists(), "deleted once stored");
    let list = cli(&["recording", "list"]).output().await.unwrap();
    assert!(String::from_utf8(list.stdout).unwrap().contains("Stored"));
    gw.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_cut_by_a_crash_is_finished_and_a_vanished_file_is_reported() {
    use agent::outbox::recordings::LocalRecording;
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let camera = tempfile::tempdir().unwrap();
    let agent = agent_for(&gw, 1, dir.path()).await;
    std::fs::create_dir_all(agent.media_dir()).unwrap();
    // Two registrations a crash interrupted: one before its file was moved, one after
    // the move but before the hash was written.
    let mut cut = Vec::new();
    for (i, moved) in [(0, false), (1, true)] {
        let (file, sha) = media_file(camera.path(), &format!("cut-{i}"), 10_000 + i);
        let id = uuid::Uuid::new_v4();
        let path = agent.media_dir().join(id.to_string());
        if moved {
            std::fs::rename(&file, &path).unwrap();
        }
        let row = LocalRecording {
            recording_id: id,
            path: path.clone(),
            source: Some(file),
            sha256: Sha256Hash::ZERO,
            size: 0,
            media: MediaKind::Audio,
            started_at: T0,
            ended_at: T0 + i as i64,
            case_number: None,
            officer: None,
            state: RecordingState::Adding,
            announced: false,
            gateway_deadline: None,
            gateway_offset: 0,
            stored_at: None,
            reason: None,
        };
        agent.outbox().insert_recording(&row, T0).await.unwrap();
        cut.push((id, sha));
    }
    // And a registered recording whose file someone deleted.
    let (file, _) = media_file(camera.path(), "gone", 500);
    let gone = agent.add_recording(new(file, T0 + 5)).await.unwrap();
    std::fs::remove_file(&gone.path).unwrap();

    let report = sync(&agent).await;
    assert_eq!(report.recordings_stored, 2, "{report:?}");
    for (id, sha) in cut {
        let row = gw
            .gateway
            .state()
            .store
            .recording(id)
            .await
            .unwrap()
            .unwrap();
        assert!(row.is_stored());
        assert_eq!(row.sha256, sha, "hashed after the move");
    }
    let gone = agent
        .outbox()
        .recording(gone.recording_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.state, RecordingState::Refused);
    assert!(gone.reason.unwrap().contains("missing"));
    gw.gateway.shutdown().await;
}

/// File modes (issue 20, point 5): the data folder is the device user's alone, the
/// local store and a taken recording are 0600 whatever mode they came with, and a
/// symbolic link is refused rather than taken (taking the link would leave the
/// recording itself behind).
#[tokio::test]
async fn the_data_folder_store_and_recordings_are_private_and_links_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("device");
    let camera = tempfile::tempdir().unwrap();
    let agent = agent_for(&gw, 1, &data).await;
    let (file, _) = media_file(camera.path(), "clip.mp4", 10_000);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = camera.path().join("link.mp4");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let refused = agent.add_recording(new(link, T0)).await.unwrap_err();
    assert!(
        refused.is_usage() && refused.to_string().contains("symbolic link"),
        "{refused}"
    );
    assert!(file.exists(), "nothing was taken");

    let added = agent.add_recording(new(file, T0)).await.unwrap();
    assert_eq!(mode(&added.path), 0o600);
    assert_eq!(mode(added.path.parent().unwrap()), 0o700);
    assert_eq!(mode(&data), 0o700);
    for db in ["agent.db", "agent.db-wal", "agent.db-shm"] {
        assert_eq!(mode(&data.join(db)), 0o600, "{db}");
    }
    gw.gateway.shutdown().await;
}
