//! Enrollment tests: duplicates refused with nothing changed, a returning device
//! enrolled anew, the handshake lookup's index, and the enrollment file import.

use protocol::domain::DeviceStatus;
use store::StoreError;

use crate::support::*;

#[tokio::test]
async fn duplicate_id_fingerprint_or_live_serial_is_refused_and_nothing_changes() {
    each_backend(|b| async move {
        let store = b.open().await;
        store
            .enroll_device(&device("dev-1", "SN1", 1), "admin", T0)
            .await
            .unwrap();
        let devices = store.list_devices().await.unwrap();
        let audit = store.verify_audit_log().await.unwrap();

        let err = store
            .enroll_device(&device("dev-1", "SN9", 9), "admin", T0)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DeviceIdTaken(ref i) if i.as_str() == "dev-1"),
            "{err:?}"
        );
        let err = store
            .enroll_device(&device("dev-2", "SN2", 1), "admin", T0)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateFingerprint(ref f) if *f == fp(1)),
            "{err:?}"
        );
        let err = store
            .enroll_device(&device("dev-2", "SN1", 2), "admin", T0)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateSerial(ref s) if s == "SN1"),
            "{err:?}"
        );
        let mut stray = device("dev-2", "SN2", 2);
        stray.agency = Some("Nowhere".into());
        let err = store.enroll_device(&stray, "admin", T0).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownAgency(_)), "{err:?}");

        assert_eq!(store.list_devices().await.unwrap(), devices);
        assert_eq!(store.verify_audit_log().await.unwrap(), audit);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_returning_device_is_a_new_enrollment() {
    each_backend(|b| async move {
        let store = b.open().await;
        let old = store
            .enroll_device(&device("dev-1", "SN1", 1), "admin", T0)
            .await
            .unwrap();
        store
            .set_device_status(&old.id, DeviceStatus::Lost, "admin", "lost", T0 + 1)
            .await
            .unwrap();
        // Found again: its old id and old certificate stay dead ...
        let err = store
            .enroll_device(&device("dev-1", "SN1", 2), "admin", T0 + 2)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DeviceIdTaken(_)), "{err:?}");
        let err = store
            .enroll_device(&device("dev-1b", "SN1", 1), "admin", T0 + 2)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateFingerprint(_)),
            "{err:?}"
        );
        // ... and the same hardware comes back with a new id and a new certificate.
        let new = store
            .enroll_device(&device("dev-1b", "SN1", 2), "admin", T0 + 2)
            .await
            .unwrap();
        assert_eq!(new.status, DeviceStatus::InService);
        assert_eq!(
            store
                .device_by_fingerprint(&fp(1))
                .await
                .unwrap()
                .unwrap()
                .status,
            DeviceStatus::Lost
        );
        assert_eq!(
            store
                .device_by_fingerprint(&fp(2))
                .await
                .unwrap()
                .unwrap()
                .id,
            new.id
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn handshake_lookup_uses_the_fingerprint_index() {
    each_backend(|b| async move {
        let store = b.open().await;
        let raw = b.raw().await;
        let plan = match &raw {
            Raw::Sqlite(p) => {
                // Columns: id, parent, notused, detail.
                let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(
                    "EXPLAIN QUERY PLAN SELECT * FROM devices WHERE certificate_fingerprint = 'x'",
                )
                .fetch_all(p)
                .await
                .unwrap();
                rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
            }
            Raw::Postgres(p) => {
                let mut c = p.acquire().await.unwrap();
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut *c)
                    .await
                    .unwrap();
                let lines: Vec<String> = sqlx::query_scalar(
                    "EXPLAIN SELECT * FROM devices WHERE certificate_fingerprint = 'x'",
                )
                .fetch_all(&mut *c)
                .await
                .unwrap();
                lines.join("\n")
            }
        };
        assert!(
            plan.contains("devices_fingerprint_key"),
            "not an index lookup:\n{plan}"
        );
        raw.close().await;
        store.close().await;
    })
    .await;
}

const HEADER: &str = "device_id,kind,serial,fingerprint,not_after\n";

fn file(rows: &[(&str, &str, &str, u32)]) -> String {
    let mut text = HEADER.to_owned();
    for (device_id, kind, serial, n) in rows {
        text.push_str(&format!(
            "{device_id},{kind},{serial},{},2026-06-15T00:00:00Z\n",
            fp(*n)
        ));
    }
    text
}

