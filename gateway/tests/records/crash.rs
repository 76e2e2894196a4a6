//! The gateway process killed with SIGKILL while devices push: every record it had
//! acknowledged is in the database, and after a restart the devices' re-pushes store
//! every other record exactly once.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use agent::transport::TransportSettings;
use agent::{DeviceIdentity, GatewayConnection, GatewayEndpoint};
use protocol::DeviceId;
use protocol::message::FieldRecord;
use store::{Store, StoreConfig};
use test_support::{Backend, backends, eventually};
use tokio::sync::Mutex;

use crate::support::{Chain, T0};

const DEVICES: u32 = 4;
const RECORDS: u64 = 400;
const PER_PUSH: usize = 20;

/// A free UDP port on loopback (the gateway binds it next; the race is harmless here).
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

fn spawn_gateway(data: &Path, port: u16, backend: &Backend) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command
        .env("FIELDSYNC_DATA_DIR", data)
        .env("FIELDSYNC_DEVICE_LISTEN", format!("127.0.0.1:{port}"))
        .env("FIELDSYNC_HTTP_LISTEN", "127.0.0.1:0")
        .env("FIELDSYNC_PKI_DEV_DEVICES", DEVICES.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Backend::Postgres { url, schema } = backend {
        command
            .env("FIELDSYNC_STORE_BACKEND", "postgres")
            .env("FIELDSYNC_STORE_POSTGRES_URL", url)
            .env("FIELDSYNC_STORE_POSTGRES_SCHEMA", schema);
    }
    command.spawn().expect("gateway binary starts")
}

fn store_config(data: &Path, backend: &Backend) -> StoreConfig {
    match backend {
        Backend::Sqlite => StoreConfig::Sqlite {
            path: data.join("fieldsync.db"),
        },
        Backend::Postgres { url, schema } => StoreConfig::Postgres {
            url: url.clone(),
            schema: Some(schema.clone()),
        },
    }
}

/// Connects and says hello, retrying while the gateway starts. A short idle timeout
/// makes requests to a killed gateway fail in seconds rather than a minute.
async fn connect_when_up(port: u16, identity: &DeviceIdentity) -> GatewayConnection {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let settings = TransportSettings {
        keep_alive: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(3),
    };
    let conn: Arc<Mutex<Option<GatewayConnection>>> = Arc::default();
    let up = eventually(Duration::from_secs(60), || {
        let conn = conn.clone();
        let settings = settings.clone();
        async move {
            let Ok(endpoint) = GatewayEndpoint::bind(addr) else {
                return false;
            };
            let Ok(mut c) = endpoint
                .connect(addr, "localhost", identity, &settings)
                .await
            else {
                return false;
            };
            if c.hello(T0, "crash-test/1").await.is_err() {
                return false;
            }
            *conn.lock().await = Some(c);
            true
        }
    })
    .await;
    assert!(up, "the gateway came up");
    conn.lock().await.take().expect("connected")
}

fn identity(data: &Path, n: u32) -> (DeviceId, DeviceIdentity) {
    let id = DeviceId::new(format!("dev-{n:05}")).expect("device id");
    let dir = pki::layout::device_dir(&data.join("pki"), &id);
    (id, DeviceIdentity::load_bundle(&dir).expect("bundle"))
}

/// Pushes `records` from the start, in pushes of [`PER_PUSH`], until done or the
/// connection fails; returns how many leading records were acknowledged durable.
async fn push_all(conn: &GatewayConnection, records: &[FieldRecord]) -> usize {
    let mut acked = 0;
    for chunk in records.chunks(PER_PUSH) {
        match conn
            .request(protocol::RequestBody::PushRecords(
                protocol::message::PushRecords {
                    records: chunk.to_vec(),
                },
            ))
            .await
        {
            Ok(protocol::ResponseBody::RecordAcks(acks)) => {
                assert!(acks.acks.iter().all(|a| a.outcome.is_durable()), "{acks:?}");
                acked += chunk.len();
            }
            _ => break,
        }
    }
    acked
}

#[tokio::test]
async fn a_killed_gateway_loses_no_acknowledged_record_and_stores_the_rest_once() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let port = free_port();
        let mut child = spawn_gateway(&data, port, &backend);

        let mut devices = Vec::new();
        let mut tasks = Vec::new();
        for n in 1..=DEVICES {
            let (id, identity) = identity_when_made(&data, n).await;
            let conn = connect_when_up(port, &identity).await;
            let records = Arc::new(Chain::new(&id).records(&format!("C-{n}"), RECORDS, T0));
            devices.push((id, identity, records.clone()));
            // Every device pushes; the gateway is killed once some records are stored.
            tasks.push(tokio::spawn(async move { push_all(&conn, &records).await }));
        }
        let store = Store::open(&store_config(&data, &backend))
            .await
            .expect("store");
        let some = eventually(Duration::from_secs(60), || async {
            store.record_count().await.unwrap_or(0) >= 200
        })
        .await;
        assert!(some, "records arrive");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let mut acked = Vec::new();
        for task in tasks {
            acked.push(task.await.expect("push task"));
        }
        assert!(
            acked.iter().any(|&a| (a as u64) < RECORDS),
            "{}: the kill came mid-run",
            backend.name()
        );

        // Everything acknowledged before the kill is there, and every chain verifies.
        for ((id, _, _), &acked) in devices.iter().zip(&acked) {
            let rows = store.device_records(id).await.unwrap();
            assert!(
                rows.len() >= acked,
                "{}: {id} acked {acked}, stored {}",
                backend.name(),
                rows.len()
            );
            assert!(rows.iter().all(|r| r.chain_break.is_none()));
        }
        store.close().await;

        // Restart; each device pushes its whole chain again: exactly once in the end.
        let mut child = spawn_gateway(&data, port, &backend);
        for (id, identity, records) in &devices {
            let conn = connect_when_up(port, identity).await;
            let acks = push_all(&conn, records).await;
            assert_eq!(acks as u64, RECORDS, "{}: {id}", backend.name());
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let store = Store::open(&store_config(&data, &backend))
            .await
            .expect("store");
        assert_eq!(
            store.record_count().await.unwrap(),
            RECORDS * u64::from(DEVICES)
        );
        for (id, _, records) in &devices {
            let rows = store.device_records(id).await.unwrap();
            assert_eq!(rows.len() as u64, RECORDS);
            assert!(rows.iter().all(|r| r.chain_break.is_none()));
            assert!(
                rows.iter()
                    .zip(records.iter())
                    .all(|(r, sealed)| &r.record == sealed)
            );
        }
        assert!(store.tamper_flags(None).await.unwrap().is_empty());
        store.close().await;
    }
}

/// The device bundle, once the gateway's first start has written the PKI.
async fn identity_when_made(data: &Path, n: u32) -> (DeviceId, DeviceIdentity) {
    let made = eventually(Duration::from_secs(60), || async {
        data.join("pki")
            .join("devices")
            .join(format!("dev-{n:05}"))
            .join("device.pem")
            .exists()
    })
    .await;
    assert!(made, "the development PKI is written");
    identity(data, n)
}
