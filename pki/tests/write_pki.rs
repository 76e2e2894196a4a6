//! `write_pki` end to end on a real file system: the layout, file modes, the
//! enrollment file against the certificate files, and the all-or-nothing behaviour.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use pki::layout::{
    ADMIN_TOKEN_FILE, CA_CERT_FILE, CA_KEY_FILE, DEVICE_CA_FILE, DEVICE_CERT_FILE, DEVICE_KEY_FILE,
    DEVICES_DIR, ENROLLMENT_FILE, GATEWAY_CERT_FILE, GATEWAY_KEY_FILE, device_dir,
};
use pki::{
    KindMix, PkiError, PkiOptions, is_well_formed_token, load_admin_token, load_pki_dir,
    read_enrollment, token_hash, write_pki, write_pki_with_progress,
};
use protocol::domain::DeviceKind;
use protocol::{DeviceId, certificate_fingerprint};
use support::{
    common_name, der_of_file, entries, parse, snapshot, uris, verify_client, verify_server,
};

fn opts(devices: u32) -> PkiOptions {
    PkiOptions::new(devices, support::now())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn writes_every_file_of_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let summary = write_pki(&dir, &opts(3)).unwrap();
    assert_eq!(
        entries(&dir),
        [
            ADMIN_TOKEN_FILE,
            CA_KEY_FILE,
            CA_CERT_FILE,
            DEVICES_DIR,
            ENROLLMENT_FILE,
            GATEWAY_KEY_FILE,
            GATEWAY_CERT_FILE
        ]
    );
    assert_eq!(
        entries(&dir.join(DEVICES_DIR)),
        ["dev-00001", "dev-00002", "dev-00003"]
    );
    let ca_pem = fs::read(dir.join(CA_CERT_FILE)).unwrap();
    for id in ["dev-00001", "dev-00002", "dev-00003"] {
        let bundle = device_dir(&dir, &DeviceId::new(id).unwrap());
        assert_eq!(
            entries(&bundle),
            [DEVICE_CA_FILE, DEVICE_KEY_FILE, DEVICE_CERT_FILE]
        );
        assert_eq!(
            fs::read(bundle.join(DEVICE_CA_FILE)).unwrap(),
            ca_pem,
            "{id}"
        );
    }
    assert_eq!((summary.recorders, summary.terminals), (2, 1));
    assert_eq!(
        summary.ca_fingerprint,
        certificate_fingerprint(&der_of_file(&dir.join(CA_CERT_FILE)))
    );
    // Nothing but the PKI folder is left in the parent: the staging folder is gone.
    assert_eq!(entries(tmp.path()), ["pki"]);
}

#[test]
fn key_files_are_readable_by_the_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    write_pki(&dir, &opts(2)).unwrap();
    let mut secrets = vec![
        dir.join(CA_KEY_FILE),
        dir.join(GATEWAY_KEY_FILE),
        dir.join(ADMIN_TOKEN_FILE),
    ];
    for id in ["dev-00001", "dev-00002"] {
        secrets.push(dir.join(DEVICES_DIR).join(id).join(DEVICE_KEY_FILE));
    }
    for path in secrets {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&dir.join(CA_CERT_FILE)) & 0o600, 0o600);
}

#[test]
fn enrollment_rows_match_the_certificate_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let summary = write_pki(&dir, &opts(4)).unwrap();
    let text = fs::read_to_string(dir.join(ENROLLMENT_FILE)).unwrap();
    assert!(
        text.starts_with("device_id,kind,serial,fingerprint,not_after\n"),
        "{text}"
    );
    let rows = read_enrollment(text.as_bytes(), "enrollment.csv").unwrap();
    assert_eq!(rows.len(), 4);
    let ca = der_of_file(&dir.join(CA_CERT_FILE));
    for (i, row) in rows.iter().enumerate() {
        let bundle = device_dir(&dir, &row.device_id);
        let der = der_of_file(&bundle.join(DEVICE_CERT_FILE));
        assert_eq!(
            row.fingerprint,
            certificate_fingerprint(&der),
            "{}",
            row.device_id
        );
        let cert = parse(&der);
        assert_eq!(cert.validity().not_after.to_datetime(), row.not_after);
        assert_eq!(row.not_after, summary.device_not_after);
        assert_eq!(common_name(&cert), row.serial);
        assert_eq!(uris(&cert), [row.device_id.uri()]);
        let expected_kind = if i % 2 == 0 {
            DeviceKind::Recorder
        } else {
            DeviceKind::Terminal
        };
        assert_eq!(row.kind, expected_kind);
        verify_client(&ca, &der).unwrap();
    }
    assert_eq!(rows[1].serial, "SN-TRM-00002");
}

