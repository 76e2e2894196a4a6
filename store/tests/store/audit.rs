//! Audit log tests: the chain verifies after many changes, and an edit, a deletion or
//! a truncation made directly in the database is detected where it happened; appends
//! from many tasks and two stores keep one valid chain.

use protocol::domain::{CertificateStatus, DeviceStatus};
use store::chain::{ChainBreak, EntryContent, entry_hash, parse_hash};
use store::{AssignmentChange, AuditError, FieldChange, RefusedConnections, actions};

use crate::support::*;

/// Ten registry changes of every kind: ten audit entries.
async fn ten_changes(store: &store::Store) {
    store
        .create_agency(&agency("Xicheng UMB"), "admin", "test", T0)
        .await
        .unwrap();
    store
        .upsert_officer(&officer("C-001", "Li Wei"), "admin", T0 + 1)
        .await
        .unwrap();
    store
        .upsert_officer(&officer("C-002", "Wang Fang"), "admin", T0 + 2)
        .await
        .unwrap();
    for i in 1..=3 {
        store
            .enroll_device(
                &device(&format!("dev-{i}"), &format!("SN{i}"), i),
                "admin",
                T0 + 3,
            )
            .await
            .unwrap();
    }
    store
        .assign_device(
            &id("dev-1"),
            AssignmentChange {
                agency: FieldChange::Set("Xicheng UMB"),
                officer: FieldChange::Set("C-001"),
                force: false,
            },
            "admin",
            "test",
            T0 + 4,
        )
        .await
        .unwrap();
    store
        .set_device_status(&id("dev-2"), DeviceStatus::Lost, "admin", "lost", T0 + 5)
        .await
        .unwrap();
    store
        .set_certificate_status(
            "C-002",
            CertificateStatus::Withdrawn,
            None,
            "admin",
            "retired",
            T0 + 6,
        )
        .await
        .unwrap();
    let samples = [format!("192.0.2.7:4433 {}", fp(2))];
    store
        .audit_refused_connections(
            &RefusedConnections {
                reason: "revoked",
                count: 3,
                first: T0 + 1,
                last: T0 + 7,
                samples: &samples,
            },
            T0 + 7,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_chain_verifies_after_many_changes() {
    each_backend(|b| async move {
        let store = b.open().await;
        let empty = store.verify_audit_log().await.unwrap();
        assert_eq!(
            (empty.entries, empty.head_hash.as_str()),
            (0, "0".repeat(64).as_str())
        );
        ten_changes(&store).await;
        let report = store.verify_audit_log().await.unwrap();
        assert_eq!(report.entries, 10);

        let entries = store.audit_entries(0, 100).await.unwrap();
        assert_eq!(
            entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        assert_eq!(entries[9].hash, report.head_hash);
        for pair in entries.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        let actions_seen: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions_seen[0], actions::AGENCY_CREATED);
        assert_eq!(actions_seen[7], actions::DEVICE_STATUS_SET);
        let refused = &entries[9];
        assert_eq!(
            (refused.action.as_str(), refused.actor.as_str()),
            (actions::CONNECTIONS_REFUSED, "gateway")
        );
        assert_eq!(refused.subject, "revoked");
        let detail: serde_json::Value = serde_json::from_str(&refused.detail).unwrap();
        assert_eq!(detail["count"], 3);
        assert_eq!(detail["samples"][0], format!("192.0.2.7:4433 {}", fp(2)));
        let status: serde_json::Value = serde_json::from_str(&entries[7].detail).unwrap();
        assert_eq!(
            (status["from"].as_str(), status["to"].as_str()),
            (Some("in_service"), Some("lost"))
        );
        let withdrawn = &entries[8];
        assert_eq!(
            (withdrawn.action.as_str(), withdrawn.actor.as_str()),
            (actions::CERTIFICATE_STATUS_SET, "admin")
        );
        let detail: serde_json::Value = serde_json::from_str(&withdrawn.detail).unwrap();
        assert_eq!(
            (detail["to"].as_str(), detail["reason"].as_str()),
            (Some("withdrawn"), Some("retired"))
        );
        assert_eq!(store.audit_entries(8, 1).await.unwrap()[0].seq, 9);

        // Past one verification page (1000 entries) too.
        for i in 0..1100 {
            store
                .append_audit("test", "noise", "x", "{}", T0 + i)
                .await
                .unwrap();
        }
        assert_eq!(store.verify_audit_log().await.unwrap().entries, 1110);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_edited_entry_is_detected_at_its_seq() {
    each_backend(|b| async move {
        let store = b.open().await;
        ten_changes(&store).await;
        let raw = b.raw().await;
        let edit = "UPDATE audit_log SET detail = '{\"reason\":\"nothing to see\"}' WHERE seq = 8";
        assert!(
            raw.exec(edit).await.is_err(),
            "the append-only trigger refuses edits"
        );
        raw.drop_audit_triggers().await;
        assert_eq!(raw.exec(edit).await.unwrap(), 1);
        let err = store.verify_audit_log().await.unwrap_err();
        assert!(
            matches!(err, AuditError::Broken(ChainBreak::HashMismatch { seq: 8 })),
            "{err:?}"
        );

        // Re-hashing the edited entry moves the break to the next link.
        let e = store.audit_entries(7, 1).await.unwrap().remove(0);
        let content = EntryContent {
            seq: e.seq,
            at: e.at,
            actor: &e.actor,
            action: &e.action,
            subject: &e.subject,
            detail: &e.detail,
        };
        let rehashed = hex::encode(entry_hash(&parse_hash(&e.prev_hash).unwrap(), &content));
        raw.exec(&format!(
            "UPDATE audit_log SET hash = '{rehashed}' WHERE seq = 8"
        ))
        .await
        .unwrap();
        let err = store.verify_audit_log().await.unwrap_err();
        assert!(
            matches!(err, AuditError::Broken(ChainBreak::BrokenLink { seq: 9 })),
            "{err:?}"
        );
        raw.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_deleted_entry_is_detected() {
    each_backend(|b| async move {
        let store = b.open().await;
        ten_changes(&store).await;
        let raw = b.raw().await;
        assert!(
            raw.exec("DELETE FROM audit_log WHERE seq = 4")
                .await
                .is_err(),
            "trigger refuses"
        );
        raw.drop_audit_triggers().await;
        raw.exec("DELETE FROM audit_log WHERE seq = 4")
            .await
            .unwrap();
        let err = store.verify_audit_log().await.unwrap_err();
        assert!(
            matches!(
                err,
                AuditError::Broken(ChainBreak::SeqGap {
                    expected: 4,
                    found: 5
                })
            ),
            "{err:?}"
        );
        raw.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_truncated_tail_is_reported_against_the_head() {
    each_backend(|b| async move {
        let store = b.open().await;
        ten_changes(&store).await;
        let raw = b.raw().await;
        raw.drop_audit_triggers().await;
        raw.exec("DELETE FROM audit_log WHERE seq > 8")
            .await
            .unwrap();
        let err = store.verify_audit_log().await.unwrap_err();
        assert!(
            matches!(
                err,
                AuditError::HeadMismatch {
                    head_seq: 10,
                    last_seq: 8
                }
            ),
            "{err:?}"
        );
        raw.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_appends_from_many_tasks_and_two_stores_keep_one_chain() {
    each_backend(|b| async move {
        let first = b.open().await;
        let second = b.open().await; // a second gateway on the same database
        let mut tasks = Vec::new();
        for t in 0..8u32 {
            let store = if t % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tasks.push(tokio::spawn(async move {
                for i in 0..25u32 {
                    let subject = format!("task-{t}");
                    store
                        .append_audit(
                            "test",
                            "concurrent",
                            &subject,
                            &format!("{{\"i\":{i}}}"),
                            T0,
                        )
                        .await
                        .unwrap();
                    if i % 5 == 0 {
                        // Interleave registry changes, which append in their own transactions.
                        let n = t * 100 + i;
                        store
                            .enroll_device(
                                &device(&format!("dev-{n}"), &format!("SN{n}"), n),
                                "admin",
                                T0,
                            )
                            .await
                            .unwrap();
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let report = first.verify_audit_log().await.unwrap();
        assert_eq!(report.entries, 8 * 25 + 8 * 5);
        assert_eq!(second.verify_audit_log().await.unwrap(), report);
        first.close().await;
        second.close().await;
    })
    .await;
}
