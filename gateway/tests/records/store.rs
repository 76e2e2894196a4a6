//! The records store without the endpoint: append-only tables, edits made behind the
//! store's back detected by the case view, and a failed group commit that stores and
//! acknowledges nothing.

use std::sync::Arc;
use std::time::Duration;

use clock::ManualClock;
use gateway::ingest::{Committer, IngestError, IngestSettings, RecordMetrics};
use gateway::metrics::Metrics;
use protocol::DeviceId;
use protocol::chain::ChainBreak;
use protocol::deadline::ClockSkew;
use store::IngestRules;
use store::RecordBatch;
use test_support::backends;

use crate::support::{Chain, Raw, T0, gateway};

#[tokio::test]
async fn records_are_append_only_and_an_edit_behind_the_stores_back_is_detected() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, 1, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        let (id, _) = gw.device(1);
        let mut chain = Chain::new(&id);
        let batch = RecordBatch {
            device: id.clone(),
            skew: ClockSkew::from_millis(0),
            records: chain.records("C-40", 3, T0),
        };
        let (acks, summary) = store
            .ingest_records(&[batch], &IngestRules::default(), T0)
            .await
            .unwrap();
        assert_eq!(acks[0].len(), 3);
        assert_eq!(summary.stored, 3);

        let raw = Raw::open(&gw).await;
        for sql in [
            "UPDATE field_records SET text = 'edited' WHERE sequence = 2",
            "DELETE FROM field_records WHERE sequence = 3",
            "DELETE FROM certificate_history",
            "UPDATE identity_checks SET verdict = 'valid'",
            "DELETE FROM tamper_flags",
        ] {
            let refused = raw.execute(sql).await;
            // An empty table has nothing to refuse, so only the record statements must
            // fail; the others must at least not succeed in changing anything.
            if sql.contains("field_records") {
                let err = refused.expect_err(sql);
                assert!(
                    err.contains("append-only"),
                    "{}: {sql}: {err}",
                    backend.name()
                );
            } else {
                assert!(refused.is_err() || refused == Ok(0), "{sql}: {refused:?}");
            }
        }
        assert!(store.case_records("C-40").await.unwrap().chain_verified());

        // Someone with the power to drop triggers edits a record: the view says so.
        let drop = match raw {
            Raw::Sqlite(_) => "DROP TRIGGER field_records_no_update",
            Raw::Postgres(_) => "DROP TRIGGER field_records_no_change ON field_records",
        };
        raw.execute(drop).await.unwrap();
        raw.execute("UPDATE field_records SET text = 'edited' WHERE sequence = 2")
            .await
            .unwrap();
        let view = store.case_records("C-40").await.unwrap();
        assert!(!view.chain_verified(), "{}", backend.name());
        assert_eq!(
            view.records[1].chain_break,
            Some(ChainBreak::Altered { sequence: 2 })
        );
        raw.close().await;
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn a_failed_group_commit_fails_every_caller_and_stores_nothing() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, 1, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        let (good, _) = gw.device(1);
        // Not enrolled: its records violate the devices foreign key, so the group's
        // transaction fails as a whole.
        let ghost = DeviceId::new("dev-ghost").unwrap();
        let batch = |device: &DeviceId| RecordBatch {
            device: device.clone(),
            skew: ClockSkew::from_millis(0),
            records: Chain::new(device).records("C-41", 2, T0),
        };
        let err = store
            .ingest_records(&[batch(&good), batch(&ghost)], &IngestRules::default(), T0)
            .await;
        assert!(err.is_err(), "{}", backend.name());
        assert_eq!(store.record_count().await.unwrap(), 0);

        // Through the committer: both callers of the failed group get an error.
        let metrics = Metrics::new();
        let committer = Arc::new(Committer::start(
            store.clone(),
            IngestRules::default(),
            Arc::new(ManualClock::new(T0)),
            RecordMetrics::register(&metrics),
            IngestSettings {
                max_batch_records: 4,
                max_wait: Duration::from_secs(2),
                queue_requests: 8,
                queue_bytes: 1 << 20,
            },
            Arc::new(gateway::faults::StorageFaults::register(&metrics)),
            Arc::new(gateway::storage::StorageWatch::new(
                gateway::config::StorageSettings::default(),
                Vec::new(),
                &metrics,
            )),
        ));
        let (a, b) = tokio::join!(
            committer.submit(batch(&good)),
            committer.submit(batch(&ghost))
        );
        assert!(matches!(a, Err(IngestError::CommitFailed(_))), "{a:?}");
        assert!(matches!(b, Err(IngestError::CommitFailed(_))), "{b:?}");
        assert_eq!(store.record_count().await.unwrap(), 0);
        assert_eq!(
            committer
                .metrics()
                .failed_commits
                .with_label_values(&[backend.name()])
                .get(),
            1
        );

        // The good device's records go through on their own.
        let acks = committer.submit(batch(&good)).await.unwrap();
        assert_eq!(acks.len(), 2);
        committer.stop().await;
        assert!(matches!(
            committer.submit(batch(&good)).await,
            Err(IngestError::Stopped)
        ));
        assert_eq!(store.record_count().await.unwrap(), 2);
        gw.gateway.shutdown().await;
    }
}
