//! Uploads under attack (issue 19, point 3): a device that trickles its bytes, stalls
//! mid-chunk or announces recordings without end is cut off or refused with a typed
//! code, holds no thread while it waits, and other devices' uploads complete.

use std::time::Duration;

use agent::transport::UploadReply;
use protocol::{ErrorCode, ResponseBody};
use test_support::{Backend, backends};

use crate::support::{
    Fixture, T0, announcement, content, read_reply, start_chunk, streamed_at_least, upload_from,
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
        let bytes = content(1, 3 << 20);
        let ann = announcement(&bytes, T0);
        let conn = fx.device(1, 0).await;
        // Announcing reads the staging file's offset: also work for the writer pool.
        let upload = async {
            conn.announce_recording(ann.clone()).await?;
            upload_from(&conn, ann.recording_id, &bytes, 0, 1 << 20).await
        };
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
        let honest = async {
            let bytes = content(1, 2 << 20);
            let ann = announcement(&bytes, T0);
            let conn = fx.device(1, 0).await;
            conn.announce_recording(ann.clone())
                .await
                .expect("announced");
            upload_from(&conn, ann.recording_id, &bytes, 0, 1 << 20).await
        };
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
        let metrics = fx.gw.metrics_text().await;
        assert!(
            metrics.contains("fieldsync_upload_refusals_total{reason=\"stalled\"} 1"),
            "{metrics}"
        );
        fx.gw.gateway.shutdown().await;
    }
}
