//! A full disk, for real: the media folder is a tmpfs mounted by the test with 1 MiB free (the
//! tests run as root; without the right to mount, the test prints a notice and
//! skips). The upload is refused with a clear "storage full" error, every byte
//! acknowledged before stays held, the gateway goes on serving (hello, records,
//! announcements), and once space is freed the upload resumes and completes.

use agent::transport::UploadReply;
use protocol::ErrorCode;
use protocol::chain::ChainHead;
use protocol::domain::Stage;
use protocol::message::UploadHeader;
use test_support::{Backend, Tmpfs};

use crate::support::{
    Fixture, H, T0, announcement, content, push_records, record, refusal, upload_from,
};

#[tokio::test]
async fn a_full_disk_refuses_clearly_loses_nothing_acknowledged_and_the_gateway_goes_on() {
    let Some(mut tmpfs) = Tmpfs::mount("8m", 1024) else {
        eprintln!("cannot mount a tmpfs (not root?): skipping the full-disk test");
        return;
    };
    tmpfs.fill_leaving(1 << 20);
    let media_dir = tmpfs.path().to_string_lossy().into_owned();
    // No reserve: the disk itself runs out in the middle of the chunk.
    let fx = Fixture::start_with(&Backend::Sqlite, |c| {
        c.media.dir = media_dir;
        c.storage.reserve_bytes = 0;
    })
    .await;
    let bytes = content(20, 2 << 20);
    let ann = announcement(&bytes, T0 - H);
    let id = ann.recording_id;
    let conn = fx.device(1, 0).await;
    conn.announce_recording(ann.clone()).await.unwrap();
    let first = UploadHeader {
        recording_id: id,
        offset: 0,
        length: 512 << 10,
    };
    let reply = conn.upload_chunk(first, &bytes[..512 << 10]).await.unwrap();
    assert!(matches!(reply, UploadReply::Offset(o) if o.offset == 512 << 10));

    // The rest does not fit in 1 MiB.
    let rest = UploadHeader {
        recording_id: id,
        offset: 512 << 10,
        length: (bytes.len() - (512 << 10)) as u64,
    };
    let reply = refusal(
        conn.upload_chunk(rest, &bytes[512 << 10..])
            .await
            .unwrap_err(),
    );
    assert_eq!(reply.code, ErrorCode::StorageFull);
    assert!(reply.code.is_retryable());
    assert!(
        reply.message.contains("full") && reply.message.contains("524288"),
        "{reply}"
    );
    // Nothing acknowledged was lost, nothing unacknowledged kept.
    assert_eq!(conn.upload_offset(id).await.unwrap().offset, 512 << 10);
    let staged = fx.state().media.staging_path(id);
    assert_eq!(std::fs::metadata(&staged).unwrap().len(), 512 << 10);

    // The gateway goes on serving: a new connection, a record push, an announcement.
    let (device, _) = fx.gw.device(2);
    let mut other = fx.gw.connect(&fx.gw.device(2).1).await.unwrap();
    let welcome = other.hello(T0, "recordings-test/1").await.unwrap();
    assert_eq!(welcome.chain, ChainHead::GENESIS);
    push_records(
        &other,
        &device,
        welcome.chain,
        vec![record(
            "CASE-9",
            Stage::Investigation,
            "inspection",
            T0,
            vec![],
        )],
    )
    .await;
    let small = content(21, 1000);
    let tracked = other
        .announce_recording(announcement(&small, T0))
        .await
        .unwrap();
    assert!(!tracked.stored);

    // Space is freed: the upload resumes from its offset and completes.
    tmpfs.free_all();
    let reply = upload_from(&conn, id, &bytes, 512 << 10, 512 << 10)
        .await
        .unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");
    assert_eq!(
        fx.state().media.digest(&ann.sha256).await.unwrap(),
        ann.sha256
    );
    fx.gw.gateway.shutdown().await;
    drop(tmpfs);
}
