//! Full disks (issue 20, point 2), for real: a small tmpfs mounted by the test (the
//! tests run as root in CI; without the right to mount, a test prints a notice and
//! skips) as the gateway's data folder, or as its media folder, filled during a commit
//! and during a publish. Each gets a typed, retryable refusal, never an ack; nothing
//! acknowledged is lost; reads, revocation and the alarm go on; everything resumes by
//! itself when space returns.

use std::sync::Arc;
use std::time::Duration;

use agent::GatewayConnection;
use protocol::chain::ChainHead;
use protocol::domain::DeviceStatus;
use protocol::message::{FieldRecord, PushRecords, UploadHeader};
use protocol::{DeviceId, ErrorCode, RequestBody, ResponseBody};
use store::actions;
use test_support::{Backend, TestGateway, Tmpfs, eventually, http_get, test_config};

use crate::support::{clip, content, now, published};

const WAIT: Duration = Duration::from_secs(30);

fn skip() {
    eprintln!("cannot mount a tmpfs (not root?): skipping the full-disk test");
}

/// A gateway in this process whose data folder (or only its media folder) is `disk`.
async fn gateway(
    disk: &Tmpfs,
    media_only: bool,
    tune: impl FnOnce(&mut gateway::Config),
) -> TestGateway {
    let scratch = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(scratch.path(), &Backend::Sqlite, 2);
    if media_only {
        config.media.dir = disk.path().join("media").to_string_lossy().into_owned();
    } else {
        config.data_dir = disk.path().join("data");
    }
    config.storage.check_secs = 1;
    tune(&mut config);
    TestGateway::start_with(config, scratch, Arc::new(clock::SystemClock)).await
}

async fn device(gw: &TestGateway, n: u32) -> (DeviceId, GatewayConnection) {
    let (id, identity) = gw.device(n);
    let mut conn = gw.connect(&identity).await.expect("connects");
    conn.hello(now(), "disk-full/1").await.expect("hello");
    (id, conn)
}