#[test]
fn options_choose_kinds_names_and_validity() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let mut o = opts(2);
    o.kinds = KindMix::Terminal;
    o.gateway_names = vec!["gw.fleet.test".into(), "10.1.2.3".into()];
    o.device_days = 7;
    let summary = write_pki(&dir, &o).unwrap();
    assert_eq!((summary.recorders, summary.terminals), (0, 2));
    let ca = der_of_file(&dir.join(CA_CERT_FILE));
    let gateway = der_of_file(&dir.join(GATEWAY_CERT_FILE));
    for name in ["localhost", "127.0.0.1", "::1", "gw.fleet.test", "10.1.2.3"] {
        verify_server(&ca, &gateway, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let rows = read_enrollment(
        fs::File::open(dir.join(ENROLLMENT_FILE)).unwrap(),
        "enrollment",
    )
    .unwrap();
    assert!(
        rows.iter()
            .all(|r| r.kind == DeviceKind::Terminal && r.serial.starts_with("SN-TRM-"))
    );
    let days = (rows[0].not_after - o.now).whole_days();
    assert_eq!(days, 6, "7 days, less the part second truncated from now");
}

#[test]
fn the_written_ca_and_token_load_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let summary = write_pki(&dir, &opts(1)).unwrap();
    let ca = load_pki_dir(&dir).unwrap();
    assert_eq!(ca.fingerprint(), summary.ca_fingerprint);
    let cert = ca
        .issue_device_bundle(
            &DeviceId::new("dev-99999").unwrap(),
            "SN-REC-99999",
            support::valid_for_days(1),
        )
        .unwrap();
    verify_client(&der_of_file(&dir.join(CA_CERT_FILE)), &cert.cert_der).unwrap();
    let token = load_admin_token(&dir).unwrap();
    assert!(is_well_formed_token(&token), "{token}");
    assert_eq!(
        fs::read_to_string(dir.join(ADMIN_TOKEN_FILE)).unwrap(),
        format!("{token}\n")
    );
    assert_eq!(token_hash(&token).len(), 64);
    let err = load_pki_dir(tmp.path()).unwrap_err();
    assert!(err.to_string().contains(CA_CERT_FILE), "{err}");
}

#[test]
fn a_second_run_without_force_fails_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    write_pki(&dir, &opts(3)).unwrap();
    let before = snapshot(&dir);
    let err = write_pki(&dir, &opts(5)).unwrap_err();
    assert!(matches!(err, PkiError::CaExists { .. }), "{err}");
    assert!(
        err.to_string().contains("--force") && err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
    assert_eq!(snapshot(&dir), before);
    assert_eq!(entries(tmp.path()), ["pki"]);
}

#[test]
fn force_replaces_the_whole_pki_and_keeps_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let first = write_pki(&dir, &opts(4)).unwrap();
    fs::write(dir.join("README"), "mine").unwrap();
    let inode = fs::metadata(&dir).unwrap().ino();
    let mut again = opts(2);
    again.force = true;
    let second = write_pki(&dir, &again).unwrap();
    assert_ne!(first.ca_fingerprint, second.ca_fingerprint);
    assert_eq!(
        load_pki_dir(&dir).unwrap().fingerprint(),
        second.ca_fingerprint
    );
    assert_eq!(
        entries(&dir.join(DEVICES_DIR)),
        ["dev-00001", "dev-00002"],
        "old bundles are gone"
    );
    assert_eq!(fs::read_to_string(dir.join("README")).unwrap(), "mine");
    assert_eq!(
        fs::metadata(&dir).unwrap().ino(),
        inode,
        "the folder itself is kept"
    );
    assert!(
        !entries(&dir).iter().any(|e| e.starts_with('.')),
        "no staging leftovers: {:?}",
        entries(&dir)
    );
    let rows = read_enrollment(
        fs::File::open(dir.join(ENROLLMENT_FILE)).unwrap(),
        "enrollment",
    )
    .unwrap();
    assert_eq!(rows.len(), 2);
}

