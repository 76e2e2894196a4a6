//! The two-officer rule at ingest (DOMAIN R4): judged against the certificates as they
//! stood at the record's time; a violation is stored and flagged, never dropped.

use protocol::domain::CertificateStatus;
use protocol::message::RecordOutcome;
use protocol::two_officer::NotCountedReason;
use test_support::backends;

use crate::support::{Chain, T0, content, device, gateway, officer, outcomes, push};

const MINUTE: i64 = 60_000;

#[tokio::test]
async fn a_seizure_by_an_officer_whose_certificate_was_withdrawn_is_stored_and_flagged() {
    for backend in backends().await {
        let (gw, clock) = gateway(&backend, 1, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        for number in ["ZF-001", "ZF-002", "ZF-003"] {
            store
                .upsert_officer(&officer(number), "test", T0 - 60 * MINUTE)
                .await
                .unwrap();
        }
        let mut aux = officer("XG-009");
        aux.auxiliary = true;
        aux.certificate_status = CertificateStatus::Withdrawn;
        store
            .upsert_officer(&aux, "test", T0 - 60 * MINUTE)
            .await
            .unwrap();
        // ZF-002 retires at T0 + 10 minutes.
        store
            .set_certificate_status(
                "ZF-002",
                CertificateStatus::Withdrawn,
                None,
                "test",
                "retirement",
                T0 + 10 * MINUTE,
            )
            .await
            .unwrap();
        clock.set(T0 + 30 * MINUTE);

        let (id, conn) = device(&gw, 1, T0 + 30 * MINUTE).await;
        let mut chain = Chain::new(&id);
        let seizure = |text: &str, at: i64, officers: &[&str]| {
            let mut c = content("C-20", text, at);
            c.action_kind = "seizure".into();
            c.officers = officers.iter().map(|o| o.to_string()).collect();
            c
        };
        // Before the withdrawal, ZF-001 + ZF-002 were two certified officers.
        let before = chain.seal(seizure(
            "seized goods, 09:05",
            T0 + 5 * MINUTE,
            &["ZF-001", "ZF-002"],
        ));
        // After it, the same pair is one certified officer: a violation.
        let after = chain.seal(seizure(
            "seized goods, 09:20",
            T0 + 20 * MINUTE,
            &["ZF-001", "ZF-002"],
        ));
        // Two valid officers after the withdrawal: lawful.
        let lawful = chain.seal(seizure(
            "seized goods, 09:25",
            T0 + 25 * MINUTE,
            &["ZF-001", "ZF-003"],
        ));
        // An auxiliary and an unknown number do not count; a listed-twice number counts once.
        let thin = chain.seal(seizure(
            "sealed shop",
            T0 + 26 * MINUTE,
            &["ZF-003", "XG-009", "NOPE-1", "ZF-003"],
        ));
        // An inspection does not need two officers.
        let mut inspection = content("C-20", "inspection alone", T0 + 27 * MINUTE);
        inspection.officers = vec!["ZF-002".into()];
        let inspection = chain.seal(inspection);

        let acks = push(&conn, vec![before, after, lawful, thin, inspection]).await;
        assert_eq!(
            outcomes(&acks),
            vec![RecordOutcome::Stored; 5],
            "{}: violations are stored",
            backend.name()
        );
        assert_eq!(store.record_count().await.unwrap(), 5);

        let flags = store.two_officer_flags().await.unwrap();
        assert_eq!(
            flags.iter().map(|f| f.sequence).collect::<Vec<_>>(),
            vec![2, 4],
            "{}",
            backend.name()
        );
        assert_eq!(flags[0].device, id);
        assert_eq!(flags[0].action_kind, "seizure");
        assert_eq!((flags[0].certified, flags[0].required), (1, 2));
        assert_eq!(flags[0].not_counted.len(), 1);
        assert_eq!(flags[0].not_counted[0].certificate_number, "ZF-002");
        assert_eq!(flags[0].not_counted[0].reason, NotCountedReason::Withdrawn);
        let reasons: Vec<NotCountedReason> =
            flags[1].not_counted.iter().map(|n| n.reason).collect();
        assert_eq!(
            reasons,
            vec![
                NotCountedReason::ListedMoreThanOnce,
                NotCountedReason::Auxiliary,
                NotCountedReason::UnknownCertificate
            ]
        );
        assert_eq!(
            gw.gateway
                .state()
                .ingest
                .metrics()
                .two_officer_violations
                .get(),
            2
        );
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn the_action_kinds_needing_two_officers_come_from_configuration() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, 1, |c| {
            let mut kinds = protocol::action_kind::ActionKinds::default();
            for kind in &mut kinds.0 {
                kind.two_officers = kind.code == "inspection";
            }
            c.policy.action_kinds = kinds;
        })
        .await;
        let store = gw.gateway.state().store.clone();
        store
            .upsert_officer(&officer("ZF-001"), "test", T0 - 1)
            .await
            .unwrap();
        let (id, conn) = device(&gw, 1, T0).await;
        let mut chain = Chain::new(&id);
        let mut alone = content("C-21", "inspected alone", T0);
        alone.action_kind = " Inspection".into();
        alone.officers = vec!["ZF-001".into()];
        let mut seizure = content("C-21", "seized alone (not listed here)", T0);
        seizure.action_kind = "seizure".into();
        seizure.officers = vec!["ZF-001".into()];
        let acks = push(&conn, vec![chain.seal(alone), chain.seal(seizure)]).await;
        assert_eq!(outcomes(&acks), vec![RecordOutcome::Stored; 2]);
        let flags = store.two_officer_flags().await.unwrap();
        assert_eq!(flags.len(), 1, "{}", backend.name());
        assert_eq!(flags[0].action_kind, " Inspection");
        gw.gateway.shutdown().await;
    }
}
