//! Two-officer flags over time (DOMAIN R4; issue 21, point 4): a registry change or a
//! correction judges the records it concerns again, raising or clearing their flags,
//! each with an audit entry, and the case view links a correction and the record it
//! corrects both ways.

use protocol::domain::CertificateStatus;
use protocol::message::RecordOutcome;
use protocol::two_officer::NotCountedReason;
use store::{Store, TwoOfficerFlagChange};
use test_support::backends;

use crate::support::{Chain, T0, content, device, gateway, officer, outcomes, push};

const MINUTE: i64 = 60_000;

fn seizure(case: &str, text: &str, at: i64, officers: &[&str]) -> protocol::message::RecordContent {
    let mut c = content(case, text, at);
    c.action_kind = "seizure".into();
    c.officers = officers.iter().map(|o| o.to_string()).collect();
    c
}

/// The audit entries of one action, as `(subject, detail)`.
async fn audited(store: &Store, action: &str) -> Vec<(String, serde_json::Value)> {
    store
        .audit_entries(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| (e.subject, serde_json::from_str(&e.detail).unwrap()))
        .collect()
}

/// `(raised, cause, cause_ref)` of each change of one record's flag.
fn causes(history: &[TwoOfficerFlagChange]) -> Vec<(bool, &str, Option<&str>)> {
    history
        .iter()
        .map(|c| (c.raised, c.cause.as_str(), c.cause_ref.as_deref()))
        .collect()
}

