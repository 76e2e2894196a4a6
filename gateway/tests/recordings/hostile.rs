//! Uploads under attack (issue 19, point 3): a device that trickles its bytes, stalls
//! mid-chunk or announces recordings without end is cut off or refused with a typed
//! code, holds no thread while it waits, and other devices' uploads complete.

use std::time::Duration;

use agent::transport::UploadReply;
use protocol::message::UploadHeader;
use protocol::{ErrorCode, ResponseBody};
use test_support::{Backend, backends, eventually};

use crate::support::{
    Fixture, H, T0, WAIT, announcement, content, read_reply, refusal, start_chunk,
    streamed_at_least, upload_from,
};

/// Devices that stop mid-chunk hold no blocking thread: on a runtime with only two,
/// two stalled uploads would otherwise take both (one thread each for the chunk's whole
/// life, until the stall timeout) and every other upload would wait for them.
#[test]
fn stalled_uploads_hold_no_thread_and_others_complete() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let fx = Fixture::start(&Backend::Sqlite).await;
        let mut held = Vec::new();
        for n in [2, 3] {
            let bytes = content(u64::from(n), 200_000);
            let ann = announcement(&bytes, T0);
            let conn = fx.device(n, 0).await;
            conn.announce_recording(ann.clone())
                .await
                .expect("announced");
            // Half a chunk, then nothing (the stall timeout is a minute).
            let stream = start_chunk(&conn, ann.recording_id, 0, 200_000, &bytes[..1000]).await;
            held.push((conn, stream));
        }
        streamed_at_least(&fx, 2000).await;
        // (Announcing reads the staging file's offset: also work for the writer pool.)
        let upload = upload_whole(&fx, 1, 3 << 20);
        let reply = tokio::time::timeout(Duration::from_secs(20), upload)
            .await
            .expect("an honest upload completes while two others stall")
            .expect("upload");
        assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");
        drop(held);
        fx.gw.gateway.shutdown().await;
    });
}