/// Pushes `records`; `Ok` once every one is durable, or the refusal's code.
async fn push(conn: &GatewayConnection, records: &[FieldRecord]) -> Result<(), ErrorCode> {
    let body = RequestBody::PushRecords(PushRecords {
        records: records.to_vec(),
    });
    match conn.request(body).await {
        Ok(ResponseBody::RecordAcks(acks)) => {
            assert!(acks.acks.iter().all(|a| a.outcome.is_durable()), "{acks:?}");
            Ok(())
        }
        Err(agent::ClientError::Refused(reply)) => {
            assert!(reply.code.is_retryable(), "{reply}");
            Err(reply.code)
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// `n` records of `text_bytes` each, sealed onto `head`.
fn records(
    device: &DeviceId,
    head: &mut ChainHead,
    label: &str,
    n: usize,
    text_bytes: usize,
) -> Vec<FieldRecord> {
    (0..n)
        .map(|i| {
            let mut c = content(&format!("{label}-{i}"));
            c.text.push_str(&"x".repeat(text_bytes));
            let r = protocol::chain::seal(device, head, c);
            *head = head.advance(&r);
            r
        })
        .collect()
}

async fn audited(gw: &TestGateway, action: &str) -> bool {
    let store = &gw.gateway.state().store;
    store
        .audit_entries(0, 1000)
        .await
        .expect("audit")
        .iter()
        .any(|e| e.action == action)
}

#[tokio::test]
async fn a_full_store_folder_refuses_records_clearly_and_operators_and_reads_go_on() {
    let Some(mut disk) = Tmpfs::mount("32m", 4096) else {
        return skip();
    };
    let gw = gateway(&disk, false, |c| {
        c.storage.reserve_bytes = 4 << 20;
        c.storage.alarm_free_percent = 50;
    })
    .await;
    let (dev1, conn) = device(&gw, 1).await;
    let mut head = ChainHead::GENESIS;
    let first = records(&dev1, &mut head, "before", 10, 100);
    push(&conn, &first).await.expect("stored");

    // Below the reserve: records are refused, nothing acknowledged.
    disk.fill_leaving(2 << 20);
    let mut refused_head = head;
    let refused = records(&dev1, &mut refused_head, "refused", 5, 100);
    assert_eq!(push(&conn, &refused).await, Err(ErrorCode::StorageFull));
    let store = &gw.gateway.state().store;
    assert_eq!(store.device_records(&dev1).await.unwrap().len(), 10);
    // The alarm: /metrics, /healthz, the audit log.
    let raised = eventually(WAIT, || async {
        gw.metrics_text()
            .await
            .contains("fieldsync_storage_alarm{folder=\"store\"} 1")
    })
    .await;
    assert!(raised, "the alarm is on /metrics");
    let healthz = http_get(gw.gateway.http_addr(), "/healthz").await;
    assert!(
        healthz.starts_with("HTTP/1.1 200") && healthz.contains("degraded"),
        "{healthz}"
    );
    assert!(eventually(WAIT, || audited(&gw, actions::STORAGE_ALARM_RAISED)).await);
    // Operators go on in the reserve: a revocation is stored and audited.
    let (dev2, _) = gw.device(2);
    store
        .set_device_status(&dev2, DeviceStatus::Revoked, "test", "stolen", now())
        .await
        .expect("a revocation fits in the reserve");
    // Reads go on.
    assert_eq!(store.device_records(&dev1).await.unwrap().len(), 10);

    // Space returns: the same records are stored, once, without anything else done.
    disk.free_all();
    push(&conn, &refused)
        .await
        .expect("stored once space returns");
    let cleared = eventually(WAIT, || async {
        gw.metrics_text()
            .await
            .contains("fieldsync_storage_alarm{folder=\"store\"} 0")
    })
    .await;
    assert!(cleared);
    assert!(eventually(WAIT, || audited(&gw, actions::STORAGE_ALARM_CLEARED)).await);
    assert_eq!(store.device_records(&dev1).await.unwrap().len(), 15);
    drop(conn);

    // Without a reserve, SQLite itself finds the disk full in the middle of a commit:
    // still a typed refusal, nothing acknowledged, and the store works again (with the
    // same connection pool) once space returns.
    let (scratch, mut config) = gw.stop().await;
    config.storage.reserve_bytes = 0;
    let gw = TestGateway::start_with(config, scratch, Arc::new(clock::SystemClock)).await;
    let (_, conn) = device(&gw, 1).await;
    disk.fill_leaving(128 << 10);
    let mut big_head = refused_head;
    let big = records(&dev1, &mut big_head, "big", 60, 15_000);
    assert_eq!(push(&conn, &big).await, Err(ErrorCode::StorageFull));
    let store = &gw.gateway.state().store;
    assert_eq!(store.device_records(&dev1).await.unwrap().len(), 15);
    disk.free_all();
    push(&conn, &big).await.expect("stored once space returns");
    assert_eq!(store.device_records(&dev1).await.unwrap().len(), 75);
    assert!(store.verify_audit_log().await.is_ok());
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_full_media_folder_refuses_chunks_and_publishes_clearly_and_resumes() {
    let Some(mut disk) = Tmpfs::mount("8m", 64) else {
        return skip();
    };
    let gw = gateway(&disk, true, |c| c.storage.reserve_bytes = 1 << 20).await;
    let (_, conn) = device(&gw, 1).await;
    let bytes = clip(3, 300_000);
    let ann = crate::io_errors::announcement(&bytes);
    let id = ann.recording_id;
    conn.announce_recording(ann.clone()).await.unwrap();

    // A chunk that would eat into the reserve is refused before a byte is read.
    let huge = clip(4, 7 << 20);
    let too_big = crate::io_errors::announcement(&huge);
    conn.announce_recording(too_big.clone()).await.unwrap();
    let header = UploadHeader {
        recording_id: too_big.recording_id,
        offset: 0,
        length: huge.len() as u64,
    };
    let refused = conn.upload_chunk(header, &huge[..]).await.unwrap_err();
    let agent::ClientError::Refused(reply) = refused else {
        panic!("a typed refusal")
    };
    assert_eq!(reply.code, ErrorCode::StorageFull, "{reply}");

    // Every byte staged, then no file can be made: the publish finds the disk full.
    let first = UploadHeader {
        recording_id: id,
        offset: 0,
        length: 200_000,
    };
    conn.upload_chunk(first, &bytes[..200_000]).await.unwrap();
    disk.fill_inodes();
    let last = UploadHeader {
        recording_id: id,
        offset: 200_000,
        length: 100_000,
    };
    let refused = conn
        .upload_chunk(last, &bytes[200_000..])
        .await
        .unwrap_err();
    let agent::ClientError::Refused(reply) = refused else {
        panic!("a typed refusal")
    };
    assert_eq!(reply.code, ErrorCode::StorageFull, "{reply}");
    assert!(
        reply.message.contains("300000"),
        "every byte is held: {reply}"
    );
    let media = disk.path().join("media");
    assert_eq!(published(&media, &ann.sha256), None, "nothing published");

    // Space returns: the next question about the recording finishes it.
    disk.free_all();
    let held = conn.upload_offset(id).await.unwrap();
    assert!(held.stored, "{held:?}");
    assert_eq!(published(&media, &ann.sha256), Some(ann.sha256));
    gw.gateway.shutdown().await;
}