#[tokio::test]
async fn enrollment_import_is_all_or_nothing_and_idempotent() {
    each_backend(|b| async move {
        let store = b.open().await;
        store
            .create_agency(&agency("Xicheng UMB"), "admin", "test", T0)
            .await
            .unwrap();
        let good = file(&[
            ("dev-1", "recorder", "SN1", 1),
            ("dev-2", "terminal", "SN2", 2),
        ]);
        let summary = store
            .import_enrollment(good.as_bytes(), Some("Xicheng UMB"), "certs-dev", T0)
            .await
            .unwrap();
        assert_eq!(summary.enrolled, vec![id("dev-1"), id("dev-2")]);
        assert_eq!(summary.already_enrolled, 0);
        let d2 = store.device(&id("dev-2")).await.unwrap().unwrap();
        assert_eq!(d2.certificate_not_after, 1_781_481_600_000);
        assert!(d2.agency_id.is_some());
        let audit = store.verify_audit_log().await.unwrap();
        assert_eq!(
            audit.entries,
            1 + 2 + 1,
            "agency, two devices, one import summary"
        );

        // The same file again: nothing new, nothing audited.
        let again = store
            .import_enrollment(good.as_bytes(), None, "certs-dev", T0 + 1)
            .await
            .unwrap();
        assert_eq!((again.enrolled.len(), again.already_enrolled), (0, 2));
        assert_eq!(store.verify_audit_log().await.unwrap(), audit);

        // A grown file: only the new row is enrolled.
        let grown = file(&[
            ("dev-1", "recorder", "SN1", 1),
            ("dev-3", "recorder", "SN3", 3),
        ]);
        let more = store
            .import_enrollment(grown.as_bytes(), None, "certs-dev", T0 + 2)
            .await
            .unwrap();
        assert_eq!(
            (more.enrolled, more.already_enrolled),
            (vec![id("dev-3")], 1)
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_bad_or_conflicting_row_names_its_line_and_applies_nothing() {
    each_backend(|b| async move {
        let store = b.open().await;
        store
            .enroll_device(&device("dev-1", "SN1", 1), "admin", T0)
            .await
            .unwrap();
        let devices = store.list_devices().await.unwrap();
        let audit = store.verify_audit_log().await.unwrap();
        let expect_line = |text: String, want: u64| {
            let store = store.clone();
            async move {
                let err = store
                    .import_enrollment(text.as_bytes(), None, "certs-dev", T0)
                    .await
                    .unwrap_err();
                match err {
                    StoreError::BadEnrollmentRow { line, reason } => {
                        assert_eq!(line, want, "{reason}");
                        reason
                    }
                    other => panic!("expected a bad row, got {other:?}"),
                }
            }
        };
        // Malformed: a bad kind on line 4, after two good rows.
        let text = file(&[
            ("dev-5", "recorder", "SN5", 5),
            ("dev-6", "recorder", "SN6", 6),
            ("dev-7", "drone", "SN7", 7),
        ]);
        expect_line(text, 4).await;
        // Conflicting with the registry: dev-1 with another certificate (line 3).
        let text = file(&[
            ("dev-5", "recorder", "SN5", 5),
            ("dev-1", "recorder", "SN1", 8),
        ]);
        expect_line(text, 3).await;
        // Conflicting: a new id with dev-1's certificate (line 2).
        let reason = expect_line(file(&[("dev-9", "recorder", "SN9", 1)]), 2).await;
        assert!(reason.contains("already enrolled"), "{reason}");
        // Conflicting: the live serial SN1 under a new id.
        expect_line(file(&[("dev-9", "recorder", "SN1", 9)]), 2).await;
        // An expired certificate.
        let expired = format!(
            "{HEADER}dev-9,recorder,SN9,{},2020-01-01T00:00:00Z\n",
            fp(9)
        );
        expect_line(expired, 2).await;
        let err = store
            .import_enrollment(
                file(&[("dev-9", "recorder", "SN9", 9)]).as_bytes(),
                Some("Nowhere"),
                "x",
                T0,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownAgency(_)), "{err:?}");

        assert_eq!(
            store.list_devices().await.unwrap(),
            devices,
            "nothing applied"
        );
        assert_eq!(
            store.verify_audit_log().await.unwrap(),
            audit,
            "nothing audited"
        );
        store.close().await;
    })
    .await;
}
