//! The `certs-dev` binary: exit codes (0, 64 for usage errors, 1 otherwise) and the
//! messages an operator sees.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_certs-dev");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("certs-dev runs")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn writes_a_pki_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let out = run(&[
        "--out",
        path(&dir),
        "--devices",
        "3",
        "--kind",
        "recorder",
        "--gateway-name",
        "gw.test",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(path(&dir)), "{text}");
    assert!(text.contains("3 recorders, 0 terminals"), "{text}");
    assert!(
        text.contains("localhost, 127.0.0.1, ::1, gw.test"),
        "{text}"
    );
    let ca = pki::load_pki_dir(&dir).unwrap();
    assert!(text.contains(&ca.fingerprint()), "{text}");
    // stderr is not a terminal here: no progress bar, no noise.
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(fs::read_dir(dir.join("devices")).unwrap().count(), 3);
}

#[test]
fn zero_devices_exits_64_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let out = run(&["--out", path(&dir), "--devices", "0"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr(&out).contains("--devices must be at least 1"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.exists());
}

#[test]
fn bad_flags_and_values_exit_64() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let cases: [&[&str]; 6] = [
        &["--out", ""],
        &["--out", path(&dir), "--kind", "drone"],
        &["--out", path(&dir), "--gateway-name", "not a host"],
        &["--out", path(&dir), "--device-days", "0"],
        &["--devices", "2"],
        &["--out", path(&dir), "--no-such-flag"],
    ];
    for args in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?}");
        assert!(!dir.exists(), "{args:?}");
    }
    let out = run(&["--out", path(&dir), "--gateway-name", "not a host"]);
    assert!(stderr(&out).contains("\"not a host\""), "{}", stderr(&out));
}

#[test]
fn an_existing_ca_exits_1_and_mentions_force_until_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    assert_eq!(
        run(&["--out", path(&dir), "--devices", "1"]).status.code(),
        Some(0)
    );
    let ca_before = fs::read(dir.join("ca.pem")).unwrap();
    let out = run(&["--out", path(&dir), "--devices", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("already holds a fleet CA") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "printed once: {err}");
    assert_eq!(fs::read(dir.join("ca.pem")).unwrap(), ca_before);

    let out = run(&["--out", path(&dir), "--devices", "1", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(fs::read(dir.join("ca.pem")).unwrap(), ca_before);
}

#[test]
fn an_unwritable_folder_exits_1_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    fs::write(&file, "x").unwrap();
    let dir = file.join("pki");
    let out = run(&["--out", path(&dir), "--devices", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(path(&dir)), "{}", stderr(&out));
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn help_exits_0_and_lists_the_flags() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for flag in [
        "--out",
        "--devices",
        "--kind",
        "--gateway-name",
        "--device-days",
        "--force",
    ] {
        assert!(text.contains(flag), "{flag} missing from help:\n{text}");
    }
}
