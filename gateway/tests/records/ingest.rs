//! Pushing records: stored, replayed, and each kind of tampering refused, flagged and
//! kept as evidence without losing the rest of the push.

use protocol::chain::record_hash;
use protocol::hash::Sha256Hash;
use protocol::message::{RecordOutcome, RejectReason};
use test_support::backends;

use crate::support::{Chain, T0, device, gateway, outcomes, push};

#[tokio::test]
async fn records_are_stored_and_a_replay_is_a_duplicate_with_no_second_row() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, 1, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        let (id, conn) = device(&gw, 1, T0).await;
        let mut chain = Chain::new(&id);
        let records = chain.records("C-1", 5, T0 - 60_000);
        let acks = push(&conn, records.clone()).await;
        assert_eq!(
            outcomes(&acks),
            vec![RecordOutcome::Stored; 5],
            "{}",
            backend.name()
        );
        assert_eq!(
            acks.iter().map(|a| a.sequence).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );

        // The device lost the acks and pushes everything again, plus one new record.
        let mut again = records.clone();
        again.push(chain.seal(crate::support::content("C-1", "new", T0)));
        let acks = push(&conn, again).await;
        let mut expected = vec![RecordOutcome::Duplicate; 5];
        expected.push(RecordOutcome::Stored);
        assert_eq!(outcomes(&acks), expected, "{}", backend.name());
        assert_eq!(store.record_count().await.unwrap(), 6);
        assert!(store.tamper_flags(None).await.unwrap().is_empty());

        let stored = store.device_records(&id).await.unwrap();
        assert_eq!(stored.len(), 6);
        assert!(stored.iter().all(|r| r.chain_break.is_none()));
        assert_eq!(
            stored[0].record, records[0],
            "the record reads back as sealed"
        );

        // A reconnecting device learns where its chain ends.
        let (_, identity) = gw.device(1);
        let mut fresh = gw.connect(&identity).await.unwrap();
        let welcome = fresh.hello(T0, "records-test/1").await.unwrap();
        assert_eq!(welcome.chain, chain.head, "{}", backend.name());
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn each_kind_of_tampering_is_refused_flagged_and_the_rest_is_kept() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, 2, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        let (id, conn) = device(&gw, 1, T0).await;
        let mut chain = Chain::new(&id);
        let first = chain.records("C-2", 3, T0);
        assert_eq!(
            outcomes(&push(&conn, first.clone()).await),
            vec![RecordOutcome::Stored; 3]
        );

        // Fork: a different record at a used sequence number, then a good record.
        let mut fork = first[1].clone();
        fork.content.text = "rewritten history".into();
        fork.hash = record_hash(&id, 2, &fork.previous_hash, &fork.content);
        let good4 = chain.seal(crate::support::content("C-2", "four", T0 + 4000));
        let acks = push(&conn, vec![fork.clone(), good4]).await;
        assert_eq!(
            outcomes(&acks),
            vec![
                RecordOutcome::Rejected(RejectReason::Fork),
                RecordOutcome::Stored
            ],
            "{}",
            backend.name()
        );

        // Altered: content changed after sealing.
        let mut altered = chain.seal(crate::support::content("C-2", "five", T0 + 5000));
        altered.content.text = "five, edited".into();
        // Broken link: a record re-sealed on a previous hash that is not the chain's.
        let mut resealed = crate::support::content("C-2", "resealed", T0 + 5000);
        resealed.text.push('!');
        let forged_prev = Sha256Hash::of(b"not the stored record");
        let broken = protocol::message::FieldRecord {
            sequence: 5,
            previous_hash: forged_prev,
            hash: record_hash(&id, 5, &forged_prev, &resealed),
            content: resealed,
        };
        // Gap: sequence 9 while 5 is expected.
        let mut gap = broken.clone();
        gap.sequence = 9;
        gap.hash = record_hash(&id, 9, &gap.previous_hash, &gap.content);
        let acks = push(&conn, vec![altered.clone(), broken.clone(), gap.clone()]).await;
        assert_eq!(
            outcomes(&acks),
            vec![
                RecordOutcome::Rejected(RejectReason::Altered),
                RecordOutcome::Rejected(RejectReason::BrokenLink),
                RecordOutcome::Rejected(RejectReason::Gap { expected: 5 }),
            ],
            "{}",
            backend.name()
        );

        // Another device is not affected, and the chain still continues correctly.
        let (other, other_conn) = device(&gw, 2, T0).await;
        let mut other_chain = Chain::new(&other);
        assert_eq!(
            outcomes(&push(&other_conn, other_chain.records("C-3", 2, T0)).await),
            vec![RecordOutcome::Stored; 2]
        );
        // The device's chain continues from what the gateway stored.
        let mut repaired = Chain {
            device: id.clone(),
            head: store.chain_head(&id).await.unwrap(),
        };
        assert_eq!(repaired.head.next_sequence, 5);
        let five = repaired.seal(crate::support::content("C-2", "five", T0 + 5000));
        assert_eq!(
            outcomes(&push(&conn, vec![five]).await),
            vec![RecordOutcome::Stored]
        );

        // Every tamper case is visible to supervisors, with the bytes as evidence.
        let flags = store.tamper_flags(Some(&id)).await.unwrap();
        let reasons: Vec<&str> = flags.iter().map(|f| f.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec!["fork", "altered", "broken_link", "gap"],
            "{}",
            backend.name()
        );
        assert_eq!(flags[0].record().unwrap(), fork);
        assert_eq!(flags[1].record().unwrap(), altered);
        assert_eq!(flags[2].record().unwrap(), broken);
        assert_eq!(flags[3].expected_sequence, Some(5));
        assert_eq!(flags[3].record().unwrap(), gap);

        // Pushing the same tampered record again flags it once.
        push(&conn, vec![fork]).await;
        assert_eq!(store.tamper_flags(Some(&id)).await.unwrap().len(), 4);

        // Nothing refused was stored; everything else was.
        assert_eq!(store.record_count().await.unwrap(), 5 + 2);
        let chain_rows = store.device_records(&id).await.unwrap();
        assert_eq!(chain_rows.len(), 5);
        assert!(chain_rows.iter().all(|r| r.chain_break.is_none()));
        assert_eq!(
            chain_rows[1].record, first[1],
            "the fork did not replace the stored record"
        );

        let metrics = gw.metrics_text().await;
        assert!(
            metrics.contains("fieldsync_records_total{outcome=\"rejected\"} 5"),
            "{metrics}"
        );
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn an_invalid_record_is_refused_alone_and_too_many_records_are_refused_whole() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, 1, |c| c.limits.max_records_per_push = 4).await;
        let (id, conn) = device(&gw, 1, T0).await;
        let mut chain = Chain::new(&id);
        let mut records = chain.records("C-4", 3, T0);
        records[2].content.text = "nul \0 byte".into();
        records[2].hash = record_hash(&id, 3, &records[2].previous_hash, &records[2].content);
        let acks = push(&conn, records).await;
        assert_eq!(acks[0].outcome, RecordOutcome::Stored);
        assert_eq!(acks[1].outcome, RecordOutcome::Stored);
        assert!(
            matches!(&acks[2].outcome, RecordOutcome::Rejected(RejectReason::Invalid { problem }) if problem.contains("text")),
            "{:?}",
            acks[2]
        );

        let too_many = chain.records("C-4", 5, T0);
        let err = conn
            .request(protocol::RequestBody::PushRecords(
                protocol::message::PushRecords { records: too_many },
            ))
            .await
            .unwrap_err();
        match err {
            agent::ClientError::Refused(reply) => {
                assert_eq!(
                    reply.code,
                    protocol::ErrorCode::TooManyItems,
                    "{}",
                    backend.name()
                )
            }
            other => panic!("expected TooManyItems, got {other}"),
        }
        assert_eq!(gw.gateway.state().store.record_count().await.unwrap(), 2);
        gw.gateway.shutdown().await;
    }
}
