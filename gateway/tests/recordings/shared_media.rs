//! Shared storage (issue 20, point 4): staging is private to one gateway process even
//! when gateways share the media folder, and what is published is checked on disk.

use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;

use agent::transport::UploadReply;
use clock::SystemClock;
use protocol::message::UploadHeader;
use test_support::{Backend, TestGateway, test_config};

use crate::support::{Fixture, H, T0, announcement, content, upload_from};

/// Two gateways on one PostgreSQL store and one media folder, each with a data folder
/// of its own. A device uploads part of a recording through A and reconnects through
/// B: B holds none of A's bytes (its staging is its own) and the device sends them
/// again, so no process ever writes another's partial file. A third process on A's data
/// folder cannot start while A runs.
#[tokio::test]
async fn gateways_sharing_a_media_folder_never_share_a_staging_file() {
    let Some(backend) = test_support::postgres_backend().await else {
        eprintln!(
            "FIELDSYNC_TEST_PG unset: skipping the shared-media test (it needs a shared store)"
        );
        return;
    };
    let media = tempfile::tempdir().unwrap();
    let a = start(&backend, media.path(), None).await;
    let b = start(&backend, media.path(), Some(&a)).await;

    let (_, identity) = a.device(1);
    let bytes = content(90, 3 << 20);
    let ann = announcement(&bytes, T0 - H);
    let id = ann.recording_id;
    let mut via_a = a.connect(&identity).await.unwrap();
    via_a.hello(T0, "shared-media/1").await.unwrap();
    via_a.announce_recording(ann.clone()).await.unwrap();
    let first = UploadHeader {
        recording_id: id,
        offset: 0,
        length: 1 << 20,
    };
    via_a.upload_chunk(first, &bytes[..1 << 20]).await.unwrap();

    let mut via_b = b.connect(&identity).await.unwrap();
    via_b.hello(T0, "shared-media/1").await.unwrap();
    let held = via_b.upload_offset(id).await.unwrap();
    assert_eq!(held.offset, 0, "B holds none of the bytes staged by A");
    let reply = upload_from(&via_b, id, &bytes, 0, 1 << 20).await.unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");
    assert_eq!(
        b.gateway.state().media.digest(&ann.sha256).await.unwrap(),
        ann.sha256
    );
    let staged_a = a.gateway.state().media.staging_path(id);
    let staged_b = b.gateway.state().media.staging_path(id);
    assert_ne!(
        staged_a.parent(),
        staged_b.parent(),
        "one staging folder per gateway"
    );
    assert_eq!(
        std::fs::metadata(&staged_a).unwrap().len(),
        1 << 20,
        "A's bytes untouched"
    );

    // A second process on A's data folder would share A's staging: refused.
    let err = gateway::start(a.config.clone())
        .await
        .err()
        .expect("a second gateway on the same data folder does not start");
    assert!(
        err.to_string().contains("held by another gateway process"),
        "{err}"
    );
    b.gateway.shutdown().await;
    a.gateway.shutdown().await;
}

async fn start(
    backend: &Backend,
    media: &std::path::Path,
    pki_of: Option<&TestGateway>,
) -> TestGateway {
    let data = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(data.path(), backend, 1);
    config.media.dir = media.to_string_lossy().into_owned();
    if let Some(first) = pki_of {
        config.pki.dir = first.pki_dir().to_string_lossy().into_owned();
        config.pki.auto_dev_pki = false;
    }
    TestGateway::start_with(config, data, Arc::new(SystemClock)).await
}

/// The staged file is read back before it is published: bytes the disk changed after
/// they were received (here, by hand) are never published under the recording's hash.
/// The device hears "retry", the gateway holds nothing of the recording, and a new
/// upload stores it whole.
#[tokio::test]
async fn a_staged_file_changed_on_disk_is_never_published() {
    let fx = Fixture::start(&Backend::Sqlite).await;
    let conn = fx.device(1, 0).await;
    let bytes = content(91, 600_000);
    let ann = announcement(&bytes, T0 - H);
    let id = ann.recording_id;
    conn.announce_recording(ann.clone()).await.unwrap();
    let first = UploadHeader {
        recording_id: id,
        offset: 0,
        length: 500_000,
    };
    conn.upload_chunk(first, &bytes[..500_000]).await.unwrap();
    {
        let mut staged = std::fs::OpenOptions::new()
            .write(true)
            .open(fx.state().media.staging_path(id))
            .unwrap();
        staged.seek(SeekFrom::Start(4096)).unwrap();
        staged.write_all(&[0u8; 4096]).unwrap();
    }
    let last = UploadHeader {
        recording_id: id,
        offset: 500_000,
        length: 100_000,
    };
    let err = conn
        .upload_chunk(last, &bytes[500_000..])
        .await
        .expect_err("not stored");
    let reply = crate::support::refusal(err);
    assert!(reply.code.is_retryable(), "{reply}");
    let media = &fx.state().media;
    assert!(
        media.holds(&ann.sha256, ann.size).await.unwrap().is_none(),
        "nothing published"
    );
    assert!(
        !media.staging_path(id).exists(),
        "the damaged copy is dropped"
    );
    assert_eq!(conn.upload_offset(id).await.unwrap().offset, 0);
    let metrics = fx.gw.metrics_text().await;
    assert!(
        metrics.contains("fieldsync_recording_staged_damaged_total 1"),
        "{metrics}"
    );

    let reply = upload_from(&conn, id, &bytes, 0, 300_000).await.unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");
    assert_eq!(media.digest(&ann.sha256).await.unwrap(), ann.sha256);
    fx.gw.gateway.shutdown().await;
}
