//! Upload, verification and the refusals: a recording is stored only once every byte
//! is in, its SHA-256 matches and it is durable; wrong input gets a typed error and
//! changes nothing.

use agent::transport::UploadReply;
use protocol::ErrorCode;
use protocol::deadline::UploadState;
use protocol::message::UploadHeader;
use test_support::{Backend, backends};

use crate::support::{Fixture, H, T0, announcement, content, refusal, row, upload_from};

#[tokio::test]
async fn an_upload_is_verified_made_durable_and_then_reported_stored() {
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        let conn = fx.device(1, 0).await;
        let bytes = content(1, 700_000);
        let ann = announcement(&bytes, T0 - H);
        let tracked = conn
            .announce_recording(ann.clone())
            .await
            .expect("announce");
        assert_eq!(tracked.deadline, T0 + 23 * H, "{}", backend.name());
        assert_eq!((tracked.offset, tracked.stored), (0, false));
        // Tracked at once: visible with its deadline before a byte arrives.
        let before = row(&fx, ann.recording_id).await;
        assert_eq!(before.state, UploadState::Pending);
        assert_eq!(before.deadline, T0 + 23 * H);

        let reply = upload_from(&conn, ann.recording_id, &bytes, 0, 256 << 10)
            .await
            .expect("upload");
        let UploadReply::Stored(stored) = reply else {
            panic!("expected stored, got {reply:?}");
        };
        assert_eq!(stored.sha256, ann.sha256);
        assert_eq!(stored.stored_at, T0);

        let after = row(&fx, ann.recording_id).await;
        assert_eq!(after.state, UploadState::UploadedOnTime);
        assert_eq!(after.bytes_received, bytes.len() as u64);
        let media = &fx.state().media;
        assert_eq!(media.digest(&ann.sha256).await.unwrap(), ann.sha256);
        let path = media.local_path(&ann.sha256).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the stored file is the upload"
        );
        assert!(
            !media.staging_path(ann.recording_id).exists(),
            "staging is emptied"
        );
        // The read-back before publishing was timed, once, on /metrics.
        let read_back = &fx.state().recording_metrics.read_back_seconds;
        assert_eq!(read_back.get_sample_count(), 1, "{}", backend.name());
        let page = fx.state().metrics.render();
        assert!(
            page.contains("fieldsync_recording_read_back_seconds_count 1"),
            "{page}"
        );

        // Asking again (a retry after a lost reply) says stored.
        let again = conn.announce_recording(ann.clone()).await.unwrap();
        assert!(again.stored);
        assert_eq!(again.offset, bytes.len() as u64);
        let offset = conn.upload_offset(ann.recording_id).await.unwrap();
        assert!(offset.stored);
        let history = fx
            .state()
            .store
            .recording_state_changes(ann.recording_id)
            .await
            .unwrap();
        let states: Vec<_> = history
            .iter()
            .map(|c| (c.from, c.to, c.reason.as_str()))
            .collect();
        assert_eq!(
            states,
            vec![
                (None, UploadState::Pending, "announced"),
                (
                    Some(UploadState::Pending),
                    UploadState::UploadedOnTime,
                    "stored"
                ),
            ]
        );
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn a_recording_over_the_size_limit_is_refused_at_announcement() {
    let fx = Fixture::start_with(&Backend::Sqlite, |c| c.limits.max_recording_bytes = 1000).await;
    let conn = fx.device(1, 0).await;
    let bytes = content(2, 1001);
    let ann = announcement(&bytes, T0);
    let reply = refusal(conn.announce_recording(ann.clone()).await.unwrap_err());
    assert_eq!(reply.code, ErrorCode::RecordingTooLarge);
    assert!(
        reply.message.contains("1001") && reply.message.contains("1000"),
        "{reply}"
    );
    assert!(
        fx.state()
            .store
            .recording(ann.recording_id)
            .await
            .unwrap()
            .is_none()
    );
    // No transfer is possible for it either.
    let header = UploadHeader {
        recording_id: ann.recording_id,
        offset: 0,
        length: 1001,
    };
    let reply = refusal(conn.upload_chunk(header, &bytes[..]).await.unwrap_err());
    assert_eq!(reply.code, ErrorCode::UnknownRecording);
    fx.gw.gateway.shutdown().await;
}