/// A device that trickles its bytes (here ten a second; on the open internet, a byte a
/// minute) is cut off with a typed code once a period passes below the minimum rate,
/// keeping what arrived, while another device's upload completes.
#[tokio::test]
async fn a_trickling_upload_is_cut_off_with_a_typed_code_while_others_complete() {
    for backend in backends().await {
        let fx = Fixture::start_with(&backend, |c| {
            c.media.stall_timeout_secs = 1;
            c.media.min_upload_bytes_per_sec = 100;
        })
        .await;
        let slow = content(2, 10_000);
        let ann = announcement(&slow, T0);
        let trickler = fx.device(2, 0).await;
        trickler
            .announce_recording(ann.clone())
            .await
            .expect("announced");
        let (mut send, mut recv) = start_chunk(&trickler, ann.recording_id, 0, 10_000, &[]).await;
        let trickle = async {
            for byte in &slow {
                if send.write_all(std::slice::from_ref(byte)).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let cut_off = async {
            let reply = read_reply(&mut recv).await;
            match reply.body {
                ResponseBody::Error(e) => e,
                other => panic!("a trickle was not cut off: {other:?}"),
            }
        };
        let honest = upload_whole(&fx, 1, 2 << 20);
        let (refused, stored) = tokio::select! {
            // The trickle is never meant to finish: the gateway ends it.
            () = trickle => panic!("the whole trickle was read"),
            both = async { tokio::join!(cut_off, honest) } => both,
        };
        assert_eq!(refused.code, ErrorCode::UploadStalled, "{refused}");
        assert!(refused.code.is_retryable());
        let held = fx
            .state()
            .store
            .recording(ann.recording_id)
            .await
            .unwrap()
            .unwrap();
        assert!(
            refused
                .message
                .contains(&format!("holds {} bytes", held.bytes_received)),
            "{refused}"
        );
        assert!(matches!(stored.expect("upload"), UploadReply::Stored(_)));
        assert_refusals(&fx, "stalled", 1).await;
        fx.gw.gateway.shutdown().await;
    }
}

/// A device that announces recordings without end (each one a row and a deadline the
/// gateway tracks) is refused past `media.max_pending_recordings_per_device`, with a
/// typed code; a recording it announced already is still answered, and other devices
/// are not affected.
#[tokio::test]
async fn a_device_announcing_without_end_is_refused_past_its_cap() {
    for backend in backends().await {
        let fx = Fixture::start_with(&backend, |c| {
            c.media.max_pending_recordings_per_device = 50;
        })
        .await;
        let (flooder, _) = fx.gw.device(2);
        let flood = fx.device(2, 0).await;
        let mut kept = Vec::new();
        let mut refused = 0;
        for i in 0..2000 {
            let ann = announcement(&content(10_000 + i, 64), T0);
            match flood.announce_recording(ann.clone()).await {
                Ok(_) => kept.push(ann),
                Err(e) => {
                    let reply = refusal(e);
                    assert_eq!(reply.code, ErrorCode::TooManyPendingRecordings, "{reply}");
                    refused += 1;
                }
            }
        }
        assert_eq!((kept.len(), refused), (50, 1950), "{}", backend.name());
        let store = &fx.state().store;
        assert_eq!(
            store.pending_recordings(&flooder, 10_000).await.unwrap(),
            50
        );
        // Asking again about one it has is not a new announcement.
        flood
            .announce_recording(kept[0].clone())
            .await
            .expect("known");
        let reply = upload_whole(&fx, 1, 100_000).await;
        assert!(matches!(reply.expect("upload"), UploadReply::Stored(_)));
        assert_refusals(&fx, "too_many_pending", 1950).await;
        fx.gw.gateway.shutdown().await;
    }
}

/// Chunks in flight are capped per device (`TooManyUploads`) and gateway-wide (`Busy`),
/// both retryable; a freed place is taken again.
#[tokio::test]
async fn uploads_in_flight_are_capped_per_device_and_gateway_wide() {
    let fx = Fixture::start_with(&Backend::Sqlite, |c| {
        c.media.max_uploads_in_flight = 3;
        c.media.max_uploads_per_device = 2;
    })
    .await;
    let bytes = content(7, 100_000);
    // One connection per device (a newer one would replace it): device 2's three
    // uploads share its connection, as an agent's would.
    let (two, three) = (fx.device(2, 0).await, fx.device(3, 0).await);
    let mut announced = Vec::new();
    for (i, conn) in [&two, &two, &two, &three].into_iter().enumerate() {
        let ann = announcement(&content(100 + i as u64, 100_000), T0);
        conn.announce_recording(ann.clone())
            .await
            .expect("announced");
        announced.push((conn, ann));
    }
    let mut streams = Vec::new();
    for (conn, ann) in &announced[..2] {
        streams.push(start_chunk(conn, ann.recording_id, 0, 100_000, &bytes[..10]).await);
    }
    streamed_at_least(&fx, 20).await;
    // A third chunk of the same device.
    let (conn, ann) = &announced[2];
    let (_send, mut recv) = start_chunk(conn, ann.recording_id, 0, 100_000, &bytes[..10]).await;
    let reply = read_reply(&mut recv).await;
    assert!(
        matches!(&reply.body, ResponseBody::Error(e) if e.code == ErrorCode::TooManyUploads),
        "{reply:?}"
    );
    // Another device takes the gateway's last place.
    let (conn, ann) = &announced[3];
    streams.push(start_chunk(conn, ann.recording_id, 0, 100_000, &bytes[..10]).await);
    streamed_at_least(&fx, 30).await;
    let honest = content(1, 50_000);
    let honest_ann = announcement(&honest, T0);
    let conn = fx.device(1, 0).await;
    conn.announce_recording(honest_ann.clone())
        .await
        .expect("announced");
    let busy = upload_from(&conn, honest_ann.recording_id, &honest, 0, 1 << 20)
        .await
        .map(|_| ())
        .map_err(refusal)
        .expect_err("the gateway is full");
    assert_eq!(busy.code, ErrorCode::Busy, "{busy}");
    assert!(busy.code.is_retryable());
    // One held chunk ends: its place is free again.
    let (send, recv) = streams.pop().expect("held");
    drop((send, recv));
    let mut stored = false;
    for _ in 0..100 {
        match upload_from(&conn, honest_ann.recording_id, &honest, 0, 1 << 20).await {
            Ok(UploadReply::Stored(_)) => {
                stored = true;
                break;
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                assert_eq!(refusal(e).code, ErrorCode::Busy);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert!(stored, "the freed place was taken");
    drop(streams);
    fx.gw.gateway.shutdown().await;
}

/// The bytes one device's unfinished uploads hold in staging are capped
/// (`StagingQuotaExceeded`); finishing one makes room.
#[tokio::test]
async fn staging_bytes_per_device_are_capped() {
    let fx = Fixture::start_with(&Backend::Sqlite, |c| {
        c.limits.max_recording_bytes = 1 << 20;
        c.media.max_staging_bytes_per_device = 1 << 20;
    })
    .await;
    let conn = fx.device(2, 0).await;
    let (a, b) = (content(21, 800_000), content(22, 800_000));
    let (ann_a, ann_b) = (announcement(&a, T0), announcement(&b, T0));
    conn.announce_recording(ann_a.clone())
        .await
        .expect("announced");
    conn.announce_recording(ann_b.clone())
        .await
        .expect("announced");
    let half = |id| UploadHeader {
        recording_id: id,
        offset: 0,
        length: 600_000,
    };
    let first = conn
        .upload_chunk(half(ann_a.recording_id), &a[..600_000])
        .await;
    assert!(matches!(first, Ok(UploadReply::Offset(_))));
    let over = conn
        .upload_chunk(half(ann_b.recording_id), &b[..600_000])
        .await;
    let over = refusal(over.expect_err("over the quota"));
    assert_eq!(over.code, ErrorCode::StagingQuotaExceeded, "{over}");
    assert!(over.message.contains("600000"), "{over}");
    let rest = upload_from(&conn, ann_a.recording_id, &a, 600_000, 1 << 20).await;
    assert!(matches!(rest, Ok(UploadReply::Stored(_))));
    let b_done = upload_from(&conn, ann_b.recording_id, &b, 0, 1 << 20).await;
    assert!(matches!(b_done, Ok(UploadReply::Stored(_))));
    fx.gw.gateway.shutdown().await;
}

/// A partial upload nobody has written for `media.staging_max_age_hours` is removed
/// by the sweep and counted, and its recording starts over; a younger one stays.
#[tokio::test]
async fn abandoned_staging_files_are_removed_after_their_age() {
    let fx = Fixture::start_with(&Backend::Sqlite, |c| {
        c.media.staging_max_age_hours = 24;
        c.media.staging_sweep_secs = 1;
    })
    .await;
    let conn = fx.device(2, 0).await;
    let mut staged = Vec::new();
    for (seed, age_hours) in [(31, 25), (32, 23)] {
        let bytes = content(seed, 300_000);
        let ann = announcement(&bytes, T0);
        conn.announce_recording(ann.clone())
            .await
            .expect("announced");
        let header = UploadHeader {
            recording_id: ann.recording_id,
            offset: 0,
            length: 100_000,
        };
        conn.upload_chunk(header, &bytes[..100_000])
            .await
            .expect("chunk");
        // Last written `age_hours` before the gateway's clock.
        let path = fx.state().media.staging_path(ann.recording_id);
        let at = std::time::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(T0 - age_hours * H).unwrap());
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(at))
            .expect("file time set");
        staged.push((ann.recording_id, path));
    }
    let removed = fx.state().recording_metrics.staging_removed.clone();
    assert!(
        eventually(WAIT, || {
            let removed = removed.clone();
            async move { removed.get() == 1 }
        })
        .await,
        "the sweep removed the old file"
    );
    let (old, old_path) = &staged[0];
    let (young, young_path) = &staged[1];
    assert!(!old_path.exists() && young_path.exists());
    assert_eq!(conn.upload_offset(*old).await.unwrap().offset, 0);
    assert_eq!(conn.upload_offset(*young).await.unwrap().offset, 100_000);
    let (device, _) = fx.gw.device(2);
    assert_eq!(
        fx.state().store.staging_bytes(&device).await.unwrap(),
        100_000
    );
    fx.gw.gateway.shutdown().await;
}

/// Device `n` announces and uploads a recording of `len` bytes, in 1 MiB chunks.
async fn upload_whole(fx: &Fixture, n: u32, len: usize) -> Result<UploadReply, agent::ClientError> {
    let bytes = content(u64::from(n) * 1000 + len as u64, len);
    let ann = announcement(&bytes, T0);
    let conn = fx.device(n, 0).await;
    conn.announce_recording(ann.clone()).await?;
    upload_from(&conn, ann.recording_id, &bytes, 0, 1 << 20).await
}

/// `/metrics` counts `n` upload refusals for `reason`.
async fn assert_refusals(fx: &Fixture, reason: &str, n: u64) {
    let metrics = fx.gw.metrics_text().await;
    let line = format!("fieldsync_upload_refusals_total{{reason=\"{reason}\"}} {n}");
    assert!(metrics.contains(&line), "no `{line}` in {metrics}");
}
