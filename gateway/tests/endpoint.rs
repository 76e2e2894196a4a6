//! The device endpoint over real sockets on loopback: admission, refusal by reason,
//! live revocation, restart, on SQLite and (with FIELDSYNC_TEST_PG) PostgreSQL, and a
//! flood of refused handshakes.

#[path = "endpoint/flood.rs"]
mod flood;
#[path = "endpoint/sessions.rs"]
mod sessions;

use std::time::Duration;

use clock::ManualClock;
use gateway::metrics::HandshakeOutcome;
use pki::DeviceEku;
use protocol::domain::DeviceStatus;
use protocol::message::RosterSince;
use protocol::{CloseCode, ErrorCode, RequestBody};
use store::actions;
use test_support::{
    Backend, RawClient, TestGateway, backends, eventually, issue_identity, validity,
};
use time::Duration as Span;

const WAIT: Duration = Duration::from_secs(10);
const T0: i64 = 1_790_000_000_000;

/// Writes the refusal summaries now (as the interval or a shutdown would) until one
/// names `needle`.
async fn refusal_audited(gw: &TestGateway, needle: &str) -> bool {
    let state = gw.gateway.state();
    eventually(WAIT, || async {
        state.refusals.flush(&state.store, state.clock.now()).await;
        let entries = state.store.audit_entries(0, 1000).await.unwrap();
        entries
            .iter()
            .any(|e| e.action == actions::CONNECTIONS_REFUSED && e.detail.contains(needle))
    })
    .await
}