#[test]
fn an_existing_empty_folder_is_filled_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    fs::create_dir(&dir).unwrap();
    let inode = fs::metadata(&dir).unwrap().ino();
    write_pki(&dir, &opts(1)).unwrap();
    assert_eq!(fs::metadata(&dir).unwrap().ino(), inode);
    assert!(dir.join(CA_CERT_FILE).is_file());
    assert!(
        !entries(&dir).iter().any(|e| e.starts_with('.')),
        "{:?}",
        entries(&dir)
    );
}

#[test]
fn a_non_empty_folder_without_a_ca_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("notes.txt"), "x").unwrap();
    let err = write_pki(tmp.path(), &opts(1)).unwrap_err();
    assert!(
        matches!(&err, PkiError::DirNotEmpty { entry, .. } if entry == "notes.txt"),
        "{err}"
    );
    assert_eq!(entries(tmp.path()), ["notes.txt"]);
    let mut forced = opts(1);
    forced.force = true;
    write_pki(tmp.path(), &forced).unwrap();
    assert!(tmp.path().join(CA_CERT_FILE).is_file());
}

#[test]
fn zero_devices_fails_before_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let err = write_pki(&dir, &opts(0)).unwrap_err();
    assert!(
        matches!(err, PkiError::NoDevices) && err.is_usage(),
        "{err}"
    );
    assert!(err.to_string().contains("--devices"), "{err}");
    assert!(entries(tmp.path()).is_empty());
}

#[test]
fn a_folder_under_a_regular_file_fails_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    fs::write(&file, "x").unwrap();
    for dir in [file.join("pki"), file.clone()] {
        let err = write_pki(&dir, &opts(1)).unwrap_err();
        assert!(!err.is_usage());
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        assert_eq!(entries(tmp.path()), ["plain-file"]);
        assert_eq!(fs::read_to_string(&file).unwrap(), "x");
    }
}

#[test]
fn a_missing_parent_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("no").join("pki");
    let err = write_pki(&dir, &opts(1)).unwrap_err();
    assert!(matches!(err, PkiError::ParentMissing { .. }), "{err}");
    assert!(entries(tmp.path()).is_empty());
}

/// A folder this process cannot write into: a read-only folder, or, when running
/// with the power to ignore modes (root in a container), `/proc`.
fn unwritable_parent(tmp: &Path) -> std::path::PathBuf {
    let ro = tmp.join("read-only");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(ro.join("probe"), "x").is_ok() {
        fs::remove_file(ro.join("probe")).unwrap();
        return "/proc".into();
    }
    ro
}

#[test]
fn an_unwritable_parent_fails_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = unwritable_parent(tmp.path());
    let before = entries(&parent);
    let dir = parent.join("certs-dev-test-pki");
    let err = write_pki(&dir, &opts(1)).unwrap_err();
    assert!(matches!(err, PkiError::Io { .. }), "{err}");
    assert!(
        err.to_string().contains(&parent.display().to_string()),
        "{err}"
    );
    assert_eq!(entries(&parent), before);
    assert!(!dir.exists());
    fs::set_permissions(
        tmp.path().join("read-only"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

#[test]
fn ten_thousand_devices_take_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let bundles = std::sync::atomic::AtomicU32::new(0);
    let start = Instant::now();
    let summary = write_pki_with_progress(&dir, &opts(10_000), &|| {
        bundles.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    let took = start.elapsed();
    assert_eq!(bundles.into_inner(), 10_000);
    assert_eq!(summary.recorders + summary.terminals, 10_000);
    assert_eq!(fs::read_dir(dir.join(DEVICES_DIR)).unwrap().count(), 10_000);
    // Generous: about 1 s on an idle machine, 15 s when other builds load the disk.
    assert!(took.as_secs() < 120, "10,000 devices took {took:?}");
}
