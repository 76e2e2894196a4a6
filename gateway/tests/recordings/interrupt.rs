//! Interrupted uploads: the device goes away mid-chunk, the gateway stops mid-chunk,
//! the gateway dies between the media store and the commit, or between the commit
//! and the reply. Every byte the gateway reported stays held, the upload resumes from
//! the gateway's offset, and the device hears "stored" only for a recording the
//! gateway durably holds.

use agent::transport::UploadReply;
use protocol::ErrorCode;
use protocol::deadline::UploadState;
use protocol::message::UploadHeader;
use test_support::{backends, eventually};
use tokio_util::sync::CancellationToken;

use crate::support::{
    Fixture, H, T0, WAIT, announcement, content, read_reply, refusal, row, start_chunk,
    streamed_at_least, upload_from,
};

#[tokio::test]
async fn a_device_that_drops_its_connection_mid_chunk_resumes_from_the_offset() {
    let fx = Fixture::start(&test_support::Backend::Sqlite).await;
    let bytes = content(10, 1_000_000);
    let ann = announcement(&bytes, T0 - H);
    let id = ann.recording_id;
    let conn = fx.device(1, 0).await;
    conn.announce_recording(ann.clone()).await.unwrap();
    let _stream = start_chunk(&conn, id, 0, bytes.len() as u64, &bytes[..400_000]).await;
    streamed_at_least(&fx, 400_000).await;
    // The agent dies: its connection ends under the open chunk.
    conn.quic().close(0u32.into(), b"killed");
    drop(conn);

    let conn = fx.device(1, 0).await;
    let offset = eventually(WAIT, || async {
        conn.upload_offset(id)
            .await
            .map(|o| o.offset == 400_000)
            .unwrap_or(false)
    })
    .await;
    assert!(offset, "the bytes that arrived are held");
    assert!(!row(&fx, id).await.is_stored());
    let reply = upload_from(&conn, id, &bytes, 400_000, 300_000)
        .await
        .unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");
    assert_eq!(
        fx.state().media.digest(&ann.sha256).await.unwrap(),
        ann.sha256
    );
    fx.gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_device_that_went_silent_mid_chunk_is_superseded_by_its_next_connection() {
    // A killed device sends no close: its old stream waits for bytes that never come.
    // Its next connection replaces the old one at once (issue 19), and the bytes that
    // arrived are kept.
    let fx = Fixture::start(&test_support::Backend::Sqlite).await;
    let bytes = content(11, 600_000);
    let ann = announcement(&bytes, T0 - H);
    let id = ann.recording_id;
    let old = fx.device(1, 0).await;
    old.announce_recording(ann.clone()).await.unwrap();
    let (_send, mut recv) = start_chunk(&old, id, 0, bytes.len() as u64, &bytes[..250_000]).await;
    streamed_at_least(&fx, 250_000).await;

    let new = fx.device(1, 0).await;
    let closed = tokio::time::timeout(WAIT, old.closed())
        .await
        .expect("the old connection is closed");
    assert_eq!(
        closed.close_code(),
        Some(protocol::CloseCode::Replaced),
        "{closed}"
    );
    let reply = agent::transport::frames::read_message::<protocol::Response>(
        &mut recv,
        protocol::frame::FrameDecoder::new(1 << 20),
    )
    .await;
    assert!(
        !matches!(reply, Ok(Some(_))),
        "a reply on a replaced connection: {reply:?}"
    );
    assert_eq!(new.upload_offset(id).await.unwrap().offset, 250_000);
    let reply = upload_from(&new, id, &bytes, 250_000, 200_000)
        .await
        .unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)));
    fx.gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_gateway_stopped_mid_chunk_keeps_what_it_held_and_resumes_after_restart() {
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        let bytes = content(12, 1_200_000);
        let ann = announcement(&bytes, T0 - H);
        let id = ann.recording_id;
        let conn = fx.device(1, 0).await;
        conn.announce_recording(ann.clone()).await.unwrap();
        // One acknowledged chunk, then a chunk cut off by the shutdown.
        let header = UploadHeader {
            recording_id: id,
            offset: 0,
            length: 300_000,
        };
        conn.upload_chunk(header, &bytes[..300_000]).await.unwrap();
        let (_send, mut recv) =
            start_chunk(&conn, id, 300_000, 900_000, &bytes[300_000..700_000]).await;
        // 300,000 bytes in the acknowledged chunk, 400,000 in the cut-off one.
        streamed_at_least(&fx, 700_000).await;

        let fx = fx.restart().await;
        // The cut-off chunk was answered "shutting down" with the offset it reached.
        let reply = read_reply(&mut recv).await;
        match reply.body {
            protocol::ResponseBody::Error(e) => {
                assert_eq!(e.code, ErrorCode::ShuttingDown, "{}", backend.name());
                assert!(e.message.contains("700000"), "{e}");
            }
            other => panic!("expected a shutting-down reply, got {other:?}"),
        }
        drop(conn);
        let conn = fx.device(1, 0).await;
        let offset = conn.upload_offset(id).await.unwrap();
        assert_eq!(
            (offset.offset, offset.stored),
            (700_000, false),
            "{}",
            backend.name()
        );
        let reply = upload_from(&conn, id, &bytes, 700_000, 250_000)
            .await
            .unwrap();
        assert!(matches!(reply, UploadReply::Stored(_)));
        assert_eq!(
            fx.state().media.digest(&ann.sha256).await.unwrap(),
            ann.sha256
        );
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn bytes_never_reported_are_cut_back_after_a_restart() {
    // A crash can leave bytes past the last reported offset in the staging file (or
    // garbage, after power loss). The restart cuts the file back to the recorded
    // offset, so the resumed upload still verifies.
    let fx = Fixture::start(&test_support::Backend::Sqlite).await;
    let bytes = content(13, 400_000);
    let ann = announcement(&bytes, T0 - H);
    let id = ann.recording_id;
    let conn = fx.device(1, 0).await;
    conn.announce_recording(ann.clone()).await.unwrap();
    let header = UploadHeader {
        recording_id: id,
        offset: 0,
        length: 100_000,
    };
    conn.upload_chunk(header, &bytes[..100_000]).await.unwrap();
    drop(conn);
    let path = fx.state().media.staging_path(id);
    let fx = fx.restart().await;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[0xAA; 50_000]).unwrap();
    }
    let conn = fx.device(1, 0).await;
    assert_eq!(conn.upload_offset(id).await.unwrap().offset, 100_000);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 100_000);
    let reply = upload_from(&conn, id, &bytes, 100_000, 150_000)
        .await
        .unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)));
    fx.gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_gateway_killed_between_the_media_store_and_the_commit_collapses_the_retry_onto_the_file()
{
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        let bytes = content(14, 500_000);
        let ann = announcement(&bytes, T0 - H);
        let id = ann.recording_id;
        let conn = fx.device(1, 0).await;
        conn.announce_recording(ann.clone()).await.unwrap();
        // Everything the upload path does before the commit: stage, verify, fsync,
        // rename into the content-addressed store. Then the process "dies".
        {
            let media = &fx.state().media;
            let mut slot = media.acquire(id).await;
            assert_eq!(slot.offset(0).await.unwrap(), 0);
            let mut source = &bytes[..];
            let received = slot
                .receive(
                    &mut source,
                    bytes.len() as u64,
                    &CancellationToken::new(),
                    fx.state().config.media.pace(),
                    &fx.state().recording_metrics.bytes_streamed,
                )
                .await
                .unwrap();
            assert_eq!(received, media::Received::Complete { offset: 500_000 });
            media
                .publish(&mut slot, ann.sha256, ann.size)
                .await
                .unwrap();
        }
        drop(conn);
        let fx = fx.restart().await;
        assert!(!row(&fx, id).await.is_stored(), "the commit never happened");
        // The device never heard "stored", so it still has its copy and retries.
        let conn = fx.device(1, 0).await;
        let header = UploadHeader {
            recording_id: id,
            offset: 0,
            length: bytes.len() as u64,
        };
        let reply = conn.upload_chunk(header, &bytes[..]).await.unwrap();
        let UploadReply::Stored(stored) = reply else {
            panic!("expected stored, got {reply:?}");
        };
        assert_eq!(stored.sha256, ann.sha256, "{}", backend.name());
        let r = row(&fx, id).await;
        assert_eq!(r.state, UploadState::UploadedOnTime);
        let history = fx.state().store.recording_state_changes(id).await.unwrap();
        assert_eq!(history.iter().filter(|c| c.reason == "stored").count(), 1);
        assert_eq!(
            fx.state().media.digest(&ann.sha256).await.unwrap(),
            ann.sha256
        );
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn a_reply_lost_after_the_commit_is_answered_stored_on_the_retry() {
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        let bytes = content(15, 200_000);
        let ann = announcement(&bytes, T0 - H);
        let id = ann.recording_id;
        let conn = fx.device(1, 0).await;
        conn.announce_recording(ann.clone()).await.unwrap();
        // The whole file is sent, but the device dies before reading the reply.
        let (mut send, _recv) = start_chunk(&conn, id, 0, bytes.len() as u64, &bytes).await;
        send.finish().unwrap();
        let store = fx.state().store.clone();
        assert!(
            eventually(WAIT, || async {
                store
                    .recording(id)
                    .await
                    .unwrap()
                    .is_some_and(|r| r.is_stored())
            })
            .await
        );
        conn.quic().close(0u32.into(), b"killed");
        drop(conn);
        let fx = fx.restart().await;
        // It kept its copy (no "stored" heard); the retry hears "stored" at once.
        let conn = fx.device(1, 0).await;
        let tracked = conn.announce_recording(ann.clone()).await.unwrap();
        assert!(tracked.stored, "{}", backend.name());
        let header = UploadHeader {
            recording_id: id,
            offset: 0,
            length: bytes.len() as u64,
        };
        let reply = conn.upload_chunk(header, &bytes[..]).await.unwrap();
        assert!(matches!(reply, UploadReply::Stored(_)));
        let reply = refusal(
            conn.upload_chunk(
                UploadHeader {
                    recording_id: uuid::Uuid::new_v4(),
                    offset: 0,
                    length: 1,
                },
                &[0u8][..],
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(reply.code, ErrorCode::UnknownRecording);
        fx.gw.gateway.shutdown().await;
    }
}
