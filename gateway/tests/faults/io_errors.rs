//! I/O errors (issue 20, point 3): a write, an fsync or a rename that fails with `EIO`
//! (a failpoint that fails once, so the disk "recovers" at once) stops the component
//! that saw it for the rest of the process's life — it is never retried as if it had
//! succeeded. The device hears `StorageFailed` (retryable) and keeps its data; other
//! components go on; `/metrics`, `/healthz` and the log say so; after a restart the
//! upload resumes from the last acknowledged offset and is stored whole.

use agent::GatewayConnection;
use agent::transport::UploadReply;
use protocol::chain::ChainHead;
use protocol::message::{PushRecords, RecordingAnnouncement, UploadHeader};
use protocol::{DeviceId, ErrorCode, RequestBody, ResponseBody, Sha256Hash};
use test_support::{Backend, GatewayProcess, http_get};

use crate::support::{Site, clip, content, metric, now};

const CHUNK: usize = 200_000;

/// Connects as development device `n` and says hello.
async fn device(process: &GatewayProcess, site: &Site, n: u32) -> (DeviceId, GatewayConnection) {
    let id = DeviceId::new(format!("dev-{n:05}")).expect("device id");
    let bundle = pki::layout::device_dir(&site.data.path().join("pki"), &id);
    let identity = agent::DeviceIdentity::load_bundle(&bundle).expect("bundle");
    let mut conn = test_support::connect(process.device_addr, &identity)
        .await
        .expect("connects");
    conn.hello(now(), "io-errors/1").await.expect("hello");
    (id, conn)
}

pub(crate) fn announcement(bytes: &[u8]) -> RecordingAnnouncement {
    RecordingAnnouncement {
        recording_id: uuid::Uuid::new_v4(),
        sha256: Sha256Hash::of(bytes),
        size: bytes.len() as u64,
        media: protocol::message::MediaKind::Video,
        started_at: now() - 120_000,
        ended_at: now() - 60_000,
        case_number: None,
        officer: None,
    }
}

/// The refusal code of a failed request.
fn code(err: agent::ClientError) -> ErrorCode {
    match err {
        agent::ClientError::Refused(reply) => reply.code,
        other => panic!("expected a typed refusal, got {other}"),
    }
}

async fn chunk(
    conn: &GatewayConnection,
    id: uuid::Uuid,
    bytes: &[u8],
    from: usize,
) -> Result<UploadReply, agent::ClientError> {
    let end = (from + CHUNK).min(bytes.len());
    let header = UploadHeader {
        recording_id: id,
        offset: from as u64,
        length: (end - from) as u64,
    };
    conn.upload_chunk(header, &bytes[from..end]).await
}

/// Pushes `n` records of a fresh chain from `head`; the reply's error code, if any.
async fn push(
    conn: &GatewayConnection,
    device: &DeviceId,
    head: &mut ChainHead,
    label: &str,
) -> Option<ErrorCode> {
    let record = protocol::chain::seal(device, head, content(label));
    let body = RequestBody::PushRecords(PushRecords {
        records: vec![record.clone()],
    });
    match conn.request(body).await {
        Ok(ResponseBody::RecordAcks(acks)) => {
            assert!(acks.acks.iter().all(|a| a.outcome.is_durable()), "{acks:?}");
            *head = head.advance(&record);
            None
        }
        Err(refused) => Some(code(refused)),
        Ok(other) => panic!("unexpected reply {other:?}"),
    }
}

