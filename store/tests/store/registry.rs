//! Registry tests: migrations and restart, agencies, officers and the roster, devices
//! and their status rules, duplicates, and the handshake lookup.

use protocol::domain::{AgencyClass, CertificateStatus, DeviceKind, DeviceStatus};
use store::{AssignmentChange, FieldChange, OfficerChange, StoreError};

use crate::support::*;

#[tokio::test]
async fn fresh_database_migrates_and_reopen_keeps_the_registry() {
    each_backend(|b| async move {
        let store = b.open().await;
        store
            .create_agency(&agency("Xicheng UMB"), "admin", "test", T0)
            .await
            .unwrap();
        store
            .upsert_officer(&officer("C-001", "Li Wei"), "admin", T0)
            .await
            .unwrap();
        store
            .enroll_device(&device("dev-1", "SN1", 1), "admin", T0)
            .await
            .unwrap();
        let head = store.verify_audit_log().await.unwrap();
        store.close().await;

        // Restart: migrations are already applied and the registry is intact.
        let store = b.open().await;
        assert_eq!(store.list_agencies().await.unwrap().len(), 1);
        assert_eq!(
            store.officer("C-001").await.unwrap().unwrap().name,
            "Li Wei"
        );
        assert_eq!(
            store.device(&id("dev-1")).await.unwrap().unwrap().serial,
            "SN1"
        );
        assert_eq!(store.verify_audit_log().await.unwrap(), head);
        assert_eq!(head.entries, 3);
        store.close().await;

        // Every migration file was applied once, and reopening applied none twice.
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
            })
            .count();
        assert!(files >= 1);
        let raw = b.raw().await;
        assert_eq!(
            raw.scalar_i64("SELECT COUNT(*) FROM _sqlx_migrations")
                .await,
            i64::try_from(files).unwrap()
        );
        raw.close().await;
    })
    .await;
}

