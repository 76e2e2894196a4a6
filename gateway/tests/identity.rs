//! Identity checks of officers' certificates (DOMAIN R4) over the real device endpoint:
//! online answers from the registry, offline checks uploaded idempotently, and the
//! roster delta that lets a terminal see a withdrawal offline. SQLite and, with
//! `FIELDSYNC_TEST_PG` set, PostgreSQL.

use std::sync::Arc;

use agent::GatewayConnection;
use clock::ManualClock;
use protocol::domain::CertificateStatus;
use protocol::message::{
    CheckOutcome, IdentityCheck, IdentityResult, IdentityVerdict, OfflineAnswer,
    PushIdentityChecks, RosterDelta, RosterSince,
};
use protocol::{DeviceId, RequestBody, ResponseBody};
use store::OfficerRecord;
use test_support::{Backend, TestGateway, backends, test_config};
use uuid::Uuid;

const T0: i64 = 1_790_000_000_000;
const MINUTE: i64 = 60_000;

async fn gateway(
    backend: &Backend,
    tune: impl FnOnce(&mut gateway::Config),
) -> (TestGateway, ManualClock) {
    let clock = ManualClock::new(T0);
    let data = Arc::new(tempfile::tempdir().expect("tempdir"));
    let mut config = test_config(data.path(), backend, 1);
    tune(&mut config);
    let gw = TestGateway::start_with(config, data, Arc::new(clock.clone())).await;
    (gw, clock)
}

async fn device(gw: &TestGateway, device_time: i64) -> (DeviceId, GatewayConnection) {
    let (id, identity) = gw.device(1);
    let mut conn = gw.connect(&identity).await.expect("connects");
    conn.hello(device_time, "identity-test/1")
        .await
        .expect("hello");
    (id, conn)
}

fn officer(number: &str, status: CertificateStatus) -> OfficerRecord {
    OfficerRecord {
        certificate_number: number.into(),
        name: format!("Officer {number}"),
        unit: "Urban Management Brigade".into(),
        post: "team leader".into(),
        category: "urban management".into(),
        certificate_status: status,
        auxiliary: false,
        agency: None,
        valid_until: None,
        effective_at: None,
    }
}

fn check(number: &str, at: i64) -> IdentityCheck {
    IdentityCheck {
        check_id: Uuid::new_v4(),
        certificate_number: number.into(),
        checked_at: at,
        location: Some("Gate 3, East Market".into()),
        case_number: Some("C-50".into()),
        offline: None,
    }
}

async fn online(conn: &GatewayConnection, c: IdentityCheck) -> IdentityResult {
    match conn
        .request(RequestBody::CheckIdentity(c))
        .await
        .expect("answered")
    {
        ResponseBody::IdentityResult(r) => r,
        other => panic!("expected an identity result, got {other:?}"),
    }
}

async fn upload(conn: &GatewayConnection, checks: Vec<IdentityCheck>) -> Vec<(Uuid, CheckOutcome)> {
    match conn
        .request(RequestBody::PushIdentityChecks(PushIdentityChecks {
            checks,
        }))
        .await
        .expect("answered")
    {
        ResponseBody::IdentityCheckAcks(a) => a.acks,
        other => panic!("expected identity check acks, got {other:?}"),
    }
}

async fn roster(conn: &GatewayConnection, version: u64) -> RosterDelta {
    match conn
        .request(RequestBody::RosterSince(RosterSince { version }))
        .await
        .expect("answered")
    {
        ResponseBody::RosterDelta(d) => d,
        other => panic!("expected a roster delta, got {other:?}"),
    }
}