/// What `/metrics` says about a component, and what `/healthz` answers.
async fn health(process: &GatewayProcess, component: &str) -> (Option<f64>, String) {
    let metrics = http_get(process.http_addr, "/metrics").await;
    let failed = metric(
        &metrics,
        &format!("fieldsync_storage_failed{{component=\"{component}\"}}"),
    );
    (failed, http_get(process.http_addr, "/healthz").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_fsync_or_rename_stops_the_component_until_restarted() {
    let mut site = Site::new(&Backend::Sqlite);
    let bytes = clip(7, 3 * CHUNK);
    let ann = announcement(&bytes);
    let id = ann.recording_id;
    let mut heads = [ChainHead::GENESIS, ChainHead::GENESIS];
    let mut acked = 0;

    // Each start fails one step once: a write of the first chunk, then the fsync of a
    // chunk, then the rename of the complete file.
    for point in ["staging.write", "staging.fsync", "publish.rename"] {
        let process = site.start(&format!("{point}=1*return(eio)"), &[]).await;
        let (dev1, conn) = device(&process, &site, 1).await;
        conn.announce_recording(ann.clone()).await.expect("tracked");
        let held = conn.upload_offset(id).await.expect("the offset").offset as usize;
        assert_eq!(held, acked, "{point}: the last acknowledged offset is held");
        // Upload until the failure.
        let mut from = held;
        let failure = loop {
            match chunk(&conn, id, &bytes, from).await {
                Ok(UploadReply::Offset(o)) => {
                    from = o.offset as usize;
                    acked = from;
                }
                Ok(UploadReply::Stored(s)) => panic!("{point}: stored despite the failure: {s:?}"),
                Err(e) => break code(e),
            }
        };
        assert_eq!(failure, ErrorCode::StorageFailed, "{point}");
        // The step would succeed now, but the media store stays stopped.
        for _ in 0..2 {
            assert_eq!(
                code(conn.upload_offset(id).await.unwrap_err()),
                ErrorCode::StorageFailed
            );
            assert_eq!(
                code(chunk(&conn, id, &bytes, acked).await.unwrap_err()),
                ErrorCode::StorageFailed
            );
        }
        let (failed, healthz) = health(&process, "media").await;
        assert_eq!(failed, Some(1.0), "{point}");
        assert!(
            healthz.starts_with("HTTP/1.1 503") && healthz.contains("media"),
            "{healthz}"
        );
        // Records are another component: still stored.
        assert_eq!(
            push(&conn, &dev1, &mut heads[0], &format!("after {point}")).await,
            None
        );
        let log = process.log();
        assert!(
            log.contains("storage failed") && log.contains("Input/output error"),
            "{point}: the log says so:\n{log}"
        );
        drop(process);
    }

    // A failed commit stops ingest the same way; recordings go on.
    let process = site.start("ingest.commit=1*return(eio)", &[]).await;
    let (dev2, conn) = device(&process, &site, 2).await;
    assert_eq!(
        push(&conn, &dev2, &mut heads[1], "lost to EIO").await,
        Some(ErrorCode::StorageFailed)
    );
    assert_eq!(
        push(&conn, &dev2, &mut heads[1], "refused after EIO").await,
        Some(ErrorCode::StorageFailed),
        "the commit would succeed now; ingest stays stopped"
    );
    assert_eq!(health(&process, "ingest").await.0, Some(1.0));
    // Media goes on: the rename failed after the last chunk was durable, so the next
    // question about the recording (in a process whose media store works) finishes it.
    let (_, owner) = device(&process, &site, 1).await;
    let held = owner.upload_offset(id).await.expect("media goes on");
    assert!(
        held.stored,
        "stored from the durable staging file: {held:?}"
    );
    assert_eq!(
        acked,
        2 * CHUNK,
        "the last chunk was refused, not acknowledged"
    );
    drop(process);

    // Restarted: both resume, nothing acknowledged was lost, the recording is whole.
    let process = site.start("", &[]).await;
    let (_, conn) = device(&process, &site, 2).await;
    assert_eq!(push(&conn, &dev2, &mut heads[1], "lost to EIO").await, None);
    assert_eq!(health(&process, "ingest").await.0, Some(0.0));
    let (_, owner) = device(&process, &site, 1).await;
    assert!(owner.upload_offset(id).await.expect("offset").stored);
    assert_eq!(
        crate::support::published(&site.media_dir(), &ann.sha256),
        Some(ann.sha256)
    );
    drop(process);
}
