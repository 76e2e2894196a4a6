//! Group commit: pushes from many connections are stored together in one transaction,
//! and each caller's acks come back only after that commit.

use std::time::Duration;

use protocol::message::RecordOutcome;
use test_support::backends;

use crate::support::{Chain, T0, device, gateway, outcomes, push};

const DEVICES: u32 = 6;
const RECORDS_PER_PUSH: u64 = 20;
const PUSHES: u64 = 3;

/// A histogram's `(count, sum)`.
fn histogram(h: &prometheus::Histogram) -> (u64, f64) {
    (h.get_sample_count(), h.get_sample_sum())
}

#[tokio::test]
async fn pushes_from_many_connections_share_commits_and_every_record_is_stored_once() {
    for backend in backends().await {
        // A group waits (boundedly) until it holds two devices' pushes, so grouping
        // does not depend on how fast this machine is.
        let (gw, _clock) = gateway(&backend, DEVICES, |c| {
            c.ingest.max_batch_records = 2 * RECORDS_PER_PUSH as u32;
            c.ingest.max_wait_ms = 1000;
        })
        .await;
        let mut tasks = Vec::new();
        for n in 1..=DEVICES {
            let (id, conn) = device(&gw, n, T0).await;
            tasks.push(tokio::spawn(async move {
                let mut chain = Chain::new(&id);
                let mut all = Vec::new();
                for p in 0..PUSHES {
                    let records =
                        chain.records(&format!("C-{n}"), RECORDS_PER_PUSH, T0 + p as i64 * 60_000);
                    all.extend(outcomes(&push(&conn, records).await));
                }
                all
            }));
        }
        for task in tasks {
            let acks = tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("pushes finish")
                .expect("push task");
            assert_eq!(
                acks,
                vec![RecordOutcome::Stored; (RECORDS_PER_PUSH * PUSHES) as usize],
                "{}",
                backend.name()
            );
        }
        let store = &gw.gateway.state().store;
        let total = u64::from(DEVICES) * RECORDS_PER_PUSH * PUSHES;
        assert_eq!(store.record_count().await.unwrap(), total);

        let metrics = gw.gateway.state().ingest.metrics();
        let (commits, requests) = histogram(&metrics.batch_requests);
        let (_, records) = histogram(&metrics.batch_records);
        assert_eq!(
            requests as u64,
            u64::from(DEVICES) * PUSHES,
            "{}",
            backend.name()
        );
        assert_eq!(records as u64, total);
        assert!(
            commits < requests as u64,
            "{}: {commits} commits for {requests} pushes: no commit held pushes of two connections",
            backend.name()
        );
        for n in 1..=DEVICES {
            let (id, _) = gw.device(n);
            let rows = store.device_records(&id).await.unwrap();
            assert_eq!(rows.len() as u64, RECORDS_PER_PUSH * PUSHES);
            assert!(rows.iter().all(|r| r.chain_break.is_none()));
        }
        gw.gateway.shutdown().await;
    }
}
