//! A flood of refused handshakes (issue 19, point 1): every refusal is counted on
//! `/metrics` by reason, the audit log gets one summary per reason and interval, and
//! an enrolled device pushing records meanwhile gets every ack.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gateway::metrics::HandshakeOutcome;
use pki::DeviceEku;
use protocol::message::{PushRecords, RecordOutcome};
use protocol::test_util::{record_content, seal_chain};
use protocol::{RequestBody, ResponseBody};
use store::actions;
use test_support::{RawClient, TestGateway, backends, eventually, issue_identity, validity};
use time::Duration as Span;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::WAIT;

/// Refused handshakes in the flood.
const FLOOD: usize = 10_000;
/// Handshakes in flight at once.
const AT_ONCE: usize = 64;

/// The attacker's kinds of refused handshake, and the reason each is counted under.
fn attackers(gw: &TestGateway) -> Vec<(RawClient, HandshakeOutcome)> {
    let ca = gw.fleet_ca();
    let trust = gw.device(1).1.ca;
    let now_valid = validity(Span::hours(-1), Span::days(30));
    let foreign_ca = pki::FleetCa::generate(now_valid).unwrap();
    let (_, foreign, _) =
        issue_identity(&foreign_ca, "dev-00001", now_valid, DeviceEku::ClientAuth);
    let (_, expired, _) = issue_identity(
        &ca,
        "dev-expired",
        validity(Span::days(-30), Span::days(-1)),
        DeviceEku::ClientAuth,
    );
    let (_, stranger, _) = issue_identity(&ca, "dev-stranger", now_valid, DeviceEku::ClientAuth);
    let client = |identity: Option<&agent::DeviceIdentity>, alpn: &[u8]| {
        RawClient::new(&trust, identity, alpn).unwrap()
    };
    vec![
        (
            client(None, protocol::ALPN),
            HandshakeOutcome::NoCertificate,
        ),
        (
            client(Some(&foreign), protocol::ALPN),
            HandshakeOutcome::BadChain,
        ),
        (
            client(Some(&expired), protocol::ALPN),
            HandshakeOutcome::Expired,
        ),
        (
            client(Some(&stranger), protocol::ALPN),
            HandshakeOutcome::Unknown,
        ),
        (
            client(Some(&gw.device(1).1), b"h3"),
            HandshakeOutcome::WrongAlpn,
        ),
    ]
}

#[tokio::test]
async fn ten_thousand_refused_handshakes_add_one_audit_row_per_reason_and_honest_acks_flow() {
    for backend in backends().await {
        let data = Arc::new(tempfile::tempdir().unwrap());
        let mut config = test_support::test_config(data.path(), &backend, 2);
        // One interval covers the whole test: the bound is one row per reason.
        config.device.refusal_audit_secs = 3_600;
        let gw = TestGateway::start_with(config, data, Arc::new(clock::SystemClock)).await;
        let state = gw.gateway.state().clone();
        // Other components audit too (a storage alarm on a nearly full disk): count the
        // refusal summaries.
        let refusal_rows = || {
            let state = state.clone();
            async move {
                let entries = state.store.audit_entries(0, 100_000).await.unwrap();
                entries
                    .into_iter()
                    .filter(|e| e.action == actions::CONNECTIONS_REFUSED)
                    .collect::<Vec<_>>()
            }
        };
        assert!(refusal_rows().await.is_empty());

        // An enrolled device pushes records, ten at a time, for as long as the flood lasts.
        let (honest_id, honest_identity) = gw.device(2);
        let mut honest = gw.connect(&honest_identity).await.unwrap();
        honest.hello(0, "flood-test/1").await.unwrap();
        let flooding = Arc::new(AtomicBool::new(true));
        let pusher = tokio::spawn({
            let flooding = flooding.clone();
            async move {
                let mut head = protocol::chain::ChainHead::GENESIS;
                let (mut pushed, mut during) = (0u64, 0u64);
                while flooding.load(Ordering::SeqCst) {
                    let contents = (0..10).map(|i| {
                        record_content("C-FLOOD", &format!("entry {}", pushed + i), 1_000)
                    });
                    let (records, next) = seal_chain(&honest_id, head, contents);
                    head = next;
                    let reply = honest
                        .request(RequestBody::PushRecords(PushRecords { records }))
                        .await
                        .expect("the honest push is answered during the flood");
                    let ResponseBody::RecordAcks(acks) = reply else {
                        panic!("expected acks, got {reply:?}");
                    };
                    assert!(
                        acks.acks.iter().all(|a| a.outcome == RecordOutcome::Stored),
                        "{acks:?}"
                    );
                    pushed += acks.acks.len() as u64;
                    during += 1;
                }
                (pushed, during)
            }
        });

        let kinds = attackers(&gw);
        let addr = gw.gateway.device_addr();
        let permits = Arc::new(Semaphore::new(AT_ONCE));
        let mut flood = JoinSet::new();
        for n in 0..FLOOD {
            // Mostly handshakes without a certificate (the cheapest attack), and some of
            // every other kind.
            let (client, _) = &kinds[if n % 10 < 6 { 0 } else { 1 + n % 4 }];
            let client = client.clone();
            let permit = permits.clone().acquire_owned().await.unwrap();
            flood.spawn(async move {
                let served = client.hello(addr).await;
                drop(permit);
                served
            });
        }
        while let Some(served) = flood.join_next().await {
            assert!(served.unwrap().is_err(), "a refused handshake was served");
        }
        flooding.store(false, Ordering::SeqCst);
        let (pushed, pushes) = pusher.await.unwrap();
        assert!(pushes >= 2, "the honest device pushed during the flood");
        assert_eq!(
            state.store.record_count().await.unwrap(),
            pushed,
            "{}: every acknowledged record is stored",
            backend.name()
        );

        // Counted at once, by reason, on /metrics.
        let counted = || {
            kinds
                .iter()
                .map(|(_, reason)| state.metrics.handshake_count(*reason))
                .sum::<u64>()
        };
        assert!(
            eventually(WAIT, || async { counted() == FLOOD as u64 }).await,
            "{} of {FLOOD} refusals counted:\n{}",
            counted(),
            gw.metrics_text().await
        );
        let text = gw.metrics_text().await;
        assert!(
            text.contains("fieldsync_handshakes_total{outcome=\"no_certificate\"} 6000"),
            "{text}"
        );

        // While the interval runs, nothing was written; the summary (as the interval's
        // end or a shutdown writes it) is one row per reason, counting every refusal.
        assert!(refusal_rows().await.is_empty(), "{}", backend.name());
        let written = state.refusals.flush(&state.store, state.clock.now()).await;
        assert_eq!(written, kinds.len());
        let entries = refusal_rows().await;
        assert_eq!(entries.len(), kinds.len(), "{}", backend.name());
        for (_, reason) in &kinds {
            let row = entries
                .iter()
                .find(|e| e.subject == reason.as_str())
                .unwrap_or_else(|| panic!("no summary for {reason:?}"));
            let detail: serde_json::Value = serde_json::from_str(&row.detail).unwrap();
            assert_eq!(
                detail["count"].as_u64(),
                Some(state.metrics.handshake_count(*reason)),
                "{reason:?}"
            );
            let samples = detail["samples"].as_array().unwrap();
            assert!(!samples.is_empty() && samples.len() <= 5, "{detail}");
            assert!(
                samples[0].as_str().unwrap().starts_with("127.0.0.1:"),
                "{detail}"
            );
        }
        gw.gateway.shutdown().await;
    }
}