#[tokio::test]
async fn corrupted_bytes_are_refused_the_partial_dropped_and_a_clean_upload_then_works() {
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        let conn = fx.device(1, 0).await;
        let bytes = content(3, 300_000);
        let ann = announcement(&bytes, T0 - H);
        conn.announce_recording(ann.clone()).await.unwrap();
        let mut corrupted = bytes.clone();
        corrupted[150_000] ^= 0x40;
        let err = upload_from(&conn, ann.recording_id, &corrupted, 0, 100_000)
            .await
            .unwrap_err();
        let reply = refusal(err);
        assert_eq!(reply.code, ErrorCode::HashMismatch, "{}", backend.name());
        assert!(reply.message.contains(&ann.sha256.to_hex()), "{reply}");
        let media = &fx.state().media;
        assert!(
            !media.staging_path(ann.recording_id).exists(),
            "the partial file is dropped"
        );
        assert!(media.holds(&ann.sha256, ann.size).await.unwrap().is_none());
        let r = row(&fx, ann.recording_id).await;
        assert!(!r.is_stored());
        assert_eq!(r.bytes_received, 0);
        let offset = conn.upload_offset(ann.recording_id).await.unwrap();
        assert_eq!(
            (offset.offset, offset.stored),
            (0, false),
            "start again from 0"
        );
        // The agent kept its copy; sending it again stores it.
        let reply = upload_from(&conn, ann.recording_id, &bytes, 0, 100_000)
            .await
            .unwrap();
        assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");
        assert_eq!(media.digest(&ann.sha256).await.unwrap(), ann.sha256);
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn bad_chunks_get_typed_errors_and_change_nothing() {
    let fx = Fixture::start(&Backend::Sqlite).await;
    let conn = fx.device(1, 0).await;
    let other = fx.device(2, 0).await;
    let bytes = content(4, 50_000);
    let ann = announcement(&bytes, T0);
    conn.announce_recording(ann.clone()).await.unwrap();
    let id = ann.recording_id;
    conn.upload_chunk(
        UploadHeader {
            recording_id: id,
            offset: 0,
            length: 10_000,
        },
        &bytes[..10_000],
    )
    .await
    .unwrap();

    // Not at the gateway's offset: the message says where to resume.
    let wrong = UploadHeader {
        recording_id: id,
        offset: 0,
        length: 10_000,
    };
    let reply = refusal(
        conn.upload_chunk(wrong, &bytes[..10_000])
            .await
            .unwrap_err(),
    );
    assert_eq!(reply.code, ErrorCode::OffsetMismatch);
    assert!(reply.message.contains("10000"), "{reply}");
    // Past the announced size.
    let past = UploadHeader {
        recording_id: id,
        offset: 10_000,
        length: 40_001,
    };
    let mut long = bytes[10_000..].to_vec();
    long.push(0);
    let reply = refusal(conn.upload_chunk(past, &long[..]).await.unwrap_err());
    assert_eq!(reply.code, ErrorCode::RecordingTooLarge);
    // Another device cannot upload (or even see) this recording.
    let theirs = UploadHeader {
        recording_id: id,
        offset: 10_000,
        length: 100,
    };
    let reply = refusal(
        other
            .upload_chunk(theirs, &bytes[10_000..10_100])
            .await
            .unwrap_err(),
    );
    assert_eq!(reply.code, ErrorCode::UnknownRecording);
    let reply = refusal(other.upload_offset(id).await.unwrap_err());
    assert_eq!(reply.code, ErrorCode::UnknownRecording);
    // The same id announced with another hash is a conflict.
    let mut changed = ann.clone();
    changed.sha256 = protocol::Sha256Hash::of(b"something else");
    let reply = refusal(conn.announce_recording(changed).await.unwrap_err());
    assert_eq!(reply.code, ErrorCode::AnnouncementConflict);

    assert_eq!(
        conn.upload_offset(id).await.unwrap().offset,
        10_000,
        "nothing changed"
    );
    let reply = upload_from(&conn, id, &bytes, 10_000, 20_000)
        .await
        .unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)));
    fx.gw.gateway.shutdown().await;
}