#[tokio::test]
async fn an_enrolled_device_says_hello_and_its_skew_is_stored() {
    for backend in backends().await {
        let clock = ManualClock::new(T0);
        let gw = TestGateway::start_with_clock(&backend, 2, clock.clone()).await;
        let (id, identity) = gw.device(1);
        let mut conn = gw.connect(&identity).await.expect("connects");
        // The device's clock is two hours fast.
        let welcome = conn
            .hello(T0 + 2 * 3_600_000, "test/1")
            .await
            .expect("hello");
        assert_eq!(welcome.device_id, id);
        assert_eq!(welcome.gateway_time, T0);
        assert_eq!(welcome.clock_skew_ms, -2 * 3_600_000);
        let row = gw.gateway.state().store.device(&id).await.unwrap().unwrap();
        assert_eq!(row.last_seen, Some(T0), "{}", backend.name());
        assert_eq!(row.clock_skew_ms, Some(-2 * 3_600_000));
        assert_eq!(
            gw.gateway
                .state()
                .metrics
                .handshake_count(HandshakeOutcome::Ok),
            1
        );
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn requests_before_hello_are_refused_with_a_typed_error() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let (_, identity) = gw.device(1);
    let conn = gw.connect(&identity).await.expect("connects");
    let err = conn
        .request(RequestBody::RosterSince(RosterSince { version: 0 }))
        .await
        .unwrap_err();
    match err {
        agent::ClientError::Refused(reply) => assert_eq!(reply.code, ErrorCode::HelloRequired),
        other => panic!("expected a HelloRequired reply, got {other}"),
    }
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn an_unenrolled_certificate_from_the_fleet_ca_gets_the_unknown_device_code() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let (_, identity, fingerprint) = issue_identity(
        &gw.fleet_ca(),
        "dev-stranger",
        validity(Span::hours(-1), Span::days(30)),
        DeviceEku::ClientAuth,
    );
    let result = async {
        let mut conn = gw.connect(&identity).await?;
        conn.hello(T0, "test/1").await
    }
    .await;
    let err = result.expect_err("an unenrolled device is not served");
    assert_eq!(err.close_code(), Some(CloseCode::UnknownDevice), "{err}");
    let state = gw.gateway.state().clone();
    assert!(
        eventually(WAIT, || async {
            state.metrics.handshake_count(HandshakeOutcome::Unknown) == 1
        })
        .await
    );
    assert!(
        refusal_audited(&gw, &fingerprint).await,
        "refusal is not in the audit log: {:#?}",
        gw.gateway
            .state()
            .store
            .audit_entries(0, 100)
            .await
            .unwrap()
    );
    assert!(
        gw.metrics_text()
            .await
            .contains("fieldsync_handshakes_total{outcome=\"unknown\"} 1")
    );
    gw.gateway.shutdown().await;
}

/// Connects with `identity` and checks that no request is served and the refusal is
/// counted under `outcome`.
async fn assert_refused(
    gw: &TestGateway,
    identity: &agent::DeviceIdentity,
    outcome: HandshakeOutcome,
) {
    let served = async {
        let mut conn = gw.connect(identity).await?;
        conn.hello(T0, "test/1").await
    }
    .await;
    assert!(served.is_err(), "{outcome:?}: a request was served");
    let state = gw.gateway.state().clone();
    assert!(
        eventually(WAIT, || async {
            state.metrics.handshake_count(outcome) >= 1
        })
        .await,
        "{outcome:?} not counted; metrics:\n{}",
        gw.metrics_text().await
    );
    assert_eq!(
        state.metrics.handshake_count(HandshakeOutcome::Ok),
        0,
        "{outcome:?}: admitted"
    );
}

#[tokio::test]
async fn certificates_that_do_not_qualify_are_refused_by_reason() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let ca = gw.fleet_ca();
    let now_valid = validity(Span::hours(-1), Span::days(30));

    let foreign_ca = pki::FleetCa::generate(now_valid).unwrap();
    let (_, mut foreign, _) =
        issue_identity(&foreign_ca, "dev-00001", now_valid, DeviceEku::ClientAuth);
    // The device trusts the real fleet CA for the gateway; only its own cert is foreign.
    foreign.ca = gw.device(1).1.ca;
    assert_refused(&gw, &foreign, HandshakeOutcome::BadChain).await;

    let (_, expired, _) = issue_identity(
        &ca,
        "dev-expired",
        validity(Span::days(-30), Span::days(-1)),
        DeviceEku::ClientAuth,
    );
    assert_refused(&gw, &expired, HandshakeOutcome::Expired).await;

    let (_, early, _) = issue_identity(
        &ca,
        "dev-early",
        validity(Span::days(1), Span::days(30)),
        DeviceEku::ClientAuth,
    );
    // TLS says `certificate_expired` for both ("expired or not currently valid").
    assert_refused(&gw, &early, HandshakeOutcome::Expired).await;

    let (_, server_only, _) =
        issue_identity(&ca, "dev-server", now_valid, DeviceEku::ServerAuthOnly);
    assert_refused(&gw, &server_only, HandshakeOutcome::BadUsage).await;

    let (_, no_eku, _) = issue_identity(&ca, "dev-noeku", now_valid, DeviceEku::Absent);
    assert_refused(&gw, &no_eku, HandshakeOutcome::BadUsage).await;

    let ca_as_device =
        agent::DeviceIdentity::from_pem(ca.cert_pem(), &ca.key_pem(), ca.cert_pem()).unwrap();
    assert_refused(&gw, &ca_as_device, HandshakeOutcome::BadChain).await;

    let (_, enrolled) = gw.device(1);
    let wrong_alpn = RawClient::new(&enrolled.ca, Some(&enrolled), b"http/1.1").unwrap();
    assert!(wrong_alpn.hello(gw.gateway.device_addr()).await.is_err());
    let state = gw.gateway.state().clone();
    assert!(
        eventually(WAIT, || async {
            state.metrics.handshake_count(HandshakeOutcome::WrongAlpn) == 1
        })
        .await
    );
    for reason in ["bad_chain", "expired", "bad_usage", "wrong_alpn"] {
        assert!(refusal_audited(&gw, reason).await, "{reason} not audited");
    }

    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_connection_without_a_client_certificate_is_refused() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let (_, identity) = gw.device(1);
    let served =
        test_support::connect_without_certificate(gw.gateway.device_addr(), &identity.ca).await;
    assert!(served.is_err(), "served without a certificate");
    let state = gw.gateway.state().clone();
    assert!(
        eventually(WAIT, || async {
            state
                .metrics
                .handshake_count(HandshakeOutcome::NoCertificate)
                == 1
        })
        .await
    );
    assert!(refusal_audited(&gw, "no_certificate").await);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn revoking_a_connected_device_closes_it_and_refuses_its_return() {
    for backend in backends().await {
        let gw = TestGateway::start(&backend, 2).await;
        let (id, identity) = gw.device(1);
        let mut conn = gw.connect(&identity).await.unwrap();
        conn.hello(T0, "test/1").await.unwrap();
        let (_, other_identity) = gw.device(2);
        let mut other = gw.connect(&other_identity).await.unwrap();
        other.hello(T0, "test/1").await.unwrap();

        let store = &gw.gateway.state().store;
        store
            .set_device_status(&id, DeviceStatus::Revoked, "test", "stolen", T0)
            .await
            .unwrap();
        let closed = tokio::time::timeout(WAIT, conn.closed())
            .await
            .expect("closed after revocation");
        assert_eq!(
            closed.close_code(),
            Some(CloseCode::DeviceRevoked),
            "{}: {closed}",
            backend.name()
        );

        let again = async {
            let mut c = gw.connect(&identity).await?;
            c.hello(T0, "test/1").await
        }
        .await;
        assert_eq!(
            again.unwrap_err().close_code(),
            Some(CloseCode::DeviceRevoked)
        );
        // The other device is untouched.
        other
            .hello(T0, "test/1")
            .await
            .expect("another device keeps its connection");
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn suspended_and_lost_devices_get_their_own_codes() {
    let gw = TestGateway::start(&Backend::Sqlite, 2).await;
    let store = &gw.gateway.state().store;
    for (n, status, code) in [
        (1, DeviceStatus::Suspended, CloseCode::DeviceSuspended),
        (2, DeviceStatus::Lost, CloseCode::DeviceLost),
    ] {
        let (id, identity) = gw.device(n);
        let mut conn = gw.connect(&identity).await.unwrap();
        conn.hello(T0, "t").await.unwrap();
        store
            .set_device_status(&id, status, "test", "check", T0)
            .await
            .unwrap();
        let closed = tokio::time::timeout(WAIT, conn.closed())
            .await
            .expect("closed");
        assert_eq!(closed.close_code(), Some(code));
    }
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_restart_keeps_the_registry() {
    let gw = TestGateway::start(&Backend::Sqlite, 2).await;
    let (revoked_id, revoked) = gw.device(1);
    let (_, kept) = gw.device(2);
    gw.gateway
        .state()
        .store
        .set_device_status(&revoked_id, DeviceStatus::Revoked, "test", "lost", T0)
        .await
        .unwrap();
    let (data, config) = gw.stop().await;

    let gw = TestGateway::start_with(config, data, std::sync::Arc::new(clock::SystemClock)).await;
    let mut conn = gw.connect(&kept).await.unwrap();
    conn.hello(T0, "t")
        .await
        .expect("an enrolled device is still admitted after a restart");
    let refused = async {
        let mut c = gw.connect(&revoked).await?;
        c.hello(T0, "t").await
    }
    .await;
    assert_eq!(
        refused.unwrap_err().close_code(),
        Some(CloseCode::DeviceRevoked)
    );
    assert_eq!(
        gw.gateway.state().store.list_devices().await.unwrap().len(),
        2,
        "no second import"
    );
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_revocation_through_one_gateway_closes_the_connection_on_another() {
    let Some(backend) = test_support::postgres_backend().await else {
        eprintln!("FIELDSYNC_TEST_PG unset: skipping the two-gateway PostgreSQL test");
        return;
    };
    let a = TestGateway::start(&backend, 1).await;
    // Gateway B shares A's PKI folder and database, as two gateways behind one
    // load balancer do; its data folder (its staging) is its own.
    let data_b = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config_b = a.config.clone();
    config_b.data_dir = data_b.path().to_owned();
    config_b.pki.dir = a.pki_dir().to_string_lossy().into_owned();
    config_b.pki.auto_dev_pki = false;
    let b =
        TestGateway::start_with(config_b, data_b, std::sync::Arc::new(clock::SystemClock)).await;

    let (id, identity) = a.device(1);
    let mut conn = b.connect(&identity).await.unwrap();
    conn.hello(T0, "t").await.unwrap();
    a.gateway
        .state()
        .store
        .set_device_status(&id, DeviceStatus::Revoked, "test", "stolen", T0)
        .await
        .unwrap();
    let closed = tokio::time::timeout(WAIT, conn.closed())
        .await
        .expect("B closes the device");
    assert_eq!(closed.close_code(), Some(CloseCode::DeviceRevoked));
    b.gateway.shutdown().await;
    a.gateway.shutdown().await;
}

#[tokio::test]
async fn shutdown_says_going_away() {
    let gw = TestGateway::start(&Backend::Sqlite, 1).await;
    let (_, identity) = gw.device(1);
    let mut conn = gw.connect(&identity).await.unwrap();
    conn.hello(T0, "t").await.unwrap();
    gw.gateway.shutdown().await;
    let closed = tokio::time::timeout(WAIT, conn.closed())
        .await
        .expect("closed");
    assert_eq!(closed.close_code(), Some(CloseCode::GoingAway));
}

#[tokio::test]
async fn above_the_handshake_rate_devices_prove_their_address_with_a_retry_first() {
    let backend = Backend::Sqlite;
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_support::test_config(data.path(), &backend, 2);
    // Every handshake is "above the rate": each device must come back with a token.
    config.device.retry_above_handshakes_per_sec = 0;
    let gw = TestGateway::start_with(config, data, std::sync::Arc::new(clock::SystemClock)).await;
    for n in 1..=2 {
        let (_, identity) = gw.device(n);
        let mut conn = gw.connect(&identity).await.expect("connects after a Retry");
        conn.hello(T0, "test/1").await.expect("hello");
    }
    assert_eq!(gw.gateway.state().metrics.retries.get(), 2);
    assert!(
        gw.metrics_text()
            .await
            .contains("fieldsync_handshake_retries_total 2")
    );
    gw.stop().await;
}
