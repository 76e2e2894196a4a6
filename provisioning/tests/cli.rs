//! The `provisioning` binary against a real gateway on loopback (SQLite and, with
//! FIELDSYNC_TEST_PG, PostgreSQL): bulk imports with bad rows, enrollment from a CSR
//! and as a bundle, roles, HTTPS with the fleet CA, and a revocation that closes a
//! live device connection.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use agent::DeviceIdentity;
use protocol::CloseCode;
use serde_json::Value;
use test_support::{Backend, TestGateway, backends, test_config};

const WAIT: Duration = Duration::from_secs(20);
const ROWS: usize = 3000;

/// How to reach a gateway.
struct Target {
    url: String,
    token_file: PathBuf,
    ca: Option<PathBuf>,
}

impl Target {
    fn of(gw: &TestGateway) -> Target {
        Target {
            url: format!("http://{}", gw.gateway.http_addr()),
            token_file: gw.pki_dir().join("admin.token"),
            ca: None,
        }
    }
}

/// Runs the binary with `args`, as the admin unless `token` is given.
async fn run(target: &Target, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_provisioning"));
    command
        .env("FIELDSYNC_GATEWAY", &target.url)
        .env_remove("FIELDSYNC_TOKEN")
        .env_remove("FIELDSYNC_TOKEN_FILE")
        .env_remove("FIELDSYNC_CA")
        .args(args)
        .kill_on_drop(true);
    match token {
        Some(token) => command.env("FIELDSYNC_TOKEN", token),
        None => command.arg("--token-file").arg(&target.token_file),
    };
    if let Some(ca) = &target.ca {
        command.arg("--ca").arg(ca);
    }
    tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the CLI finishes")
        .expect("the CLI runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

async fn json(target: &Target, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(&run(target, None, &all).await)).expect("JSON output")
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn a_bulk_device_import_with_bad_rows_applies_nothing_unless_partial() {
    for backend in backends().await {
        let gw = TestGateway::start(&backend, 1).await;
        let target = Target::of(&gw);
        ok(&run(
            &target,
            None,
            &[
                "agencies", "create", "A1", "--class", "a", "--reason", "setup",
            ],
        )
        .await);
        let mut csv = String::from("device_id,kind,serial,fingerprint,not_after,agency\n");
        for i in 0..ROWS {
            let line = i + 2;
            let serial = if line == 1501 {
                "SN-00010".to_owned()
            } else {
                format!("SN-{i:05}")
            };
            let agency = if line == 2502 { "Atlantis" } else { "A1" };
            if line == 2000 {
                csv.push_str(&format!("cli-{i:05},recorder,SN-{i:05}\n"));
                continue;
            }
            csv.push_str(&format!(
                "cli-{i:05},recorder,{serial},{:064x},2030-01-01T00:00:00Z,{agency}\n",
                i + 7_000_000
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "devices.csv", &csv);

        let out = run(
            &target,
            None,
            &["devices", "import", &file, "--reason", "delivery"],
        )
        .await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{}: {stderr}", backend.name());
        // One pass reports every bad row: the line this side refused (a missing
        // column) and the gateway's objections to the others.
        assert!(stderr.contains("devices.csv:2000:"), "{stderr}");
        assert!(
            stderr.contains("devices.csv:1501: serial SN-00010 is also on line 12"),
            "{stderr}"
        );
        assert!(
            stderr.contains("devices.csv:2502:") && stderr.contains("Atlantis"),
            "{stderr}"
        );
        let devices = json(&target, &["devices", "list"]).await;
        assert_eq!(devices.as_array().unwrap().len(), 1, "nothing applied");

        // The shape is fixed; the registry's objections are reported all together.
        csv = csv
            .lines()
            .filter(|l| !l.starts_with("cli-01998,"))
            .map(|l| format!("{l}\n"))
            .collect();
        let file = write(dir.path(), "devices.csv", &csv);
        let out = run(
            &target,
            None,
            &["devices", "import", &file, "--reason", "delivery"],
        )
        .await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains("devices.csv:1501: serial SN-00010 is also on line 12"),
            "{stderr}"
        );
        assert!(
            stderr.contains("devices.csv:2501:") && stderr.contains("Atlantis"),
            "{stderr}"
        );
        assert_eq!(
            json(&target, &["devices", "list"])
                .await
                .as_array()
                .unwrap()
                .len(),
            1
        );

        let out = run(
            &target,
            None,
            &[
                "devices",
                "import",
                &file,
                "--partial",
                "--reason",
                "delivery",
            ],
        )
        .await;
        // The good rows are applied; the exit code says some were rejected.
        assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("applied {}", ROWS - 3)),
            "{stdout}"
        );
        let devices = json(&target, &["devices", "list"]).await;
        assert_eq!(devices.as_array().unwrap().len(), ROWS - 3 + 1);
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn roster_and_agency_files_report_bad_rows_by_line() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let target = Target::of(&gw);
    let dir = tempfile::tempdir().unwrap();
    let agencies = write(
        dir.path(),
        "agencies.csv",
        "name,class,class_c_target\nA1,a,\nZ9,z,\nC1,c,4\n",
    );
    let out = run(
        &target,
        None,
        &["agencies", "import", &agencies, "--reason", "setup"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("agencies.csv:3: class:"), "{stderr}");
    let agencies = write(
        dir.path(),
        "agencies.csv",
        "name,class,class_c_target\nA1,a,\nC1,c,4\n",
    );
    ok(&run(
        &target,
        None,
        &["agencies", "import", &agencies, "--reason", "setup"],
    )
    .await);

    let roster = write(
        dir.path(),
        "roster.csv",
        "certificate_number,name,certificate_status,auxiliary,agency\n\
         N1,王伟,valid,no,A1\n\
         N2,李娜,valid,no,Atlantis\n\
         N3,张敏,expired,no,A1\n\
         N1,王伟,valid,no,A1\n",
    );
    let out = run(
        &target,
        None,
        &["officers", "import", &roster, "--reason", "roster"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    for line in [":3:", ":4:", ":5:"] {
        assert!(
            stderr.contains(&format!("roster.csv{line}")),
            "{line}: {stderr}"
        );
    }
    let officers = json(&target, &["officers", "list"]).await;
    assert!(officers.as_array().unwrap().is_empty());

    let missing = write(dir.path(), "bad.csv", "certificate_number,name\nN1,王伟\n");
    let out = run(
        &target,
        None,
        &["officers", "import", &missing, "--reason", "roster"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 1") && stderr.contains("certificate_status"),
        "{stderr}"
    );

    let out = run(
        &target,
        None,
        &[
            "officers",
            "import",
            &roster,
            "--partial",
            "--reason",
            "roster",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("applied 1"));
    ok(&run(
        &target,
        None,
        &["officers", "withdraw", "N1", "--reason", "retired"],
    )
    .await);
    let officers = json(&target, &["officers", "list"]).await;
    assert_eq!(officers[0]["certificate_status"], "withdrawn");
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn revoking_through_the_cli_closes_the_live_connection() {
    for backend in backends().await {
        let gw = TestGateway::start(&backend, 2).await;
        let target = Target::of(&gw);
        let (id, identity) = gw.device(1);
        let mut conn = gw.connect(&identity).await.expect("connects");
        conn.hello(0, "test/1").await.expect("hello");

        let out = run(
            &target,
            None,
            &["devices", "revoke", id.as_str(), "--reason", "stolen"],
        )
        .await;
        assert!(ok(&out).contains("revoked"));
        let closed = tokio::time::timeout(WAIT, conn.closed())
            .await
            .expect("closed after the CLI revoked it");
        assert_eq!(
            closed.close_code(),
            Some(CloseCode::DeviceRevoked),
            "{}: {closed}",
            backend.name()
        );
        let again = async {
            let mut c = gw.connect(&identity).await?;
            c.hello(0, "test/1").await
        }
        .await;
        assert!(again.is_err(), "a revoked device is refused");
        // The other device is untouched.
        let (_, other) = gw.device(2);
        let mut c = gw.connect(&other).await.expect("connects");
        c.hello(0, "test/1").await.expect("hello");
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn devices_enrolled_from_a_csr_or_as_a_bundle_connect() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let target = Target::of(&gw);
    let dir = tempfile::tempdir().unwrap();
    let device = protocol::DeviceId::new("dev-csr-1").unwrap();
    let csr = pki::make_device_csr(&device, "SN-CSR-1").unwrap();
    let csr_file = write(dir.path(), "device.csr", &csr.csr_pem);
    let out_dir = dir.path().join("csr-out");
    let out = run(
        &target,
        None,
        &[
            "devices",
            "enroll-csr",
            "--csr",
            &csr_file,
            "--id",
            "dev-csr-1",
            "--kind",
            "terminal",
            "--serial",
            "SN-CSR-1",
            "--out",
            out_dir.to_str().unwrap(),
            "--reason",
            "new terminal",
        ],
    )
    .await;
    ok(&out);
    assert!(
        !out_dir.join("device.key").exists(),
        "the key never left the device"
    );
    let cert = std::fs::read_to_string(out_dir.join("device.pem")).unwrap();
    let ca = std::fs::read_to_string(out_dir.join("ca.pem")).unwrap();
    let identity = DeviceIdentity::from_pem(&cert, &csr.key_pem, &ca).unwrap();
    let mut conn = gw
        .connect(&identity)
        .await
        .expect("the CSR device connects");
    let welcome = conn.hello(0, "test/1").await.expect("hello");
    assert_eq!(welcome.device_id, device);

    let bundle_dir = dir.path().join("bundle");
    ok(&run(
        &target,
        None,
        &[
            "devices",
            "enroll-bundle",
            "--id",
            "dev-bundle-1",
            "--kind",
            "recorder",
            "--serial",
            "SN-B-1",
            "--out",
            bundle_dir.to_str().unwrap(),
            "--reason",
            "simulator",
        ],
    )
    .await);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(bundle_dir.join("device.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let identity = DeviceIdentity::load_bundle(&bundle_dir).unwrap();
    let mut conn = gw
        .connect(&identity)
        .await
        .expect("the bundle device connects");
    conn.hello(0, "test/1").await.expect("hello");

    // The same serial cannot be enrolled twice while live.
    let out = run(
        &target,
        None,
        &[
            "devices",
            "enroll-bundle",
            "--id",
            "dev-bundle-2",
            "--kind",
            "recorder",
            "--serial",
            "SN-B-1",
            "--out",
            dir.path().join("b2").to_str().unwrap(),
            "--reason",
            "typo",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("SN-B-1"),
        "{}",
        text(&out.stderr)
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_finance_token_reads_reports_and_cannot_revoke() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let target = Target::of(&gw);
    let made = json(
        &target,
        &[
            "tokens",
            "create",
            "finance-office",
            "--role",
            "finance",
            "--reason",
            "budget review",
        ],
    )
    .await;
    let token = made["token"].as_str().unwrap().to_owned();
    let me = ok(&run(&target, Some(&token), &["whoami"]).await);
    assert!(me.contains("finance") && !me.contains(&token), "{me}");
    let out = run(
        &target,
        Some(&token),
        &["devices", "revoke", "dev-00001", "--reason", "x"],
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("forbidden"));
    let device = json(&target, &["devices", "show", "dev-00001"]).await;
    assert_eq!(device["status"], "in_service");
    let csv = ok(&run(&target, Some(&token), &["reports", "allocation", "--csv"]).await);
    assert!(csv.starts_with("agency,class,"), "{csv}");
    ok(&run(&target, Some(&token), &["reports", "snapshot"]).await);
    let trend = ok(&run(&target, Some(&token), &["reports", "trend"]).await);
    assert!(trend.contains("devices_to_buy"), "{trend}");
    ok(&run(
        &target,
        None,
        &["tokens", "revoke", "finance-office", "--reason", "left"],
    )
    .await);
    let out = run(&target, Some(&token), &["whoami"]).await;
    assert_eq!(out.status.code(), Some(4));
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn over_https_the_cli_trusts_only_the_fleet_ca() {
    let data = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(data.path(), &Backend::Sqlite, 1);
    config.http.tls = gateway::config::HttpTls::Always;
    let gw = TestGateway::start_with(config, data, Arc::new(clock::SystemClock)).await;
    let mut target = Target::of(&gw);
    target.url = format!("https://localhost:{}", gw.gateway.http_addr().port());
    let out = run(&target, None, &["whoami"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--ca"), "{}", text(&out.stderr));
    target.ca = Some(gw.pki_dir().join("ca.pem"));
    assert!(ok(&run(&target, None, &["whoami"]).await).contains("admin"));
    // Another CA is not trusted.
    let other = tempfile::tempdir().unwrap();
    let stranger = pki::FleetCa::generate(test_support::validity(
        time::Duration::hours(-1),
        time::Duration::days(1),
    ))
    .unwrap();
    target.ca = Some(PathBuf::from(write(
        other.path(),
        "ca.pem",
        stranger.cert_pem(),
    )));
    let out = run(&target, None, &["whoami"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    gw.gateway.shutdown().await;
}
