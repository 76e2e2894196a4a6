//! Ack after commit: every record the gateway acknowledged is in the database, seen
//! through a second, independent store handle at once and after the gateway stopped.

use protocol::message::RecordOutcome;
use store::Store;
use test_support::backends;

use crate::support::{Chain, T0, device, gateway, outcomes, push};

#[tokio::test]
async fn every_acknowledged_record_is_in_the_database_when_the_ack_arrives() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, 3, |_| {}).await;
        let mut acked = Vec::new();
        let mut conns = Vec::new();
        for n in 1..=3 {
            let (id, conn) = device(&gw, n, T0).await;
            let mut chain = Chain::new(&id);
            for p in 0..4 {
                let acks = push(&conn, chain.records("C-30", 25, T0 + p * 100_000)).await;
                assert_eq!(outcomes(&acks), vec![RecordOutcome::Stored; 25]);
            }
            acked.push((id, chain.head));
            conns.push(conn);
        }
        // A second store on the same database sees every acknowledged record while the
        // gateway still runs: the acks came after the commit, not before.
        let config = gw.config.store_config();
        let other = Store::open(&config).await.expect("second store handle");
        for (id, head) in &acked {
            assert_eq!(
                other.chain_head(id).await.unwrap(),
                *head,
                "{}",
                backend.name()
            );
        }
        other.close().await;

        gw.gateway.shutdown().await;
        let reopened = Store::open(&config).await.expect("reopen after stop");
        for (id, head) in &acked {
            let rows = reopened.device_records(id).await.unwrap();
            assert_eq!(rows.len(), 100);
            assert!(rows.iter().all(|r| r.chain_break.is_none()));
            assert_eq!(reopened.chain_head(id).await.unwrap(), *head);
        }
        reopened.close().await;
    }
}