#[tokio::test]
async fn an_officer_entered_after_the_record_clears_the_false_flag() {
    for backend in backends().await {
        let (gw, clock) = gateway(&backend, 1, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        store
            .upsert_officer(&officer("ZF-001"), "test", T0 - 60 * MINUTE)
            .await
            .unwrap();
        let (id, conn) = device(&gw, 1, T0).await;
        let mut chain = Chain::new(&id);
        let record = chain.seal(seizure("C-40", "seized goods", T0, &["ZF-001", "ZF-002"]));
        let acks = push(&conn, vec![record]).await;
        assert_eq!(outcomes(&acks), vec![RecordOutcome::Stored]);
        let flags = store.two_officer_flags().await.unwrap();
        assert_eq!(flags.len(), 1, "{}", backend.name());
        assert_eq!(
            flags[0].not_counted[0].reason,
            NotCountedReason::UnknownCertificate
        );

        // ZF-002 held a valid certificate all along; the equipment manager types it
        // in an hour later. Its first state counts before it was entered.
        clock.set(T0 + 60 * MINUTE);
        store
            .upsert_officer(&officer("ZF-002"), "manager", T0 + 60 * MINUTE)
            .await
            .unwrap();
        assert!(
            store.two_officer_flags().await.unwrap().is_empty(),
            "{}: the false flag is cleared",
            backend.name()
        );
        let history = store.two_officer_flag_history(&id, 1).await.unwrap();
        assert_eq!(
            causes(&history),
            vec![(true, "ingest", None), (false, "registry", Some("ZF-002"))],
            "{}",
            backend.name()
        );
        let cleared = audited(&store, store::actions::TWO_OFFICER_FLAG_CLEARED).await;
        assert_eq!(cleared.len(), 1, "{}", backend.name());
        assert_eq!(cleared[0].0, format!("{id}/1"));
        assert_eq!(cleared[0].1["cause"], "registry");
        assert_eq!(cleared[0].1["because"], "ZF-002");
        assert_eq!(cleared[0].1["certified"], 2);
        store.verify_audit_log().await.unwrap();

        // A change that does not alter the judgement writes nothing more.
        let mut renamed = officer("ZF-002");
        renamed.name = "Officer Two".into();
        store
            .upsert_officer(&renamed, "manager", T0 + 61 * MINUTE)
            .await
            .unwrap();
        assert_eq!(
            store.two_officer_flag_history(&id, 1).await.unwrap().len(),
            2
        );
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn a_withdrawal_effective_before_a_record_raises_its_flag() {
    for backend in backends().await {
        let (gw, clock) = gateway(&backend, 1, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        for number in ["ZF-001", "ZF-002"] {
            store
                .upsert_officer(&officer(number), "test", T0 - 60 * MINUTE)
                .await
                .unwrap();
        }
        clock.set(T0 + 30 * MINUTE);
        let (id, conn) = device(&gw, 1, T0 + 30 * MINUTE).await;
        let mut chain = Chain::new(&id);
        let early = chain.seal(seizure(
            "C-41",
            "09:05",
            T0 + 5 * MINUTE,
            &["ZF-001", "ZF-002"],
        ));
        let late = chain.seal(seizure(
            "C-41",
            "09:20",
            T0 + 20 * MINUTE,
            &["ZF-001", "ZF-002"],
        ));
        let acks = push(&conn, vec![early, late]).await;
        assert_eq!(outcomes(&acks), vec![RecordOutcome::Stored; 2]);
        assert!(store.two_officer_flags().await.unwrap().is_empty());

        // ZF-002 retired at 09:10; the withdrawal is typed in at 10:00.
        clock.set(T0 + 60 * MINUTE);
        store
            .set_certificate_status(
                "ZF-002",
                CertificateStatus::Withdrawn,
                Some(T0 + 10 * MINUTE),
                "manager",
                "retirement",
                T0 + 60 * MINUTE,
            )
            .await
            .unwrap();
        let flags = store.two_officer_flags().await.unwrap();
        assert_eq!(
            flags.iter().map(|f| f.sequence).collect::<Vec<_>>(),
            vec![2],
            "{}: only the record after the withdrawal took effect",
            backend.name()
        );
        assert_eq!((flags[0].certified, flags[0].required), (1, 2));
        assert_eq!(flags[0].not_counted[0].certificate_number, "ZF-002");
        assert_eq!(flags[0].not_counted[0].reason, NotCountedReason::Withdrawn);
        assert!(
            store
                .two_officer_flag_history(&id, 1)
                .await
                .unwrap()
                .is_empty()
        );
        let raised = audited(&store, store::actions::TWO_OFFICER_FLAG_RAISED).await;
        assert_eq!(raised.len(), 1, "{}", backend.name());
        assert_eq!(raised[0].0, format!("{id}/2"));
        assert_eq!(raised[0].1["because"], "ZF-002");
        assert_eq!(raised[0].1["not_counted"][0], "ZF-002 (withdrawn)");

        // Restored (the withdrawal was a mistake) from the same instant: cleared again.
        store
            .set_certificate_status(
                "ZF-002",
                CertificateStatus::Valid,
                Some(T0 + 10 * MINUTE),
                "manager",
                "entered in error",
                T0 + 61 * MINUTE,
            )
            .await
            .unwrap();
        assert!(store.two_officer_flags().await.unwrap().is_empty());
        assert_eq!(
            causes(&store.two_officer_flag_history(&id, 2).await.unwrap()),
            vec![
                (true, "registry", Some("ZF-002")),
                (false, "registry", Some("ZF-002"))
            ]
        );
        store.verify_audit_log().await.unwrap();
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn a_correction_adding_the_second_officer_clears_the_original_and_the_views_link_both() {
    for backend in backends().await {
        let (gw, clock) = gateway(&backend, 1, |_| {}).await;
        let state = gw.gateway.state().clone();
        let store = state.store.clone();
        for number in ["ZF-001", "ZF-002"] {
            store
                .upsert_officer(&officer(number), "test", T0 - 60 * MINUTE)
                .await
                .unwrap();
        }
        let (id, conn) = device(&gw, 1, T0).await;
        let mut chain = Chain::new(&id);
        let original = chain.seal(seizure("C-42", "seized goods", T0, &["ZF-001"]));
        let acks = push(&conn, vec![original]).await;
        assert_eq!(outcomes(&acks), vec![RecordOutcome::Stored]);
        assert_eq!(store.two_officer_flags().await.unwrap().len(), 1);

        // The officer forgot to list the second officer; the correction restates the
        // record with both.
        clock.set(T0 + 5 * MINUTE);
        let mut fix = seizure(
            "C-42",
            "correction: ZF-002 was present",
            T0 + 5 * MINUTE,
            &["ZF-001", "ZF-002"],
        );
        fix.corrects = Some(1);
        let acks = push(&conn, vec![chain.seal(fix)]).await;
        assert_eq!(outcomes(&acks), vec![RecordOutcome::Stored]);
        // The review job may have run already (it wakes on the commit); running it
        // here makes the test wait for nothing.
        gateway::jobs::two_officer_reviews::review_queued(&state.store, &state.clock)
            .await
            .unwrap();
        assert_eq!(store.queued_two_officer_reviews().await.unwrap(), 0);
        assert!(
            store.two_officer_flags().await.unwrap().is_empty(),
            "{}: the original's flag is cleared",
            backend.name()
        );
        let correction = format!("{id}/2");
        assert_eq!(
            causes(&store.two_officer_flag_history(&id, 1).await.unwrap()),
            vec![
                (true, "ingest", None),
                (false, "correction", Some(correction.as_str()))
            ],
            "{}",
            backend.name()
        );
        let cleared = audited(&store, store::actions::TWO_OFFICER_FLAG_CLEARED).await;
        assert_eq!(cleared.len(), 1);
        assert_eq!(cleared[0].0, format!("{id}/1"));
        assert_eq!(cleared[0].1["because"], correction);

        let view = gateway::views::cases::case_view(
            &state.store,
            &state.config.policy,
            state.clock.now(),
            "C-42",
        )
        .await
        .unwrap();
        assert_eq!(view.records.len(), 2);
        assert_eq!(view.records[0].corrected_by, vec![correction.clone()]);
        assert_eq!(view.records[0].two_officer, None);
        assert_eq!(
            view.records[1].correction_of.as_deref(),
            Some(format!("{id}/1").as_str())
        );
        assert!(view.records[1].corrected_by.is_empty());
        assert_eq!(view.summary.two_officer_flags, 0);

        // A later registry change judges the original by its correction's officers.
        store
            .set_certificate_status(
                "ZF-002",
                CertificateStatus::Revoked,
                Some(T0 - MINUTE),
                "manager",
                "dismissal",
                T0 + 10 * MINUTE,
            )
            .await
            .unwrap();
        let flagged: Vec<u64> = store
            .two_officer_flags()
            .await
            .unwrap()
            .iter()
            .map(|f| f.sequence)
            .collect();
        assert_eq!(flagged, vec![1, 2], "{}", backend.name());
        gw.gateway.shutdown().await;
    }
}
