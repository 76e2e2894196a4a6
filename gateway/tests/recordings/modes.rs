//! File modes (issue 20, point 5): the data folder is the gateway user's alone (0700)
//! and the database, its write-ahead log, staging files and stored recordings are 0600,
//! whatever the umask (the test runs under the usual 022). A data folder left open by
//! an earlier version is tightened at start.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use agent::transport::UploadReply;
use clock::ManualClock;
use protocol::message::UploadHeader;
use test_support::{Backend, TestGateway, test_config};

use crate::support::{H, T0, announcement, content, upload_from};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_folder_is_private_and_every_file_written_is_0600() {
    let data = Arc::new(tempfile::tempdir().unwrap());
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = test_config(data.path(), &Backend::Sqlite, 1);
    let gw = TestGateway::start_with(config, data.clone(), Arc::new(ManualClock::new(T0))).await;
    let (_, identity) = gw.device(1);
    let mut conn = gw.connect(&identity).await.unwrap();
    conn.hello(T0, "modes-test/1").await.unwrap();

    // One recording stored whole, one left half uploaded in staging.
    let whole = content(80, 300_000);
    let ann = announcement(&whole, T0 - H);
    conn.announce_recording(ann.clone()).await.unwrap();
    let reply = upload_from(&conn, ann.recording_id, &whole, 0, 100_000)
        .await
        .unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");
    let half = content(81, 300_000);
    let partial = announcement(&half, T0 - H);
    conn.announce_recording(partial.clone()).await.unwrap();
    let header = UploadHeader {
        recording_id: partial.recording_id,
        offset: 0,
        length: 100_000,
    };
    conn.upload_chunk(header, &half[..100_000]).await.unwrap();

    let media = &gw.gateway.state().media;
    let stored = media.local_path(&ann.sha256).expect("fs backend");
    let staged = media.staging_path(partial.recording_id);
    let db = data.path().join("fieldsync.db");
    let files = [
        db.clone(),
        data.path().join("fieldsync.db-wal"),
        data.path().join("fieldsync.db-shm"),
        staged.clone(),
        stored.clone(),
    ];
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let folders = [
        data.path().to_owned(),
        staged.parent().unwrap().to_owned(),
        stored.parent().unwrap().to_owned(),
        stored.parent().unwrap().parent().unwrap().to_owned(),
    ];
    for folder in &folders {
        assert_eq!(mode(folder), 0o700, "{}", folder.display());
    }
    gw.gateway.shutdown().await;
}
