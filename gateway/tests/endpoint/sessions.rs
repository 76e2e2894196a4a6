//! Which connection of a device is served (issue 19): one live connection per device,
//! and a certificate that expired since its TLS session was made is refused when the
//! session is resumed.

use clock::{Clock, ManualClock, SystemClock};
use gateway::metrics::HandshakeOutcome;
use pki::DeviceEku;
use protocol::CloseCode;
use protocol::domain::DeviceKind;
use store::NewDevice;
use test_support::{
    Backend, RawClient, TestGateway, backends, eventually, hello_on, issue_identity, validity,
};
use time::Duration as Span;

use super::{T0, WAIT};

#[tokio::test]
async fn a_newer_connection_of_a_device_replaces_the_older_one() {
    for backend in backends().await {
        let gw = TestGateway::start(&backend, 2).await;
        let (id, identity) = gw.device(1);
        let mut older = gw.connect(&identity).await.unwrap();
        older.hello(T0, "t").await.unwrap();
        let (_, other_identity) = gw.device(2);
        let mut other = gw.connect(&other_identity).await.unwrap();
        other.hello(T0, "t").await.unwrap();

        let mut newer = gw.connect(&identity).await.unwrap();
        newer.hello(T0, "t").await.unwrap();
        let closed = tokio::time::timeout(WAIT, older.closed())
            .await
            .expect("the older connection is closed");
        assert_eq!(
            closed.close_code(),
            Some(CloseCode::Replaced),
            "{}: {closed}",
            backend.name()
        );
        // The agent reconnects after "replaced"; it stops only on a refusal.
        assert!(!CloseCode::Replaced.is_refusal());
        newer.hello(T0, "t").await.expect("the newer one is served");
        other
            .hello(T0, "t")
            .await
            .expect("another device is untouched");
        let state = gw.gateway.state().clone();
        assert!(eventually(WAIT, || async { state.live.len() == 2 }).await);

        // A certificate naming the same device that is not admitted (here: never
        // enrolled) does not close the admitted connection.
        let (_, impostor, _) = issue_identity(
            &gw.fleet_ca(),
            id.as_str(),
            validity(Span::hours(-1), Span::days(30)),
            DeviceEku::ClientAuth,
        );
        let refused = async {
            let mut c = gw.connect(&impostor).await?;
            c.hello(T0, "t").await
        }
        .await;
        assert_eq!(
            refused.unwrap_err().close_code(),
            Some(CloseCode::UnknownDevice)
        );
        newer
            .hello(T0, "t")
            .await
            .expect("a refused newcomer replaces nothing");
        assert!(
            gw.metrics_text().await.contains(
                "fieldsync_connections_closed_total{reason=\"replaced by a newer connection of this device\"} 1"
            )
        );
        gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn an_expired_certificate_is_refused_on_a_resumed_tls_session() {
    // The gateway's clock starts at the real time (the certificate is issued against
    // it) and is then moved past the certificate's end.
    let clock = ManualClock::new(SystemClock.now());
    let gw = TestGateway::start_with_clock(&Backend::Sqlite, 1, clock.clone()).await;
    let (id, short_lived, fingerprint) = issue_identity(
        &gw.fleet_ca(),
        "dev-short",
        validity(Span::minutes(-5), Span::hours(1)),
        DeviceEku::ClientAuth,
    );
    gw.gateway
        .state()
        .store
        .enroll_device(
            &NewDevice {
                id,
                kind: DeviceKind::Recorder,
                serial: "SN-short".into(),
                certificate_fingerprint: fingerprint,
                certificate_not_after: clock.now() + 3_600_000,
                agency: None,
            },
            "test",
            clock.now(),
        )
        .await
        .unwrap();
    let addr = gw.gateway.device_addr();
    let trust = gw.device(1).1.ca;
    // One TLS configuration for both connections, so the second resumes the first's
    // session (its ticket arrives after the handshake, before the hello's reply).
    let device = RawClient::new(&trust, Some(&short_lived), protocol::ALPN).unwrap();
    device.hello(addr).await.expect("served while valid");

    clock.advance(2 * 3_600_000);
    // A fresh handshake is refused by TLS (alert certificate_expired), on the gateway's
    // clock.
    let fresh = RawClient::new(&trust, Some(&short_lived), protocol::ALPN).unwrap();
    assert_eq!(closed_by(&fresh, addr).await, Closed::Tls(45));
    // The resumed session is not verified again, so TLS lets it through, and
    // admission refuses the certificate on the gateway's clock.
    assert_eq!(
        closed_by(&device, addr).await,
        Closed::Gateway(CloseCode::CertificateExpired)
    );
    assert!(CloseCode::CertificateExpired.is_refusal());
    let state = gw.gateway.state().clone();
    assert!(
        eventually(WAIT, || async {
            state.metrics.handshake_count(HandshakeOutcome::Expired) == 2
        })
        .await
    );
    assert_eq!(state.metrics.handshake_count(HandshakeOutcome::Ok), 1);
    gw.gateway.shutdown().await;
}

/// How the gateway ended a connection.
#[derive(Debug, PartialEq, Eq)]
enum Closed {
    /// The TLS handshake failed with this alert.
    Tls(u8),
    /// Admission closed it with this code.
    Gateway(CloseCode),
}

/// Connects with `client`, tries a hello (which must not be served) and says how the
/// gateway ended the connection.
async fn closed_by(client: &RawClient, addr: std::net::SocketAddr) -> Closed {
    let error = match client.connect(addr).await {
        // The client's side of a TLS 1.3 handshake may complete before the gateway
        // has checked the client's certificate.
        Ok(connection) => {
            assert!(hello_on(&connection).await.is_err(), "served");
            tokio::time::timeout(WAIT, connection.closed())
                .await
                .expect("closed")
        }
        Err(e) => e,
    };
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => Closed::Gateway(CloseCode::from_u32(
            u32::try_from(close.error_code.into_inner()).unwrap(),
        )),
        quinn::ConnectionError::ConnectionClosed(close) => {
            let code = u64::from(close.error_code);
            Closed::Tls(u8::try_from(code - 0x100).unwrap())
        }
        other => panic!("ended by {other}"),
    }
}
