//! mDNS advertisement, inside a network namespace made for the test so that no
//! multicast leaves the machine (ARCHITECTURE.md, Operations).
//!
//! The outer test makes the namespace and re-runs this same test binary inside it
//! with `FIELDSYNC_IN_NETNS=1`; the inner run starts a gateway with mDNS on `lo` and
//! browses for it.

use std::time::Duration;

use mdns_sd::{ServiceDaemon, ServiceEvent};
use test_support::netns::{Netns, run_in_netns};
use test_support::{Backend, TestGateway};

#[test]
fn the_gateway_advertises_its_port_and_ca_fingerprint() {
    if let Netns::Inner = run_in_netns("the_gateway_advertises_its_port_and_ca_fingerprint") {
        inner();
    }
}

fn inner() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let mut config = test_support::test_config(data.path(), &Backend::Sqlite, 1);
        config.mdns.enabled = true;
        config.mdns.interfaces = vec!["lo".into()];
        let gw =
            TestGateway::start_with(config, data, std::sync::Arc::new(clock::SystemClock)).await;
        let port = gw.gateway.device_addr().port();
        let ca = protocol::certificate_fingerprint(&gw.device(1).1.ca[0]);

        let browser = ServiceDaemon::new().unwrap();
        let events = browser.browse(gateway::mdns::SERVICE_TYPE).unwrap();
        let found = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while let Ok(event) =
                events.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            {
                if let ServiceEvent::ServiceResolved(info) = event {
                    return Some((
                        info.get_port(),
                        info.get_property_val_str("ca").map(str::to_owned),
                    ));
                }
            }
            None
        })
        .await
        .unwrap();
        let _ = browser.shutdown();
        assert_eq!(found, Some((port, Some(ca))), "advertisement not seen");
        gw.gateway.shutdown().await;
    });
}
