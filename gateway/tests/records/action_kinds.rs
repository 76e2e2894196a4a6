//! Action kinds are a vocabulary (DOMAIN R3): a kind that is not in it is refused at
//! ingest with a typed reason naming the known codes, and nothing is stored; a kind in
//! any spelling of one code ("Seizure ", "SEIZURE") gets every rule of that code, the
//! two-officer rule and the whole-process audio-video rule alike.

use protocol::message::{RecordOutcome, RejectReason};
use store::recordings::CaseFlagKind;
use test_support::backends;

use crate::support::{Chain, T0, content, device, gateway, officer, outcomes, push};

const H: i64 = 3_600_000;

#[tokio::test]
async fn an_unknown_kind_is_refused_and_every_spelling_of_a_code_gets_its_rules() {
    for backend in backends().await {
        let (gw, clock) = gateway(&backend, 1, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        store
            .upsert_officer(&officer("ZF-001"), "test", T0 - H)
            .await
            .unwrap();
        let (id, conn) = device(&gw, 1, T0).await;

        let mut misspelt = content("K-1", "goods seized", T0);
        misspelt.action_kind = "seizzure".into();
        let acks = push(&conn, vec![Chain::new(&id).seal(misspelt)]).await;
        match &acks[0].outcome {
            RecordOutcome::Rejected(RejectReason::UnknownActionKind { action_kind, known }) => {
                assert_eq!(action_kind, "seizzure");
                assert!(known.iter().any(|k| k == "seizure"), "{known:?}");
            }
            other => panic!(
                "{}: expected an unknown kind, got {other:?}",
                backend.name()
            ),
        }
        assert_eq!(store.record_count().await.unwrap(), 0, "nothing stored");

        // The same chain position again, spelt as an officer might type it: stored,
        // and judged as a seizure by every rule.
        let mut chain = Chain::new(&id);
        let mut seizure = content("K-1", "goods seized", T0);
        seizure.action_kind = " Seizure".into();
        seizure.officers = vec!["ZF-001".into()];
        let mut shouted = content("K-2", "goods seized", T0);
        shouted.action_kind = "SEIZURE".into();
        shouted.officers = vec!["ZF-001".into()];
        let acks = push(&conn, vec![chain.seal(seizure), chain.seal(shouted)]).await;
        assert_eq!(outcomes(&acks), vec![RecordOutcome::Stored; 2]);
        let flags = store.two_officer_flags().await.unwrap();
        assert_eq!(flags.len(), 2, "{}", backend.name());
        assert_eq!(flags[0].action_kind, " Seizure", "kept as sealed");

        clock.set(T0 + 24 * H + 1);
        gw.gateway.state().deadlines().evaluate().await.unwrap();
        for case in ["K-1", "K-2"] {
            let flags = store.case_flags(case).await.unwrap();
            assert_eq!(flags.len(), 1, "{case}");
            assert_eq!(flags[0].kind, CaseFlagKind::MissingAudioVideo);
        }
        gw.gateway.shutdown().await;
    }
}