#[tokio::test]
async fn online_checks_answer_from_the_registry_and_are_stored_once() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        store
            .upsert_officer(
                &officer("ZF-100", CertificateStatus::Valid),
                "test",
                T0 - MINUTE,
            )
            .await
            .unwrap();
        store
            .upsert_officer(
                &officer("ZF-101", CertificateStatus::Valid),
                "test",
                T0 - MINUTE,
            )
            .await
            .unwrap();
        store
            .upsert_officer(
                &officer("ZF-102", CertificateStatus::Valid),
                "test",
                T0 - MINUTE,
            )
            .await
            .unwrap();
        store
            .set_certificate_status(
                "ZF-101",
                CertificateStatus::Withdrawn,
                None,
                "test",
                "transfer",
                T0 - 1,
            )
            .await
            .unwrap();
        store
            .set_certificate_status(
                "ZF-102",
                CertificateStatus::Revoked,
                None,
                "test",
                "dismissal",
                T0 - 1,
            )
            .await
            .unwrap();
        let version = store.roster_version().await.unwrap();
        let (id, conn) = device(&gw, T0).await;

        let cases = [
            ("ZF-100", IdentityVerdict::Valid),
            (" ZF-101 ", IdentityVerdict::Withdrawn),
            ("ZF-102", IdentityVerdict::Revoked),
            ("ZF-999", IdentityVerdict::Unknown),
        ];
        let mut ids = Vec::new();
        for (number, verdict) in cases {
            let c = check(number, T0);
            ids.push(c.check_id);
            let result = online(&conn, c.clone()).await;
            assert_eq!(result.verdict, verdict, "{}: {number}", backend.name());
            assert_eq!(result.check_id, c.check_id);
            assert_eq!(result.roster_version, version);
            assert_eq!(
                result
                    .officer
                    .as_ref()
                    .map(|o| o.certificate_number.as_str()),
                (verdict != IdentityVerdict::Unknown).then_some(number.trim())
            );
            // A retry after a lost reply gets the same answer and no second row.
            assert_eq!(online(&conn, c).await.verdict, verdict);
        }
        let rows = store.identity_checks(Some(&id)).await.unwrap();
        assert_eq!(rows.len(), 4, "{}", backend.name());
        for (number, verdict) in cases {
            let row = rows
                .iter()
                .find(|r| r.certificate_number == number.trim())
                .expect("check stored");
            assert!(ids.contains(&row.check_id));
            assert_eq!(row.certificate_number, number.trim());
            assert_eq!(row.verdict, verdict);
            assert_eq!(row.registry_verdict, verdict);
            assert!(!row.offline);
            assert_eq!(row.device, id);
            assert_eq!(row.location.as_deref(), Some("Gate 3, East Market"));
            assert_eq!(row.case_number.as_deref(), Some("C-50"));
            assert_eq!(row.checked_at_gateway, T0);
        }
        let metrics = gw.metrics_text().await;
        assert!(
            metrics
                .contains("fieldsync_identity_checks_total{mode=\"online\",verdict=\"revoked\"} 1"),
            "{metrics}"
        );
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn offline_checks_are_uploaded_idempotently_with_the_registry_verdict_at_their_time() {
    for backend in backends().await {
        let (gw, clock) = gateway(&backend, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        store
            .upsert_officer(
                &officer("ZF-200", CertificateStatus::Valid),
                "test",
                T0 - 60 * MINUTE,
            )
            .await
            .unwrap();
        store
            .set_certificate_status(
                "ZF-200",
                CertificateStatus::Withdrawn,
                None,
                "test",
                "resignation",
                T0 + 10 * MINUTE,
            )
            .await
            .unwrap();
        clock.set(T0 + 120 * MINUTE);
        // The terminal's clock is five minutes slow.
        let (id, conn) = device(&gw, T0 + 115 * MINUTE).await;

        let offline = |at: i64, verdict| IdentityCheck {
            offline: Some(OfflineAnswer {
                verdict,
                roster_version: 1,
            }),
            ..check("ZF-200", at)
        };
        // Checked at device 09:00 (gateway 09:05): valid then. At device 09:20 (gateway
        // 09:25) the terminal's stale roster still said valid: the registry says withdrawn.
        let early = offline(T0, IdentityVerdict::Valid);
        let stale = offline(T0 + 20 * MINUTE, IdentityVerdict::Valid);
        let not_offline = check("ZF-200", T0);
        let checks = vec![early.clone(), stale.clone(), not_offline.clone()];

        let acks = upload(&conn, checks.clone()).await;
        assert_eq!(
            acks[0],
            (early.check_id, CheckOutcome::Stored),
            "{}",
            backend.name()
        );
        assert_eq!(acks[1], (stale.check_id, CheckOutcome::Stored));
        assert_eq!(acks[2].0, not_offline.check_id);
        assert!(matches!(acks[2].1, CheckOutcome::Rejected(_)));

        let again = upload(&conn, checks).await;
        assert_eq!(
            again[0],
            (early.check_id, CheckOutcome::Duplicate),
            "{}",
            backend.name()
        );
        assert_eq!(again[1], (stale.check_id, CheckOutcome::Duplicate));

        let rows = store.identity_checks(Some(&id)).await.unwrap();
        assert_eq!(rows.len(), 2, "{}", backend.name());
        let early_row = rows.iter().find(|r| r.check_id == early.check_id).unwrap();
        let stale_row = rows.iter().find(|r| r.check_id == stale.check_id).unwrap();
        assert!(early_row.offline);
        assert_eq!(early_row.checked_at_gateway, T0 + 5 * MINUTE);
        assert_eq!(early_row.registry_verdict, IdentityVerdict::Valid);
        assert_eq!(stale_row.verdict, IdentityVerdict::Valid);
        assert_eq!(stale_row.registry_verdict, IdentityVerdict::Withdrawn);
        assert_eq!(stale_row.roster_version, 1);
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn the_roster_delta_carries_a_withdrawal_and_pages_by_the_limit() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, |c| c.limits.max_roster_entries = 2).await;
        let store = gw.gateway.state().store.clone();
        for n in 0..3 {
            store
                .upsert_officer(
                    &officer(&format!("ZF-30{n}"), CertificateStatus::Valid),
                    "test",
                    T0,
                )
                .await
                .unwrap();
        }
        let (_, conn) = device(&gw, T0).await;

        // A new terminal pages through the whole roster.
        let first = roster(&conn, 0).await;
        assert_eq!(first.entries.len(), 2, "{}", backend.name());
        assert!(first.more);
        let second = roster(&conn, first.to_version).await;
        assert_eq!(second.entries.len(), 1);
        assert!(!second.more);
        let synced = second.to_version;
        assert_eq!(synced, store.roster_version().await.unwrap());

        // A withdrawal reaches it as one changed entry.
        store
            .set_certificate_status(
                "ZF-301",
                CertificateStatus::Withdrawn,
                None,
                "test",
                "retirement",
                T0 + MINUTE,
            )
            .await
            .unwrap();
        let delta = roster(&conn, synced).await;
        assert_eq!(delta.from_version, synced);
        assert_eq!(delta.entries.len(), 1, "{}", backend.name());
        assert_eq!(delta.entries[0].certificate_number, "ZF-301");
        assert_eq!(delta.entries[0].status, CertificateStatus::Withdrawn);
        assert_eq!(delta.to_version, synced + 1);
        assert!(!delta.more);
        assert!(roster(&conn, delta.to_version).await.entries.is_empty());

        // A terminal claiming a version the registry never handed out starts over.
        let reset = roster(&conn, 1_000).await;
        assert_eq!(reset.from_version, 0);
        assert_eq!(reset.entries.len(), 2);
        gw.gateway.shutdown().await;
    }
}
