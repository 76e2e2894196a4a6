//! Helpers shared by the agent's integration tests: an agent for one of a test
//! gateway's development devices, record content that names itself, and officers in
//! the gateway's registry.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;

use agent::{Agent, AgentConfig};
use clock::{SharedClock, SystemClock};
use protocol::domain::CertificateStatus;
use protocol::message::RecordContent;
use store::OfficerRecord;
use test_support::TestGateway;

/// An enforcement officer of Market Supervision Team 3 with a valid certificate and no
/// expiry date.
pub fn officer_record(number: &str) -> OfficerRecord {
    OfficerRecord {
        certificate_number: number.into(),
        name: format!("Officer {number}"),
        unit: "Market Supervision Team 3".into(),
        post: "inspector".into(),
        category: "market".into(),
        certificate_status: CertificateStatus::Valid,
        auxiliary: false,
        agency: None,
        valid_until: None,
        effective_at: None,
    }
}

/// Lists `officer` in `gw`'s registry at gateway time `now`.
pub async fn list_officer(gw: &TestGateway, officer: &OfficerRecord, now: i64) {
    gw.gateway
        .state()
        .store
        .upsert_officer(officer, "test", now)
        .await
        .expect("officer listed");
}

/// A configuration pointing at `gw` with short timeouts for tests.
pub fn config_for(gw: &TestGateway) -> AgentConfig {
    AgentConfig {
        gateway: Some(gw.gateway.device_addr().to_string()),
        server_name: Some("localhost".into()),
        connect_timeout_secs: 5,
        request_timeout_secs: 20,
        backoff_initial_ms: 50,
        backoff_max_secs: 1,
        sync_interval_secs: 1,
        ..AgentConfig::default()
    }
}

/// The agent of development device `n` of `gw`, with its data in `dir`.
pub async fn agent_for(gw: &TestGateway, n: u32, dir: &Path) -> Agent {
    agent_with(gw, n, dir, config_for(gw), Arc::new(SystemClock)).await
}

/// [`agent_for`] with a configuration and a clock.
pub async fn agent_with(
    gw: &TestGateway,
    n: u32,
    dir: &Path,
    config: AgentConfig,
    clock: SharedClock,
) -> Agent {
    let (_, identity) = gw.device(n);
    Agent::open_with(dir, config, identity, clock)
        .await
        .expect("agent opens")
}

/// Record content whose text names it (`label`), so stored records can be matched.
pub fn content(label: &str, made_at: protocol::Millis) -> RecordContent {
    protocol::test_util::record_content("CASE-2026-0042", label, made_at)
}

/// The texts of the records the gateway stored for device `n`, in sequence order,
/// after checking the chain: sequences 1..=n without a gap, every record verified.
pub async fn stored_texts(gw: &TestGateway, n: u32) -> Vec<String> {
    let (device, _) = gw.device(n);
    let stored = gw
        .gateway
        .state()
        .store
        .device_records(&device)
        .await
        .expect("read stored records");
    for (i, r) in stored.iter().enumerate() {
        assert_eq!(r.record.sequence, i as u64 + 1, "stored chain has a gap");
        assert!(
            r.chain_break.is_none(),
            "stored chain breaks at {i}: {:?}",
            r.chain_break
        );
    }
    let records: Vec<_> = stored.iter().map(|r| r.record.clone()).collect();
    protocol::chain::verify_chain(&device, &records).expect("the stored chain verifies");
    stored.into_iter().map(|r| r.record.content.text).collect()
}

/// Asserts that no text occurs twice.
pub fn assert_unique(texts: &[String]) {
    let mut seen = std::collections::HashSet::new();
    for t in texts {
        assert!(seen.insert(t), "record {t:?} stored twice");
    }
}

pub mod relay;