#[tokio::test]
async fn dollar_placeholders_bind_by_number_on_both_backends() {
    each_backend(|b| async move {
        let store = b.open().await; // the migrated schema
        let raw = b.raw().await;
        let sql = "SELECT CAST($2 AS TEXT) || '-' || CAST($1 AS TEXT) || '-' || CAST($2 AS TEXT)";
        let got: String = match &raw {
            Raw::Sqlite(p) => sqlx::query_scalar(sql)
                .bind("a")
                .bind("b")
                .fetch_one(p)
                .await
                .unwrap(),
            Raw::Postgres(p) => sqlx::query_scalar(sql)
                .bind("a")
                .bind("b")
                .fetch_one(p)
                .await
                .unwrap(),
        };
        assert_eq!(got, "b-a-b");
        // The store relies on it: enrollment binds `$8` twice (enrolled_at, status_changed_at).
        let row = store
            .enroll_device(&device("dev-1", "SN1", 1), "admin", T0 + 5)
            .await
            .unwrap();
        let stored = store.device(&row.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.enrolled_at, stored.status_changed_at),
            (T0 + 5, T0 + 5)
        );
        raw.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn agency_round_trip_and_class_rules() {
    each_backend(|b| async move {
        let store = b.open().await;
        let a = store
            .create_agency(&agency("Xicheng UMB"), "admin", "test", T0)
            .await
            .unwrap();
        assert_eq!(
            (a.class, a.class_c_target, a.created_at),
            (AgencyClass::A, None, T0)
        );
        let err = store
            .create_agency(&agency("Xicheng UMB"), "admin", "test", T0)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateAgency(ref n) if n == "Xicheng UMB"),
            "{err:?}"
        );

        let mut c = agency("Mentougou Forestry");
        c.class = AgencyClass::C;
        let err = store
            .create_agency(&c, "admin", "test", T0)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::ClassTarget {
                    class: AgencyClass::C
                }
            ),
            "{err:?}"
        );
        c.class_c_target = Some(4);
        store.create_agency(&c, "admin", "test", T0).await.unwrap();

        let set = store
            .set_agency_class("Xicheng UMB", AgencyClass::B, None, "admin", "test", T0 + 1)
            .await
            .unwrap();
        assert_eq!(set.class, AgencyClass::B);
        let err = store
            .set_agency_class("Xicheng UMB", AgencyClass::B, Some(2), "admin", "test", T0)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::ClassTarget {
                    class: AgencyClass::B
                }
            ),
            "{err:?}"
        );
        let err = store
            .set_agency_class("Nowhere", AgencyClass::A, None, "admin", "test", T0)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::UnknownAgency(ref n) if n == "Nowhere"),
            "{err:?}"
        );

        let before = audit_len(&store).await;
        store
            .set_agency_class("Xicheng UMB", AgencyClass::B, None, "admin", "test", T0 + 2)
            .await
            .unwrap();
        assert_eq!(
            audit_len(&store).await,
            before,
            "a no-op class change is not audited"
        );

        let all = store.list_agencies().await.unwrap();
        let names: Vec<_> = all.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Mentougou Forestry", "Xicheng UMB"]);
        assert_eq!(all[0].class_c_target, Some(4));
        let got = store.agency_by_name("Xicheng UMB").await.unwrap().unwrap();
        assert_eq!((got.id, got.class), (a.id, AgencyClass::B));
        assert!(store.agency_by_name("Nowhere").await.unwrap().is_none());
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn officer_round_trip_and_certificate_status() {
    each_backend(|b| async move {
        let store = b.open().await;
        let agency_row = store
            .create_agency(&agency("Xicheng UMB"), "admin", "test", T0)
            .await
            .unwrap();
        let mut record = officer("C-001", "Li Wei");
        record.agency = Some("Xicheng UMB".into());
        let inserted = store.upsert_officer(&record, "admin", T0).await.unwrap();
        let OfficerChange::Inserted(row) = inserted else {
            panic!("{inserted:?}")
        };
        assert_eq!(
            (row.agency_id, row.roster_version),
            (Some(agency_row.id), 1)
        );

        let again = store
            .upsert_officer(&record, "admin", T0 + 1)
            .await
            .unwrap();
        assert!(
            matches!(again, OfficerChange::Unchanged(ref r) if r == &row),
            "{again:?}"
        );

        record.post = "team leader".into();
        let updated = store
            .upsert_officer(&record, "admin", T0 + 2)
            .await
            .unwrap();
        let OfficerChange::Updated(row) = updated else {
            panic!("{updated:?}")
        };
        assert_eq!(
            (row.post.as_str(), row.roster_version, row.updated_at),
            ("team leader", 2, T0 + 2)
        );

        let withdrawn = store
            .set_certificate_status(
                "C-001",
                CertificateStatus::Withdrawn,
                None,
                "admin",
                "transferred",
                T0 + 3,
            )
            .await
            .unwrap();
        assert_eq!(
            (withdrawn.certificate_status, withdrawn.roster_version),
            (CertificateStatus::Withdrawn, 3)
        );
        let err = store
            .set_certificate_status(
                "C-001",
                CertificateStatus::Withdrawn,
                None,
                "admin",
                "again",
                T0 + 4,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::CertificateUnchanged { .. }),
            "{err:?}"
        );
        let err = store
            .set_certificate_status("C-404", CertificateStatus::Revoked, None, "admin", "x", T0)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::UnknownOfficer(ref n) if n == "C-404"),
            "{err:?}"
        );

        let mut stray = officer("C-002", "Wang Fang");
        stray.agency = Some("Nowhere".into());
        let err = store.upsert_officer(&stray, "admin", T0).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownAgency(_)), "{err:?}");
        let err = store
            .upsert_officer(&officer(" ", "Nobody"), "admin", T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::EmptyField(_)), "{err:?}");

        let stored = store.officer("C-001").await.unwrap().unwrap();
        assert_eq!(stored, withdrawn);
        assert_eq!(store.list_officers().await.unwrap(), vec![withdrawn]);
        assert!(store.officer("C-002").await.unwrap().is_none());
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn roster_versions_increase_and_deltas_hold_only_changes() {
    each_backend(|b| async move {
        let store = b.open().await;
        assert_eq!(store.roster_since(0).await.unwrap(), (vec![], 0));
        for (i, name) in ["A", "B", "C"].iter().enumerate() {
            store
                .upsert_officer(&officer(&format!("C-{i}"), name), "admin", T0)
                .await
                .unwrap();
        }
        let (all, v) = store.roster_since(0).await.unwrap();
        assert_eq!(v, 3);
        assert_eq!(
            all.iter().map(|o| o.roster_version).collect::<Vec<_>>(),
            [1, 2, 3]
        );

        // An identical upsert takes no version; a change takes the next one.
        store
            .upsert_officer(&officer("C-0", "A"), "admin", T0 + 1)
            .await
            .unwrap();
        assert_eq!(store.roster_version().await.unwrap(), 3);
        store
            .set_certificate_status(
                "C-0",
                CertificateStatus::Revoked,
                None,
                "admin",
                "dismissed",
                T0 + 2,
            )
            .await
            .unwrap();
        let (delta, v) = store.roster_since(3).await.unwrap();
        assert_eq!(v, 4);
        assert_eq!(delta.len(), 1);
        assert_eq!(
            (
                delta[0].certificate_number.as_str(),
                delta[0].roster_version
            ),
            ("C-0", 4)
        );
        assert_eq!(delta[0].certificate_status, CertificateStatus::Revoked);
        assert_eq!(store.roster_since(4).await.unwrap(), (vec![], 4));

        // Pages: C-1 (2), C-2 (3), C-0 (4).
        let page = store.roster_page(1, Some(2)).await.unwrap();
        let numbers: Vec<_> = page
            .officers
            .iter()
            .map(|o| o.certificate_number.as_str())
            .collect();
        assert_eq!(
            (numbers, page.to_version, page.more),
            (vec!["C-1", "C-2"], 3, true)
        );
        let page = store.roster_page(page.to_version, Some(2)).await.unwrap();
        assert_eq!(
            (page.officers.len(), page.to_version, page.more),
            (1, 4, false)
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn device_round_trip_assignment_and_hello() {
    each_backend(|b| async move {
        let store = b.open().await;
        let agency_row = store
            .create_agency(&agency("Xicheng UMB"), "admin", "test", T0)
            .await
            .unwrap();
        store
            .upsert_officer(&officer("C-001", "Li Wei"), "admin", T0)
            .await
            .unwrap();
        let mut new = device("dev-1", "SN1", 1);
        new.kind = DeviceKind::Terminal;
        new.certificate_fingerprint = new.certificate_fingerprint.to_uppercase();
        new.agency = Some("Xicheng UMB".into());
        let row = store.enroll_device(&new, "admin", T0).await.unwrap();
        assert_eq!(row.certificate_fingerprint, fp(1), "stored lowercase");
        assert_eq!(
            (row.kind, row.status, row.agency_id),
            (
                DeviceKind::Terminal,
                DeviceStatus::InService,
                Some(agency_row.id)
            )
        );
        assert_eq!(
            (row.enrolled_at, row.certificate_not_after, row.last_seen),
            (T0, NOT_AFTER, None)
        );
        assert_eq!(store.device(&id("dev-1")).await.unwrap().unwrap(), row);
        assert_eq!(
            store.device_by_fingerprint(&fp(1)).await.unwrap().unwrap(),
            row
        );
        assert_eq!(
            store
                .device_by_fingerprint(&fp(1).to_uppercase())
                .await
                .unwrap()
                .unwrap()
                .id,
            row.id
        );
        assert!(store.device_by_fingerprint(&fp(2)).await.unwrap().is_none());

        // Naming only the officer keeps the agency.
        let assigned = store
            .assign_device(&row.id, officer_only("C-001"), "admin", "test", T0 + 1)
            .await
            .unwrap();
        assert_eq!(
            (assigned.agency_id, assigned.assigned_officer.as_deref()),
            (Some(agency_row.id), Some("C-001"))
        );
        let agency_only = |name| AssignmentChange {
            agency: FieldChange::Set(name),
            ..AssignmentChange::default()
        };
        let err = store
            .assign_device(&row.id, agency_only("Nowhere"), "admin", "test", T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownAgency(_)), "{err:?}");
        let err = store
            .assign_device(&row.id, officer_only("C-404"), "admin", "test", T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownOfficer(_)), "{err:?}");
        let err = store
            .assign_device(&id("dev-404"), officer_only("C-001"), "admin", "test", T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownDevice(_)), "{err:?}");

        store.record_hello(&row.id, T0 + 10, -1500).await.unwrap();
        let seen = store.device(&row.id).await.unwrap().unwrap();
        assert_eq!(
            (seen.last_seen, seen.clock_skew_ms),
            (Some(T0 + 10), Some(-1500))
        );
        let err = store.record_hello(&id("dev-404"), T0, 0).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownDevice(_)), "{err:?}");

        store
            .enroll_device(&device("dev-0", "SN0", 2), "admin", T0)
            .await
            .unwrap();
        let ids: Vec<_> = store
            .list_devices()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id.to_string())
            .collect();
        assert_eq!(ids, ["dev-0", "dev-1"]);
        let err = store
            .enroll_device(&device("dev-2", "SN2", 3).with_fp("xyz"), "admin", T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::BadFingerprint(_)), "{err:?}");
        store.close().await;
    })
    .await;
}

