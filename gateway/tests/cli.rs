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