#[tokio::test]
async fn an_empty_recording_is_stored_by_its_announcement() {
    let fx = Fixture::start(&Backend::Sqlite).await;
    let conn = fx.device(1, 0).await;
    let ann = announcement(&[], T0);
    let tracked = conn.announce_recording(ann.clone()).await.unwrap();
    assert!(
        tracked.stored,
        "nothing to send: the empty file is verified and stored"
    );
    assert!(row(&fx, ann.recording_id).await.is_stored());
    fx.gw.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_devices_upload_at_once() {
    let fx = Fixture::start_with(&Backend::Sqlite, |c| c.pki.dev_devices = 16).await;
    let mut uploads = Vec::new();
    for n in 1..=16u32 {
        let conn = fx.device(n, 0).await;
        let bytes = content(100 + u64::from(n), 3 << 20);
        let ann = announcement(&bytes, T0 - H);
        conn.announce_recording(ann.clone()).await.unwrap();
        uploads.push(async move {
            let reply = upload_from(&conn, ann.recording_id, &bytes, 0, 1 << 20)
                .await
                .unwrap();
            assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");
            ann.sha256
        });
    }
    let hashes = futures::future::join_all(uploads).await;
    for sha in hashes {
        assert_eq!(fx.state().media.digest(&sha).await.unwrap(), sha);
    }
    fx.gw.gateway.shutdown().await;
}

/// Shutdown waits for a request in flight before it closes the connection: an upload
/// whose body is still arriving is stopped, its staged bytes are kept for the device to
/// resume, and the connection is closed with "going away". The "shutting down" reply
/// reaches the device's QUIC stack first, but quinn refuses to read a stream of a
/// closed connection, so an agent that had not read it yet sees the close instead.
#[tokio::test]
async fn an_upload_in_flight_at_shutdown_keeps_its_bytes_and_ends_going_away() {
    use tokio::io::AsyncWriteExt;
    let fx = Fixture::start(&Backend::Sqlite).await;
    let state = fx.state().clone();
    let conn = fx.device(1, 0).await;
    let bytes = content(11, 300_000);
    let ann = announcement(&bytes, T0 - H);
    conn.announce_recording(ann.clone()).await.unwrap();
    let header = UploadHeader {
        recording_id: ann.recording_id,
        offset: 0,
        length: bytes.len() as u64,
    };
    let (mut body, reader) = tokio::io::duplex(16 << 10);
    let (in_flight, started) = tokio::sync::oneshot::channel::<()>();
    let device = async {
        let upload = conn.upload_chunk(header, reader);
        let feed = async {
            body.write_all(&bytes[..100_000]).await.unwrap();
            // The handler is in flight once it read bytes; then shutdown starts.
            while state.recording_metrics.bytes_streamed.get() == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            in_flight.send(()).unwrap();
            while !state.shutdown.is_cancelled() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            // The rest meets a stopped stream (or a finished upload): either ends it.
            let _ = body.write_all(&bytes[100_000..]).await;
        };
        let (reply, ()) = tokio::join!(upload, feed);
        let closed = tokio::time::timeout(std::time::Duration::from_secs(30), conn.closed())
            .await
            .expect("the gateway closes the connection after answering");
        (reply, closed.close_code())
    };
    let gateway = fx.gw.gateway;
    let shutdown = async {
        started.await.unwrap();
        gateway.shutdown().await;
    };
    let ((), (reply, code)) = tokio::join!(shutdown, device);
    match reply.expect_err("an upload cut by shutdown is refused") {
        agent::ClientError::Refused(refused) => {
            assert_eq!(refused.code, ErrorCode::ShuttingDown, "{refused:?}");
        }
        other => assert_eq!(other.close_code(), Some(protocol::CloseCode::GoingAway)),
    }
    assert_eq!(code, Some(protocol::CloseCode::GoingAway));
    let staged = std::fs::metadata(state.media.staging_path(ann.recording_id))
        .expect("the staged part is kept")
        .len();
    assert!(staged > 0, "the bytes received before shutdown are kept");
}