trait WithFp {
    fn with_fp(self, fp: &str) -> Self;
}

impl WithFp for store::NewDevice {
    fn with_fp(mut self, fp: &str) -> Self {
        self.certificate_fingerprint = fp.to_owned();
        self
    }
}

/// An assignment that names only the officer.
fn officer_only(number: &str) -> AssignmentChange<'_> {
    AssignmentChange {
        officer: FieldChange::Set(number),
        ..AssignmentChange::default()
    }
}

#[tokio::test]
async fn an_assignment_changes_only_what_it_names_and_refuses_uncertified_officers() {
    each_backend(|b| async move {
        let store = b.open().await;
        let east = store
            .create_agency(&agency("East"), "admin", "t", T0)
            .await
            .unwrap();
        for (number, status, auxiliary) in [
            ("C-1", CertificateStatus::Valid, false),
            ("C-2", CertificateStatus::Withdrawn, false),
            ("C-3", CertificateStatus::Revoked, false),
            ("C-4", CertificateStatus::Withdrawn, true),
        ] {
            let mut o = officer(number, "x");
            o.certificate_status = status;
            o.auxiliary = auxiliary;
            store.upsert_officer(&o, "admin", T0).await.unwrap();
        }
        let mut new = device("dev-1", "SN1", 1);
        new.agency = Some("East".into());
        let d = store.enroll_device(&new, "admin", T0).await.unwrap();

        let row = store
            .assign_device(&d.id, officer_only("C-1"), "admin", "issue", T0 + 1)
            .await
            .unwrap();
        assert_eq!(
            (row.agency_id, row.assigned_officer.as_deref()),
            (Some(east.id), Some("C-1"))
        );

        // Withdrawn, revoked and auxiliary officers are refused and nothing is written.
        let before = audit_len(&store).await;
        for (number, standing) in [
            ("C-2", "withdrawn"),
            ("C-3", "revoked"),
            ("C-4", "auxiliary"),
        ] {
            let err = store
                .assign_device(&d.id, officer_only(number), "admin", "x", T0 + 2)
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::OfficerNotCertified { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains(standing), "{err}");
        }
        assert_eq!(audit_len(&store).await, before);
        assert_eq!(
            store
                .device(&d.id)
                .await
                .unwrap()
                .unwrap()
                .assigned_officer
                .as_deref(),
            Some("C-1")
        );

        // Forced, it is assigned and the audit entry says so.
        let forced = AssignmentChange {
            force: true,
            ..officer_only("C-2")
        };
        let row = store
            .assign_device(&d.id, forced, "admin", "handover week", T0 + 3)
            .await
            .unwrap();
        assert_eq!(
            (row.agency_id, row.assigned_officer.as_deref()),
            (Some(east.id), Some("C-2"))
        );
        let entries = store.audit_entries(0, 1000).await.unwrap();
        let last = entries.last().unwrap();
        let detail: serde_json::Value = serde_json::from_str(&last.detail).unwrap();
        assert_eq!(
            (
                detail["forced"].as_bool(),
                detail["officer_standing"].as_str()
            ),
            (Some(true), Some("withdrawn"))
        );
        assert_eq!(detail["agency"].as_str(), Some("East"), "{detail}");

        // Clearing is explicit and clears only what it names.
        let clear = AssignmentChange {
            officer: FieldChange::Clear,
            ..AssignmentChange::default()
        };
        let row = store
            .assign_device(&d.id, clear, "admin", "returned", T0 + 4)
            .await
            .unwrap();
        assert_eq!((row.agency_id, row.assigned_officer), (Some(east.id), None));
        let clear = AssignmentChange {
            agency: FieldChange::Clear,
            ..AssignmentChange::default()
        };
        let row = store
            .assign_device(&d.id, clear, "admin", "pool", T0 + 5)
            .await
            .unwrap();
        assert_eq!((row.agency_id, row.assigned_officer), (None, None));
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn status_rules_are_enforced_with_typed_errors() {
    use DeviceStatus::*;
    each_backend(|b| async move {
        let store = b.open().await;
        let d = store
            .enroll_device(&device("dev-1", "SN1", 1), "admin", T0)
            .await
            .unwrap();
        let s = store
            .set_device_status(&d.id, Suspended, "admin", "repair", T0 + 1)
            .await
            .unwrap();
        assert_eq!((s.status, s.status_changed_at), (Suspended, T0 + 1));
        store
            .set_device_status(&d.id, InService, "admin", "repaired", T0 + 2)
            .await
            .unwrap();

        let before = audit_len(&store).await;
        // The status it has already: accepted, nothing written (a retry is harmless).
        let same = store
            .set_device_status(&d.id, InService, "admin", "again", T0 + 3)
            .await
            .unwrap();
        assert_eq!((same.status, same.status_changed_at), (InService, T0 + 2));

        store
            .set_device_status(&d.id, Lost, "admin", "reported lost", T0 + 4)
            .await
            .unwrap();
        for to in [InService, Suspended] {
            let err = store
                .set_device_status(&d.id, to, "admin", "found", T0 + 5)
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::StatusChange(ref e) if e.from == Lost && e.to == to),
                "{err:?}"
            );
        }
        store
            .set_device_status(&d.id, Revoked, "admin", "key may be copied", T0 + 6)
            .await
            .unwrap();
        let again = store
            .set_device_status(&d.id, Revoked, "admin", "again", T0 + 7)
            .await
            .unwrap();
        assert_eq!((again.status, again.status_changed_at), (Revoked, T0 + 6));
        for to in DeviceStatus::ALL.iter().filter(|to| **to != Revoked) {
            let err = store
                .set_device_status(&d.id, *to, "admin", "undo", T0 + 7)
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::StatusChange(ref e) if e.from == Revoked),
                "{err:?}"
            );
        }
        let e2 = store
            .enroll_device(&device("dev-2", "SN2", 2), "admin", T0)
            .await
            .unwrap();
        store
            .set_device_status(&e2.id, Retired, "admin", "end of life", T0 + 8)
            .await
            .unwrap();
        let err = store
            .set_device_status(&e2.id, InService, "admin", "undo", T0 + 9)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::StatusChange(ref e) if e.from == Retired),
            "{err:?}"
        );
        let err = store
            .set_device_status(&id("dev-404"), Lost, "admin", "x", T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownDevice(_)), "{err:?}");

        // Refusals wrote nothing: only the accepted changes (lost, revoked, and the
        // enroll + retire of dev-2) were audited after `before`.
        assert_eq!(audit_len(&store).await, before + 4);
        let stored = store.device(&d.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.status_changed_at), (Revoked, T0 + 6));
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_import_that_fails_part_way_applies_nothing() {
    each_backend(|b| async move {
        let store = b.open().await;
        store
            .create_agency(&agency("Xicheng UMB"), "admin", "test", T0)
            .await
            .unwrap();
        let audit_before = store.audit_entries(0, 1000).await.unwrap().len();

        // The second agency exists already (as when another operator created it after
        // the rows were checked): the first is not created either.
        let err = store
            .create_agencies(
                &[agency("Dongcheng UMB"), agency("Xicheng UMB")],
                "admin",
                "yearly import",
                T0 + 1,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DuplicateAgency(_)), "{err:?}");
        let names: Vec<String> = store
            .list_agencies()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, vec!["Xicheng UMB".to_owned()]);

        // The last officer names an agency that is gone: nobody is added, no roster
        // version is taken.
        let mut stray = officer("C-003", "Zhao Lei");
        stray.agency = Some("Nowhere".into());
        let err = store
            .import_officers(
                &[
                    officer("C-001", "Li Wei"),
                    officer("C-002", "Wang Fang"),
                    stray,
                ],
                "admin",
                Some("roster 2026"),
                T0 + 2,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownAgency(_)), "{err:?}");
        assert!(store.list_officers().await.unwrap().is_empty());
        assert_eq!(
            store.audit_entries(0, 1000).await.unwrap().len(),
            audit_before
        );

        // The same roster without the bad row is applied whole, each change audited
        // with the operator's reason.
        let changes = store
            .import_officers(
                &[officer("C-001", "Li Wei"), officer("C-002", "Wang Fang")],
                "admin",
                Some("roster 2026"),
                T0 + 3,
            )
            .await
            .unwrap();
        assert!(
            changes
                .iter()
                .all(|c| matches!(c, OfficerChange::Inserted(_)))
        );
        let versions: Vec<u64> = changes.iter().map(|c| c.row().roster_version).collect();
        assert_eq!(
            versions,
            vec![1, 2],
            "no version was used up by the failed import"
        );
        let entries = store.audit_entries(0, 1000).await.unwrap();
        let created: Vec<_> = entries.iter().skip(audit_before).collect();
        assert_eq!(created.len(), 2);
        assert!(created.iter().all(|e| e.detail.contains("roster 2026")));
    })
    .await;
}
