//! S3 checksums and aborted uploads (issue 20, point 4), against moto on loopback with
//! a small HTTP relay between the gateway and moto.
//!
//! The relay reads every request whole. For each that carries bytes (a PUT of an
//! object or of a part) it checks the `x-amz-checksum-sha256` header against the body,
//! as AWS S3 does, and answers `400 BadDigest` itself on a mismatch: moto (5.2, the
//! latest) stores the header's value without checking it, so without the relay a
//! changed part would simply be kept. When told to, the relay changes one byte of the
//! next part on its way, as a faulty network or proxy would. Everything else goes to
//! moto unchanged, so the multipart upload, its abort and the listing of pending
//! uploads are moto's own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use agent::transport::UploadReply;
use base64::Engine;
use sha2::Digest;
use test_support::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::s3::{BUCKET, s3_settings, start_moto};
use crate::support::{Fixture, H, T0, announcement, content, row, upload_from};

/// What the relay saw and what it is told to do.
#[derive(Default)]
struct Relay {
    /// Change one byte of the next part sent.
    corrupt_next_part: AtomicBool,
    /// Requests with a body whose checksum header matched it.
    verified: AtomicUsize,
    /// PUTs (objects or parts) that came without a checksum header.
    unchecked: AtomicUsize,
    /// Requests refused with BadDigest.
    refused: AtomicUsize,
    /// Multipart uploads aborted (DELETE …?uploadId=).
    aborts: AtomicUsize,
}

/// Starts the relay in front of moto on `moto_port`; its port.
async fn start_relay(moto_port: u16, relay: Arc<Relay>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let relay = relay.clone();
            tokio::spawn(async move {
                let _ = relay_one(client, moto_port, &relay).await;
            });
        }
    });
    port
}

/// Relays one request (the connection closes after its response).
async fn relay_one(mut client: TcpStream, moto_port: u16, relay: &Relay) -> std::io::Result<()> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let request_line = text.lines().next().unwrap_or_default().to_owned();
    let header = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).await?;
    let is_put = request_line.starts_with("PUT ");
    let is_part = is_put && request_line.contains("partNumber=");
    if request_line.starts_with("DELETE ") && request_line.contains("uploadId=") {
        relay.aborts.fetch_add(1, Ordering::SeqCst);
    }
    if is_part && relay.corrupt_next_part.swap(false, Ordering::SeqCst) {
        body[length / 2] ^= 0xff;
    }
    match header("x-amz-checksum-sha256") {
        Some(sent) if is_put => {
            let actual =
                base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
            if sent != actual {
                relay.refused.fetch_add(1, Ordering::SeqCst);
                let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>BadDigest</Code><Message>The SHA256 you specified did not match the calculated checksum.</Message></Error>";
                let reply = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
                return client.write_all(reply.as_bytes()).await;
            }
            relay.verified.fetch_add(1, Ordering::SeqCst);
        }
        None if is_put => {
            relay.unchecked.fetch_add(1, Ordering::SeqCst);
        }
        _ => {}
    }
    // To moto, asking it to close after answering, so the answer ends at its EOF.
    let mut server = TcpStream::connect(("127.0.0.1", moto_port)).await?;
    let head = text.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    server.write_all(head.as_bytes()).await?;
    server.write_all(&body).await?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    client.write_all(&answer).await
}

/// The multipart uploads moto still holds for the bucket (asked directly).
async fn pending_uploads(moto_port: u16) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", moto_port)).await.unwrap();
    let req = format!(
        "GET /{BUCKET}?uploads HTTP/1.1\r\nHost: 127.0.0.1:{moto_port}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    resp.matches("<Upload>").count()
}

#[tokio::test]
async fn every_part_carries_its_checksum_and_a_changed_part_aborts_the_upload() {
    let Some(moto) = start_moto().await else {
        eprintln!(
            "moto_server is not available (pip install 'moto[server]'): skipping the S3 test"
        );
        return;
    };
    let relay = Arc::new(Relay::default());
    let port = start_relay(moto.port, relay.clone()).await;
    let fx = Fixture::start_with(&Backend::Sqlite, |c| s3_settings(c, port)).await;
    let conn = fx.device(1, 0).await;
    // Two parts (8 MiB and the rest); the first is changed on its way.
    let big = content(53, (9 << 20) + 4321);
    let ann = announcement(&big, T0 - H);
    conn.announce_recording(ann.clone()).await.unwrap();
    relay.corrupt_next_part.store(true, Ordering::SeqCst);
    let err = upload_from(&conn, ann.recording_id, &big, 0, 1 << 20)
        .await
        .unwrap_err();
    let agent::ClientError::Refused(reply) = err else {
        panic!("expected a refusal")
    };
    assert!(reply.code.is_retryable(), "{reply}");
    assert_eq!(
        relay.refused.load(Ordering::SeqCst),
        1,
        "the changed part was refused"
    );
    assert_eq!(
        relay.aborts.load(Ordering::SeqCst),
        1,
        "the upload was aborted"
    );
    assert_eq!(
        pending_uploads(moto.port).await,
        0,
        "no part left in the bucket"
    );
    assert!(!row(&fx, ann.recording_id).await.is_stored());
    assert!(
        fx.state()
            .media
            .holds(&ann.sha256, ann.size)
            .await
            .unwrap()
            .is_none(),
        "nothing stored under the recording's name"
    );

    // The device asks again: every byte is still staged, and this time it arrives.
    let held = conn.upload_offset(ann.recording_id).await.unwrap();
    assert!(held.stored, "{held:?}");
    assert_eq!(
        fx.state().media.digest(&ann.sha256).await.unwrap(),
        ann.sha256
    );
    // A small recording goes up in one PUT, also with its checksum.
    let small = content(54, 50_000);
    let ann = announcement(&small, T0 - H);
    conn.announce_recording(ann.clone()).await.unwrap();
    let reply = upload_from(&conn, ann.recording_id, &small, 0, 50_000)
        .await
        .unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");
    assert_eq!(
        relay.unchecked.load(Ordering::SeqCst),
        0,
        "every PUT carried a checksum"
    );
    assert!(
        relay.verified.load(Ordering::SeqCst) >= 3,
        "two parts and one object verified: {}",
        relay.verified.load(Ordering::SeqCst)
    );
    assert_eq!(pending_uploads(moto.port).await, 0);
    fx.gw.gateway.shutdown().await;
}
