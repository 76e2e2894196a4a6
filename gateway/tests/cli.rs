//! The `gateway` binary's start-up contract: a bad configuration is refused before any
//! port is bound, with exit code 64 and a message naming the key.

use std::process::Command;

fn run_with_config(text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--config")
        .arg(&path)
        .env("FIELDSYNC_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap()
}

#[test]
fn a_bad_config_file_names_the_key_and_exits_64() {
    let out = run_with_config("[device]\nkeep_alive_secs = \"often\"\n");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("device.keep_alive_secs"), "{stderr}");

    let out = run_with_config("[store]\nbackend = \"oracle\"\n");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("store.backend") && stderr.contains("oracle"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_variable_or_a_number_that_does_not_parse_exits_64_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = |var: &str, value: &str| {
        Command::new(env!("CARGO_BIN_EXE_gateway"))
            .env("FIELDSYNC_DATA_DIR", dir.path().join("data"))
            .env(var, value)
            .output()
            .unwrap()
    };
    let out = run("FIELDSYNC_DEVICE_LISTN", "127.0.0.1:5999");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FIELDSYNC_DEVICE_LISTN is not a configuration key"),
        "{stderr}"
    );
    let out = run("FIELDSYNC_DEVICE_KEEP_ALIVE_SECS", "ten");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FIELDSYNC_DEVICE_KEEP_ALIVE_SECS: \"ten\" is not a whole number"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before anything was made"
    );
}

#[test]
fn print_config_shows_the_defaults_with_overrides() {
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--print-config")
        .env("FIELDSYNC_DEVICE_LISTEN", "127.0.0.1:5999")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("listen = \"127.0.0.1:5999\""), "{stdout}");
    assert!(stdout.contains("upload_deadline_hours = 24"), "{stdout}");
}

/// Runs `gateway verify-audit` on the data folder.
fn verify_audit(data: &std::path::Path, expect_head: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command.env("FIELDSYNC_DATA_DIR", data).arg("verify-audit");
    if let Some(head) = expect_head {
        command.arg("--expect-head").arg(head);
    }
    command.output().unwrap()
}

#[tokio::test]
async fn verify_audit_finds_an_entry_edited_in_the_database() {
    let backend = test_support::Backend::Sqlite;
    let gw = test_support::TestGateway::start(&backend, 3).await;
    let (keep, config) = gw.stop().await;
    let data = config.data_dir.clone();

    let out = verify_audit(&data, None);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("audit log intact: "), "{stdout}");
    let head = stdout.trim().rsplit(' ').next().unwrap().to_owned();
    let out = verify_audit(&data, Some(&head));
    assert!(out.status.success());
    let out = verify_audit(&data, Some(&"0".repeat(64)));
    assert_eq!(out.status.code(), Some(2));

    // Someone with database access drops the guard and rewrites an entry.
    let db = data.join("fieldsync.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for sql in [
        "DROP TRIGGER audit_log_no_update",
        "UPDATE audit_log SET actor = 'nobody' WHERE seq = 2",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let out = verify_audit(&data, None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BROKEN") && stderr.contains('2'),
        "{stderr}"
    );
    drop(keep);
}

/// GETs `url` from the operator listener with a bearer token or a session cookie;
/// returns the status.
fn get(agent: &ureq::Agent, url: &str, bearer: Option<&str>, cookie: Option<&str>) -> u16 {
    let mut req = agent.get(url);
    if let Some(t) = bearer {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    req.call().expect("request sent").status().as_u16()
}

#[tokio::test]
async fn operator_tokens_never_reach_the_gateways_log_even_at_trace_level() {
    // The gateway is a process of its own; the blocking HTTP calls below hold up
    // nothing else of this test.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let gateway = test_support::GatewayProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_gateway")),
        &data,
        &test_support::Backend::Sqlite,
        test_support::GatewayProcess::free_addrs(),
        |command| {
            command
                .env("RUST_LOG", "trace")
                .env("NO_COLOR", "1")
                .stdout(log.try_clone().unwrap())
                .stderr(log);
        },
    )
    .await;
    let base = format!("http://{}", gateway.http_addr);
    let admin = pki::load_admin_token(&data.join("pki")).expect("admin.token");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();

    // The bearer header, a token made through the API (its secret is in the reply),
    // an unknown token, and the dashboard's sign-in form and session cookie.
    assert_eq!(
        get(&agent, &format!("{base}/api/v1/whoami"), Some(&admin), None),
        200
    );
    let made: serde_json::Value = agent
        .post(&format!("{base}/api/v1/tokens"))
        .header("Authorization", &format!("Bearer {admin}"))
        .send_json(
            serde_json::json!({ "name": "finance-office", "role": "finance", "reason": "budget" }),
        )
        .expect("token made")
        .body_mut()
        .read_json()
        .unwrap();
    let finance = made["token"].as_str().unwrap().to_owned();
    assert_eq!(
        get(
            &agent,
            &format!("{base}/api/v1/reports/allocation"),
            Some(&finance),
            None
        ),
        200
    );
    let unknown = format!("fst_{}", "7".repeat(64));
    assert_eq!(
        get(
            &agent,
            &format!("{base}/api/v1/whoami"),
            Some(&unknown),
            None
        ),
        401
    );
    let signed_in = agent
        .post(&format!("{base}/login"))
        .send_form([("token", finance.as_str())])
        .expect("sign-in sent");
    assert_eq!(signed_in.status().as_u16(), 303);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    assert_eq!(
        get(&agent, &format!("{base}/allocation"), None, Some(&cookie)),
        200
    );
    drop(gateway);

    let text = std::fs::read_to_string(&log_path).unwrap();
    // The log did record these requests at trace level (so the check below can fail).
    assert!(text.contains("TRACE"), "{text}");
    assert!(text.contains("dashboard sign-in"), "{text}");
    for (name, secret) in [
        ("admin", &admin),
        ("finance", &finance),
        ("unknown", &unknown),
    ] {
        // Any 16 characters of the secret would give too much of it away.
        let secret_part = &secret[secret.len() - 16..];
        assert!(
            !text.contains(secret_part),
            "the {name} token is in the log:\n{}",
            text.lines()
                .filter(|l| l.contains(secret_part))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
