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
