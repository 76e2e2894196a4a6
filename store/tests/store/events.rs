//! Revocation broadcast tests: the status event on each backend, a change made through
//! one PostgreSQL store heard by a second (two gateways), Resync after the listener's
//! connection is killed, and a clean stop on close.

use std::time::Duration;

use protocol::domain::DeviceStatus;
use store::{DeviceStatusEvent, Store};
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::time::timeout;

use crate::support::*;

async fn next_event(rx: &mut Receiver<DeviceStatusEvent>) -> DeviceStatusEvent {
    timeout(EVENT_WAIT, rx.recv())
        .await
        .expect("no event in time")
        .expect("event channel")
}

fn revoked(n: u32, device_id: &str) -> DeviceStatusEvent {
    DeviceStatusEvent::Changed {
        device_id: id(device_id),
        fingerprint: fp(n),
        status: DeviceStatus::Revoked,
    }
}

#[tokio::test]
async fn a_status_change_is_published_after_commit_and_a_refused_one_is_not() {
    each_backend(|b| async move {
        let store = b.open().await;
        let mut rx = store.device_status_events();
        store
            .enroll_device(&device("dev-1", "SN1", 1), "admin", T0)
            .await
            .unwrap();
        store
            .set_device_status(&id("dev-1"), DeviceStatus::Revoked, "admin", "stolen", T0)
            .await
            .unwrap();
        assert_eq!(next_event(&mut rx).await, revoked(1, "dev-1"));

        // A refused change publishes nothing: the next event is the next real change.
        store
            .set_device_status(&id("dev-1"), DeviceStatus::InService, "admin", "x", T0)
            .await
            .unwrap_err();
        store
            .enroll_device(&device("dev-2", "SN2", 2), "admin", T0)
            .await
            .unwrap();
        store
            .set_device_status(&id("dev-2"), DeviceStatus::Revoked, "admin", "stolen", T0)
            .await
            .unwrap();
        assert_eq!(next_event(&mut rx).await, revoked(2, "dev-2"));
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_change_through_one_store_reaches_a_second_store() {
    postgres_only(
        "SQLite serves one gateway; its events are in-process",
        |b| async move {
            let gateway_a = b.open().await;
            let gateway_b = b.open().await;
            let mut rx_b = gateway_b.device_status_events();
            gateway_a
                .enroll_device(&device("dev-1", "SN1", 1), "admin", T0)
                .await
                .unwrap();
            gateway_a
                .set_device_status(&id("dev-1"), DeviceStatus::Revoked, "admin", "stolen", T0)
                .await
                .unwrap();
            assert_eq!(next_event(&mut rx_b).await, revoked(1, "dev-1"));

            gateway_a.close().await;
            gateway_b.close().await;
        },
    )
    .await;
}

#[tokio::test]
async fn deployments_in_other_schemas_are_not_disturbed() {
    postgres_only("schemas are a PostgreSQL notion", |b| async move {
        let here = b.open().await;
        let mut rx = here.device_status_events();
        // Another deployment (schema) on the same database revokes a device with the same id.
        let url = match &b.config {
            store::StoreConfig::Postgres { url, .. } => url.clone(),
            _ => unreachable!(),
        };
        let raw = b.raw().await;
        let other_schema = format!("{}_other", b.schema());
        raw.exec(&format!("CREATE SCHEMA {other_schema}"))
            .await
            .unwrap();
        let config = store::StoreConfig::Postgres {
            url,
            schema: Some(other_schema.clone()),
        };
        let there = Store::open(&config).await.unwrap();
        there
            .enroll_device(&device("dev-1", "SN1", 1), "admin", T0)
            .await
            .unwrap();
        there
            .set_device_status(&id("dev-1"), DeviceStatus::Revoked, "admin", "x", T0)
            .await
            .unwrap();
        // Then a change here: it must be the first event seen.
        here.enroll_device(&device("dev-1", "SN1", 7), "admin", T0)
            .await
            .unwrap();
        here.set_device_status(&id("dev-1"), DeviceStatus::Retired, "admin", "x", T0)
            .await
            .unwrap();
        let want = DeviceStatusEvent::Changed {
            device_id: id("dev-1"),
            fingerprint: fp(7),
            status: DeviceStatus::Retired,
        };
        assert_eq!(next_event(&mut rx).await, want);
        there.close().await;
        raw.exec(&format!("DROP SCHEMA {other_schema} CASCADE"))
            .await
            .unwrap();
        raw.close().await;
        here.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_lost_listener_connection_comes_back_with_resync() {
    postgres_only(
        "only PostgreSQL has a listener connection",
        |b| async move {
            let store = b.open().await;
            let mut rx = store.device_status_events();
            let raw = b.raw().await;
            let killed = raw
                .scalar_i64(&format!(
                    "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = 'fieldsync-listener/{}'",
                    b.schema()
                ))
                .await;
            assert_eq!(killed, 1, "one listener connection per store");
            assert_eq!(next_event(&mut rx).await, DeviceStatusEvent::Resync);

            // And it listens again.
            store
                .enroll_device(&device("dev-1", "SN1", 1), "admin", T0)
                .await
                .unwrap();
            store
                .set_device_status(&id("dev-1"), DeviceStatus::Revoked, "admin", "stolen", T0)
                .await
                .unwrap();
            assert_eq!(next_event(&mut rx).await, revoked(1, "dev-1"));
            raw.close().await;
            store.close().await;
        },
    )
    .await;
}

#[tokio::test]
async fn close_ends_the_event_channel_and_the_listener() {
    each_backend(|b| async move {
        let store = b.open().await;
        let mut rx = store.device_status_events();
        store.close().await;
        // Closed only once every sender is gone, the listener task's included.
        let end = timeout(EVENT_WAIT, rx.recv()).await.expect("channel not closed in time");
        assert!(matches!(end, Err(RecvError::Closed)), "{end:?}");
        assert!(matches!(store.device_status_events().recv().await, Err(RecvError::Closed)));
        store.close().await; // twice is harmless
        if b.is_postgres() {
            let raw = b.raw().await;
            let sql = format!(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'fieldsync-listener/{}'",
                b.schema()
            );
            // The listener's backend may take a moment to exit after its socket closes.
            let mut left = raw.scalar_i64(&sql).await;
            for _ in 0..50 {
                if left == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                left = raw.scalar_i64(&sql).await;
            }
            assert_eq!(left, 0, "connections left open after close");
            raw.close().await;
        }
    })
    .await;
}
