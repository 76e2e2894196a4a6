//! The S3 media backend against a real S3-compatible server on loopback: moto's server
//! mode (`pip install 'moto[server]'`; `.ci/run` installs it), started by the test on a
//! free port. Without `moto_server` on the PATH the test prints a notice and skips.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent::transport::UploadReply;
use test_support::{Backend, backends, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Fixture, H, T0, announcement, content, row, upload_from};

pub(crate) const BUCKET: &str = "fieldsync-media";

/// A moto server we started, stopped (by its pid) when dropped.
pub(crate) struct Moto {
    child: Child,
    pub(crate) port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_moto() -> Option<Moto> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto { child, port };
    let up = eventually(Duration::from_secs(30), || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    if !up {
        return None;
    }
    // Create the bucket (moto does not check signatures).
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let req = format!(
        "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.ok()?;
    resp.starts_with("HTTP/1.1 200").then_some(moto)
}

pub(crate) fn s3_settings(config: &mut gateway::Config, port: u16) {
    config.media.backend = "s3".into();
    config.media.s3_endpoint = format!("http://127.0.0.1:{port}");
    config.media.s3_bucket = BUCKET.into();
    config.media.s3_allow_http = true;
    config.media.s3_prefix = "fieldsync/".into();
    config.media.s3_access_key_id = "test".into();
    config.media.s3_secret_access_key = "test".into();
}

#[tokio::test]
async fn recordings_are_stored_in_an_s3_bucket_verified_and_kept_once() {
    let Some(moto) = start_moto().await else {
        eprintln!(
            "moto_server is not available (pip install 'moto[server]'): skipping the S3 test"
        );
        return;
    };
    for backend in backends().await {
        // A fresh prefix per backend run, so content stored by the first run is not
        // already in the bucket for the second.
        let fx = Fixture::start_with(&backend, |c| {
            s3_settings(c, moto.port);
            c.media.s3_prefix = format!("fieldsync-{}/", backend.name());
        })
        .await;
        assert_eq!(fx.state().media.backend(), "s3");
        let conn = fx.device(1, 0).await;
        // Larger than one multipart part, so it goes up in parts.
        let big = content(50, (9 << 20) + 12_345);
        let small = content(51, 70_000);
        for bytes in [&big, &small] {
            let ann = announcement(bytes, T0 - H);
            conn.announce_recording(ann.clone()).await.unwrap();
            let reply = upload_from(&conn, ann.recording_id, bytes, 0, 1 << 20)
                .await
                .unwrap();
            assert!(
                matches!(reply, UploadReply::Stored(_)),
                "{} {reply:?}",
                backend.name()
            );
            let media = &fx.state().media;
            assert_eq!(
                media.digest(&ann.sha256).await.unwrap(),
                ann.sha256,
                "read back from S3"
            );
            assert!(media.local_path(&ann.sha256).is_none());
            assert!(
                !media.staging_path(ann.recording_id).exists(),
                "staging is emptied"
            );
            let r = row(&fx, ann.recording_id).await;
            assert_eq!(
                r.storage_key.as_deref(),
                Some(format!("sha256/{}", ann.sha256).as_str())
            );
        }
        // Another device's recording of the same bytes is stored without a transfer.
        let other = fx.device(2, 0).await;
        let same = announcement(&small, T0 - H);
        let tracked = other.announce_recording(same.clone()).await.unwrap();
        assert!(tracked.stored, "content already in the bucket");
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn an_unreachable_bucket_is_an_error_and_the_upload_resumes_when_it_is_back() {
    let Some(moto) = start_moto().await else {
        eprintln!(
            "moto_server is not available (pip install 'moto[server]'): skipping the S3 test"
        );
        return;
    };
    let port = moto.port;
    // A bucket that does not exist: the final upload fails; nothing is reported stored.
    let fx = Fixture::start_with(&Backend::Sqlite, |c| {
        s3_settings(c, port);
        c.media.s3_bucket = "no-such-bucket".into();
    })
    .await;
    let conn = fx.device(1, 0).await;
    let bytes = content(52, 100_000);
    let ann = announcement(&bytes, T0 - H);
    conn.announce_recording(ann.clone()).await.unwrap();
    let err = upload_from(&conn, ann.recording_id, &bytes, 0, 60_000)
        .await
        .unwrap_err();
    let agent::ClientError::Refused(reply) = err else {
        panic!("expected a refusal")
    };
    assert_eq!(reply.code, protocol::ErrorCode::Internal);
    assert!(!row(&fx, ann.recording_id).await.is_stored());
    // Every byte is still held in staging: once the store works, no byte is resent.
    assert_eq!(
        conn.upload_offset(ann.recording_id)
            .await
            .map(|o| o.offset)
            .ok(),
        None,
        "the offset query retries the final step and fails the same way"
    );
    drop(conn);
    let (data, mut config) = fx.gw.stop().await;
    config.media.s3_bucket = BUCKET.into();
    let gw =
        test_support::TestGateway::start_with(config, data, std::sync::Arc::new(fx.clock.clone()))
            .await;
    let fx = Fixture {
        gw,
        clock: fx.clock,
    };
    let conn = fx.device(1, 0).await;
    let offset = conn.upload_offset(ann.recording_id).await.unwrap();
    assert!(
        offset.stored,
        "completed from the staging file without a resend"
    );
    assert_eq!(
        fx.state().media.digest(&ann.sha256).await.unwrap(),
        ann.sha256
    );
    fx.gw.gateway.shutdown().await;
}
