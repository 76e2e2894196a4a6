//! The `agent` binary as a terminal's script uses it: enrollment by CSR, config,
//! record, status, check-id, sync, and the exit codes (64 usage or configuration, 69
//! gateway unreachable, 77 device refused; check-id one per verdict); the rules the
//! terminal applies before it seals a record (DOMAIN R2, R3, R4).

mod common;

use std::path::Path;
use std::process::Output;

use protocol::DeviceId;
use protocol::domain::{CertificateStatus, DeviceKind, DeviceStatus};
use store::{NewDevice, OfficerRecord};
use test_support::{Backend, TestGateway, validity};
use tokio::process::Command;

fn agent(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent"));
    cmd.arg("--data")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "error");
    cmd
}

async fn run(data: &Path, args: &[&str]) -> Output {
    agent(data, args).output().await.expect("run agent")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn ok(data: &Path, args: &[&str]) -> String {
    let o = run(data, args).await;
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

async fn fails(data: &Path, args: &[&str], code: i32) -> String {
    let o = run(data, args).await;
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
    String::from_utf8(o.stderr).unwrap()
}

/// Runs `check-id` and returns what it printed, checking its exit code (0 valid, 10
/// withdrawn, 11 revoked, 12 expired, 13 auxiliary, 14 unknown).
async fn check_id(data: &Path, args: &[&str], code: i32) -> String {
    let o = run(data, args).await;
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

const RECORD: &[&str] = &[
    "record",
    "--case",
    "CASE-CLI-1",
    "--target",
    "Stall 3",
    "--stage",
    "service_execution",
    "--action-kind",
    "seizure",
    "--officer",
    "ZF-0001",
    "--officer",
    "ZF-0002",
    "--coordinates",
    "31.2304,121.4737",
    "--text",
    "goods sealed",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrolled_by_csr_records_syncs_and_reports_status() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let data = tempfile::tempdir().unwrap();
    let data = data.path();

    // Before enrollment, every command that needs the identity is a usage error.
    let err = fails(data, RECORD, 64).await;
    assert!(err.contains("not enrolled"), "{err}");

    // The key is made on the device; only the CSR leaves it.
    let csr_path = data.join("out.csr");
    ok(
        data,
        &[
            "enroll",
            "request",
            "--device-id",
            "trm-0007",
            "--serial",
            "SN-TRM-0007",
            "--out",
            csr_path.to_str().unwrap(),
        ],
    )
    .await;
    let csr = std::fs::read_to_string(&csr_path).unwrap();
    assert!(!csr.contains("PRIVATE KEY"));
    // The equipment manager signs it and enrolls the device at the gateway.
    let ca = gw.fleet_ca();
    let device = DeviceId::new("trm-0007").unwrap();
    let v = validity(-time::Duration::hours(1), time::Duration::days(30));
    let signed = ca.sign_device_csr(&csr, &device, "SN-TRM-0007", v).unwrap();
    gw.gateway
        .state()
        .store
        .enroll_device(
            &NewDevice {
                id: device.clone(),
                kind: DeviceKind::Terminal,
                serial: "SN-TRM-0007".into(),
                certificate_fingerprint: signed.fingerprint(),
                certificate_not_after: (v.not_after.unix_timestamp() * 1000),
                agency: None,
            },
            "test",
            0,
        )
        .await
        .unwrap();
    let cert = data.join("signed.pem");
    std::fs::write(&cert, &signed.cert_pem).unwrap();
    let ca_file = data.join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let out = ok(
        data,
        &[
            "enroll",
            "install",
            cert.to_str().unwrap(),
            "--ca",
            ca_file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(out.contains("trm-0007"), "{out}");

    // No gateway configured: discovery (shown by config show).
    let shown = ok(data, &["config", "show"]).await;
    assert!(shown.contains("mDNS"), "{shown}");
    let addr = gw.gateway.device_addr().to_string();
    ok(data, &["config", "set", "gateway", &addr]).await;
    ok(data, &["config", "set", "server_name", "localhost"]).await;

    let out = ok(data, RECORD).await;
    assert!(out.starts_with("queued record 1 "), "{out}");
    let out = check_id(data, &["check-id", "ZF-0001", "--offline"], 14).await;
    assert!(
        out.starts_with("unknown (offline, roster never synced"),
        "{out}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&ok(data, &["status", "--json"]).await).unwrap();
    assert_eq!(status["queued_records"], 1);
    assert_eq!(status["queued_checks"], 1);
    assert_eq!(status["device_id"], "trm-0007");

    let out = ok(data, &["sync"]).await;
    assert!(out.contains("1 records sent (1 stored"), "{out}");
    let status = ok(data, &["status"]).await;
    assert!(status.contains("queued records    0"), "{status}");
    let out = check_id(data, &["check-id", "ZF-4242"], 14).await;
    assert!(out.starts_with("unknown (online, roster version"), "{out}");
    assert!(status.contains("clock skew"), "{status}");
    let stored = gw
        .gateway
        .state()
        .store
        .device_records(&device)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].record.content.coordinates.unwrap().lat_e6,
        31_230_400
    );

    // A revoked device is refused, and told so: exit 77, not "try again".
    gw.gateway
        .state()
        .store
        .set_device_status(&device, DeviceStatus::Revoked, "test", "stolen", 0)
        .await
        .unwrap();
    ok(data, RECORD).await;
    let err = fails(data, &["sync"], 77).await;
    assert!(err.contains("revoked"), "{err}");
    gw.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_configuration_errors_exit_64_and_an_absent_gateway_69() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let (device, _) = gw.device(1);
    let bundle = pki::layout::device_dir(&gw.pki_dir(), &device);
    ok(data, &["enroll", "bundle", bundle.to_str().unwrap()]).await;
    // Installing again needs --force.
    let err = fails(data, &["enroll", "bundle", bundle.to_str().unwrap()], 64).await;
    assert!(err.contains("--force"), "{err}");

    fails(data, &["record", "--case", "C"], 64).await;
    fails(data, &["no-such-command"], 64).await;
    let err = fails(data, &["config", "set", "sync_interval_secs", "0"], 64).await;
    assert!(err.contains("sync_interval_secs"), "{err}");
    let err = fails(data, &["config", "set", "gatway", "x:1"], 64).await;
    assert!(err.contains("unknown config key"), "{err}");
    let err = fails(
        data,
        &[
            "record",
            "--case",
            " ",
            "--target",
            "T",
            "--stage",
            "archive",
            "--action-kind",
            "archive",
        ],
        64,
    )
    .await;
    assert!(err.contains("case_number"), "{err}");
    std::fs::write(data.join("agent.toml"), "sync_interval_secs = \"soon\"\n").unwrap();
    let err = fails(data, &["status"], 64).await;
    assert!(err.contains("sync_interval_secs"), "{err}");
    std::fs::remove_file(data.join("agent.toml")).unwrap();

    // Nothing listens at this address: the gateway is unavailable (retry later).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    ok(data, &["config", "set", "connect_timeout_secs", "1"]).await;
    let err = fails(data, &["--gateway", &addr, "sync"], 69).await;
    assert!(err.contains("did not answer"), "{err}");
    // check-id falls back to the roster.
    let out = check_id(data, &["--gateway", &addr, "check-id", "ZF-0001"], 14).await;
    assert!(out.contains("offline"), "{out}");
    gw.gateway.shutdown().await;
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// `record` with these extra arguments after the case, target and stage.
fn record_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "record",
        "--case",
        "CASE-RULES-1",
        "--target",
        "Stall 9",
        "--stage",
        "service_execution",
        "--text",
        "goods sealed",
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_refuses_unknown_kinds_and_future_times_warns_and_exits_per_verdict() {
    use CertificateStatus::{Revoked, Valid, Withdrawn};
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let day = 24 * 3_600_000;
    for (number, status, auxiliary, valid_until) in [
        ("ZF-0001", Valid, false, None),
        ("ZF-0002", Valid, false, Some(now_ms() + 365 * day)),
        ("ZF-0003", Withdrawn, false, None),
        ("ZF-0004", Revoked, false, None),
        ("ZF-0005", Valid, false, Some(now_ms() - day)),
        ("FZ-0001", Withdrawn, true, None),
    ] {
        let officer = OfficerRecord {
            certificate_status: status,
            auxiliary,
            valid_until,
            ..common::officer_record(number)
        };
        common::list_officer(&gw, &officer, 0).await;
    }
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let (device, _) = gw.device(1);
    let bundle = pki::layout::device_dir(&gw.pki_dir(), &device);
    ok(data, &["enroll", "bundle", bundle.to_str().unwrap()]).await;
    let addr = gw.gateway.device_addr().to_string();
    ok(data, &["config", "set", "gateway", &addr]).await;
    ok(data, &["config", "set", "server_name", "localhost"]).await;

    // A misspelt kind is refused before anything is sealed, naming the known ones
    // (DOMAIN's vocabulary before the first sync).
    let err = fails(data, &record_args(&["--action-kind", "seizzure"]), 64).await;
    assert!(err.contains("\"seizzure\" is not known"), "{err}");
    assert!(
        err.contains("seizure") && err.contains("inspection"),
        "{err}"
    );
    // A time beyond the clock tolerance is refused.
    let an_hour_ahead = (now_ms() + 3_600_000).to_string();
    let err = fails(
        data,
        &record_args(&["--action-kind", "inspection", "--at", &an_hour_ahead]),
        64,
    )
    .await;
    assert!(err.contains("ahead of this device's clock"), "{err}");
    // Before the roster is synced, the terminal says it cannot check the officers.
    let o = run(
        data,
        &record_args(&["--action-kind", "seizure", "--officer", "ZF-0001"]),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let warned = String::from_utf8_lossy(&o.stderr);
    assert!(warned.contains("never synced"), "{warned}");
    assert!(warned.contains("audio-video"), "{warned}");
    let status: serde_json::Value =
        serde_json::from_str(&ok(data, &["status", "--json"]).await).unwrap();
    assert_eq!(
        status["queued_records"], 1,
        "refused records are not queued"
    );

    let out = ok(data, &["sync"]).await;
    assert!(out.contains("1 stored"), "{out}");

    // One exit code per verdict, online and offline alike.
    let verdicts = [
        ("ZF-0001", 0, "valid"),
        ("ZF-0003", 10, "withdrawn"),
        ("ZF-0004", 11, "revoked"),
        ("ZF-0005", 12, "expired"),
        ("FZ-0001", 13, "auxiliary"),
        ("ZF-9999", 14, "unknown"),
    ];
    for (number, code, word) in verdicts {
        for how in [None, Some("--offline")] {
            let mut args = vec!["check-id", number];
            args.extend(how);
            let o = run(data, &args).await;
            assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(out.starts_with(word), "{args:?}: {out}");
            if number == "FZ-0001" {
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(err.contains("not an enforcement officer"), "{err}");
            }
        }
    }

    // With the roster synced: auxiliary staff do not count towards two officers.
    let o = run(
        data,
        &record_args(&[
            "--action-kind",
            "Seizure",
            "--officer",
            "ZF-0001",
            "--officer",
            "FZ-0001",
        ]),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let warned = String::from_utf8_lossy(&o.stderr);
    assert!(
        warned.contains("seizure needs 2 certified officers; the roster counts 1"),
        "{warned}"
    );
    assert!(warned.contains("FZ-0001 (auxiliary)"), "{warned}");
    // Two certified officers and a linked recording: no warning.
    let recording = uuid::Uuid::new_v4().to_string();
    let o = run(
        data,
        &record_args(&[
            "--action-kind",
            " SEIZURE",
            "--officer",
            "ZF-0001",
            "--officer",
            "ZF-0002",
            "--recording",
            &recording,
        ]),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stderr.is_empty(), "{}", text(&o));
    let out = ok(data, &["sync"]).await;
    assert!(out.contains("2 stored"), "{out}");
    let stored = gw
        .gateway
        .state()
        .store
        .device_records(&device)
        .await
        .unwrap();
    let kinds: Vec<&str> = stored
        .iter()
        .map(|r| r.record.content.action_kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        ["seizure", "seizure", "seizure"],
        "sealed as the code"
    );
    gw.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_prints_the_flags_raised_and_cleared_since_the_last_sync() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    common::list_officer(&gw, &common::officer_record("ZF-0001"), now_ms() - 60_000).await;
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let (device, _) = gw.device(1);
    let bundle = pki::layout::device_dir(&gw.pki_dir(), &device);
    ok(data, &["enroll", "bundle", bundle.to_str().unwrap()]).await;
    let addr = gw.gateway.device_addr().to_string();
    ok(data, &["config", "set", "gateway", &addr]).await;
    ok(data, &["config", "set", "server_name", "localhost"]).await;
    let out = ok(data, &["sync"]).await;
    assert!(out.contains("0 two-officer flag changes"), "{out}");

    // ZF-0009 is not in the registry (yet): the seizure is queued with a warning,
    // stored, and flagged; the sync says so in words.
    let o = run(
        data,
        &record_args(&[
            "--action-kind",
            "seizure",
            "--officer",
            "ZF-0001",
            "--officer",
            "ZF-0009",
            "--recording",
            &uuid::Uuid::new_v4().to_string(),
        ]),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let out = ok(data, &["sync"]).await;
    assert!(out.contains("1 stored"), "{out}");
    assert!(out.contains("1 two-officer flag changes"), "{out}");
    assert!(
        out.contains("两人执法标记：记录 #1（扣押）持证执法人员 1 名，需 2 名；未计入：ZF-0009（无此证件）；上传时判定。"),
        "{out}"
    );
    assert!(
        out.contains("two-officer flag raised: record #1 (Seizure), certified officers present: 1 of 2 required; not counted: ZF-0009 (unknown certificate); judged when it was stored."),
        "{out}"
    );

    // The equipment manager enters ZF-0009 (valid all along): the flag is cleared,
    // and the next sync tells only that.
    common::list_officer(&gw, &common::officer_record("ZF-0009"), now_ms()).await;
    let out = ok(data, &["sync"]).await;
    assert!(out.contains("1 two-officer flag changes"), "{out}");
    assert!(
        out.contains(
            "两人执法标记已解除：记录 #1（扣押）持证执法人员 2 名；执法证件 ZF-0009 变更后复核。"
        ),
        "{out}"
    );
    assert!(
        out.contains("two-officer flag cleared: record #1 (Seizure), certified officers present: 2; reviewed after certificate ZF-0009 changed."),
        "{out}"
    );
    assert!(!out.contains("flag raised"), "{out}");
    // The cursor is kept: nothing is told twice.
    let out = ok(data, &["sync"]).await;
    assert!(out.contains("0 two-officer flag changes"), "{out}");
    gw.gateway.shutdown().await;
}
