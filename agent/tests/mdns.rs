//! Discovery by mDNS: with no gateway address configured, the agent finds the gateway
//! advertised on `_fieldsync._udp.local.` and syncs, still authenticating it by TLS
//! against its fleet CA: an impostor advertising another fleet's gateway under our
//! fleet CA's fingerprint is found but refused by TLS, and an agent of another fleet
//! ignores our advertisement.
//!
//! Runs inside a network namespace the test creates, so no multicast leaves the
//! machine (the outer test re-runs this binary inside it with `FIELDSYNC_IN_NETNS=1`);
//! skipped with a notice where `ip netns` is not permitted.

mod common;

use std::sync::Arc;

use agent::{Agent, AgentConfig, ConnectError};
use common::{content, stored_texts};
use test_support::netns::{Netns, run_in_netns};
use test_support::{Backend, TestGateway};

const TEST: &str = "an_agent_without_an_address_finds_the_gateway_by_mdns";

#[test]
fn an_agent_without_an_address_finds_the_gateway_by_mdns() {
    if let Netns::Inner = run_in_netns(TEST) {
        inner();
    }
}

fn inner() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Our fleet's gateway, not advertised yet, and another fleet's gateway.
        let gw = TestGateway::start(&Backend::Sqlite, 1).await;
        let elsewhere = TestGateway::start(&Backend::Sqlite, 1).await;

        let dir = tempfile::tempdir().unwrap();
        let discovering = AgentConfig {
            gateway: None,
            server_name: Some("localhost".into()),
            discovery_timeout_secs: 20,
            ..AgentConfig::default()
        };
        let agent = common::agent_with(
            &gw,
            1,
            dir.path(),
            discovering.clone(),
            Arc::new(clock::SystemClock),
        )
        .await;

        // An impostor advertises the other fleet's gateway with OUR fleet CA's
        // fingerprint: discovery finds it, and TLS refuses it.
        let our_ca = agent.identity().ca_fingerprint().unwrap();
        let impostor = mdns_sd::ServiceDaemon::new().unwrap();
        impostor.disable_interface(mdns_sd::IfKind::All).unwrap();
        impostor
            .enable_interface(mdns_sd::IfKind::Name("lo".into()))
            .unwrap();
        let port = elsewhere.gateway.device_addr().port();
        let info = mdns_sd::ServiceInfo::new(
            agent::discovery::SERVICE_TYPE,
            "impostor",
            "impostor.local.",
            "",
            port,
            &[("ca", our_ca.as_str())][..],
        )
        .unwrap()
        .enable_addr_auto();
        impostor.register(info).unwrap();
        let target = agent.locate().await.expect("the advertisement is found");
        assert!(target.addrs.iter().all(|a| a.port() == port));
        let err = agent
            .connect()
            .await
            .err()
            .expect("TLS refuses the impostor");
        assert!(err.to_string().contains("certificate"), "{err}");
        let _ = impostor.shutdown();
        elsewhere.gateway.shutdown().await;

        // Our gateway, advertising itself.
        let addr = gw.gateway.device_addr();
        let (data, mut config) = gw.stop().await;
        config.device.listen = addr;
        config.mdns.enabled = true;
        config.mdns.interfaces = vec!["lo".into()];
        let gw = TestGateway::start_with(config, data, Arc::new(clock::SystemClock)).await;
        agent.record(content("found by mDNS", 1)).await.unwrap();
        let target = agent.locate().await.expect("the gateway is discovered");
        assert!(
            target
                .addrs
                .iter()
                .any(|a| a.port() == gw.gateway.device_addr().port())
        );
        let mut session = agent
            .connect()
            .await
            .expect("connect to the discovered gateway");
        let report = agent.sync_once(&mut session.conn).await.unwrap();
        session.close().await;
        assert_eq!(report.records_stored, 1);
        assert_eq!(stored_texts(&gw, 1).await, ["found by mDNS"]);

        // A device of another fleet does not take this gateway for its own.
        let now = time::OffsetDateTime::now_utc();
        let other_ca = pki::FleetCa::generate(pki::Validity::new(
            now - time::Duration::hours(1),
            now + time::Duration::days(1),
        ))
        .unwrap();
        let (_, identity, _) = test_support::issue_identity(
            &other_ca,
            "dev-elsewhere",
            test_support::validity(-time::Duration::hours(1), time::Duration::days(1)),
            pki::DeviceEku::ClientAuth,
        );
        let other_dir = tempfile::tempdir().unwrap();
        let stranger = Agent::open_with(
            other_dir.path(),
            AgentConfig {
                discovery_timeout_secs: 3,
                ..discovering
            },
            identity,
            Arc::new(clock::SystemClock),
        )
        .await
        .unwrap();
        let err = stranger.locate().await.unwrap_err();
        assert!(matches!(err, ConnectError::Discovery(_)), "{err}");
        gw.gateway.shutdown().await;
    });
}
