//! 20 agents × 500 records against a gateway that is SIGKILLed and restarted mid-run,
//! with some agents' daemons SIGKILLed mid-run too: afterwards every record is stored
//! exactly once and every device's chain verifies.
//!
//! The gateway runs in its own process (this test binary re-run with
//! `FIELDSYNC_GATEWAY_CHILD` set, serving `gateway::run`), so it can really be killed;
//! each agent is the `agent run` daemon (a process) syncing the data folder in which
//! this test records through the library, as a terminal's app and its daemon share it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agent::{Agent, AgentConfig};
use common::content;
use protocol::DeviceId;
use store::Store;
use test_support::Backend;

const CHILD: &str = "FIELDSYNC_GATEWAY_CHILD";
const AGENTS: u32 = 20;
const RECORDS: usize = 500;

/// The gateway process of the fleet test; does nothing unless run as that child.
#[test]
#[ignore = "helper: the gateway process of the fleet test, run by it"]
fn fleet_gateway_child() {
    let Some(config) = std::env::var_os(CHILD) else {
        return;
    };
    let config = gateway::Config::load(Some(Path::new(&config)), &std::collections::HashMap::new())
        .expect("gateway config");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(gateway::run(config, std::future::pending()))
        .expect("gateway runs");
}

fn spawn_gateway(config: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fleet_gateway_child",
            "--include-ignored",
            "--nocapture",
        ])
        .env(CHILD, config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gateway process")
}

fn spawn_daemon(data: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agent"))
        .arg("--data")
        .arg(data)
        .arg("run")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start an agent daemon")
}

fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

fn device(n: u32) -> DeviceId {
    DeviceId::new(format!("dev-{n:05}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_survive_gateway_and_agent_kills_with_every_record_once() {
    for backend in test_support::backends().await {
        fleet_run(&backend).await;
    }
}

async fn fleet_run(backend: &Backend) {
    let root = tempfile::tempdir().unwrap();
    let gw_data = root.path().join("gateway");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = test_support::test_config(&gw_data, backend, AGENTS);
    config.device.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.shutdown_grace_secs = 1;
    let config_path = root.path().join("gateway.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let mut gateway = spawn_gateway(&config_path);
    let pki = config.pki_dir();
    let last_bundle = pki::layout::device_dir(&pki, &device(AGENTS)).join("device.pem");
    let ready = || async { last_bundle.exists() };
    assert!(
        test_support::eventually(Duration::from_secs(60), ready).await,
        "no PKI"
    );

    let agent_config = AgentConfig {
        gateway: Some(config.device.listen.to_string()),
        server_name: Some("localhost".into()),
        backoff_initial_ms: 100,
        backoff_max_secs: 1,
        sync_interval_secs: 1,
        connect_timeout_secs: 3,
        request_timeout_secs: 10,
        keep_alive_secs: 1,
        idle_timeout_secs: 4,
        ..AgentConfig::default()
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut agents: Vec<Agent> = Vec::new();
    for n in 1..=AGENTS {
        let dir = root.path().join(format!("agent-{n}"));
        agent::enroll::install_bundle(&dir, &pki::layout::device_dir(&pki, &device(n)), false)
            .unwrap();
        agent_config.save(&dir).unwrap();
        agents.push(Agent::open(&dir, agent_config.clone()).await.unwrap());
        dirs.push(dir);
    }
    let mut daemons: Vec<Child> = dirs.iter().map(|d| spawn_daemon(d)).collect();

    // Every agent records its 500 records while the chaos below happens.
    let made = Arc::new(AtomicUsize::new(0));
    let recorders: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(i, agent)| {
            let (agent, made) = (agent.clone(), made.clone());
            tokio::spawn(async move {
                for r in 0..RECORDS {
                    let text = format!("a{}-r{r}", i + 1);
                    agent.record(content(&text, r as i64)).await.unwrap();
                    made.fetch_add(1, Ordering::Relaxed);
                    if r % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let total = AGENTS as usize * RECORDS;
    let reached = |fraction: f64| {
        let made = made.clone();
        move || {
            let made = made.clone();
            async move { made.load(Ordering::Relaxed) as f64 >= fraction * total as f64 }
        }
    };
    let (mut gateway_kills, mut agent_kills) = (0, 0);
    for (at, what) in [(0.25, "gateway"), (0.5, "agents"), (0.75, "gateway")] {
        assert!(test_support::eventually(Duration::from_secs(300), reached(at)).await);
        if what == "gateway" {
            sigkill(&mut gateway);
            gateway_kills += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
            gateway = spawn_gateway(&config_path);
        } else {
            for daemon in daemons.iter_mut().step_by(4) {
                sigkill(daemon);
                agent_kills += 1;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            for (i, daemon) in daemons.iter_mut().enumerate().step_by(4) {
                *daemon = spawn_daemon(&dirs[i]);
            }
        }
    }
    for r in recorders {
        r.await.unwrap();
    }
    let drained = || {
        let agents = agents.clone();
        async move {
            for a in &agents {
                if a.status().await.unwrap().queued_records > 0 {
                    return false;
                }
            }
            true
        }
    };
    assert!(
        test_support::eventually(Duration::from_secs(300), drained).await,
        "the outboxes did not drain"
    );
    for daemon in &mut daemons {
        sigkill(daemon);
    }
    sigkill(&mut gateway);

    // Read what the gateway made durable, from its store file.
    let store = Store::open(&config.store_config()).await.unwrap();
    for n in 1..=AGENTS {
        let stored = store.device_records(&device(n)).await.unwrap();
        let texts: Vec<String> = stored
            .iter()
            .map(|r| r.record.content.text.clone())
            .collect();
        let expected: Vec<String> = (0..RECORDS).map(|r| format!("a{n}-r{r}")).collect();
        assert_eq!(texts, expected, "device {n}: every record once, in order");
        assert!(stored.iter().all(|r| r.chain_break.is_none()));
        let records: Vec<_> = stored.into_iter().map(|r| r.record).collect();
        protocol::chain::verify_chain(&device(n), &records).expect("the chain verifies");
        assert!(
            agents[n as usize - 1]
                .status()
                .await
                .unwrap()
                .refused_records
                .is_empty()
        );
    }
    assert!(
        store.tamper_flags(None).await.unwrap().is_empty(),
        "no record was refused"
    );
    store.close().await;
    eprintln!(
        "{}: {total} records from {AGENTS} agents stored once each; gateway SIGKILLed {gateway_kills} times, agent daemons {agent_kills} times",
        backend.name()
    );
}
