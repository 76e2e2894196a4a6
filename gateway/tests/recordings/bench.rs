//! The upload benchmark (issue 6): goodput of 1 GiB of recordings through the real
//! gateway (mTLS QUIC, staging, fsync per chunk, SHA-256, rename, commit), over one
//! upload and over 16 concurrent uploads, as a ratio to a plain quinn bulk transfer of
//! the same bytes with the same TLS and transport settings, in the same run; and the
//! process's peak memory before and after, to show it does not grow with file size.
//!
//! Not part of the test suite (it asserts nothing about speed). Run with:
//!
//! ```text
//! cargo nextest run --release -p gateway --test recordings bench --run-ignored only --no-capture
//! ```

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use agent::transport::{TransportSettings, UploadReply, client_config};
use protocol::Sha256Hash;
use protocol::message::UploadHeader;
use sha2::Digest;
use test_support::Backend;
use tokio::io::{AsyncRead, ReadBuf};

use crate::support::{Fixture, H, T0, announcement};

/// The total size; `FIELDSYNC_BENCH_MIB` makes it smaller for a quick look.
fn total() -> u64 {
    std::env::var("FIELDSYNC_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1024)
        << 20
}
const CHUNK: u64 = 1 << 20;

/// Pseudo-random bytes made on the fly, so the client holds no file in memory.
struct Generated {
    x: u64,
    left: u64,
}

impl Generated {
    fn new(seed: u64, len: u64) -> Self {
        Self {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            left: len,
        }
    }

    fn sha256(seed: u64, len: u64) -> Sha256Hash {
        let mut g = Generated::new(seed, len);
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        while g.left > 0 {
            let n = g.fill(&mut buf);
            hasher.update(&buf[..n]);
        }
        Sha256Hash(hasher.finalize().into())
    }

    fn fill(&mut self, out: &mut [u8]) -> usize {
        let n = (out.len() as u64).min(self.left) as usize;
        for chunk in out[..n].chunks_mut(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            chunk.copy_from_slice(&self.x.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        n
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Uploads `count` recordings of `each` bytes at once (one device connection each).
async fn upload(fx: &Fixture, count: u32, each: u64, seed: u64) -> f64 {
    let mut conns = Vec::new();
    for n in 0..count {
        let conn = fx.device(n % 16 + 1, 0).await;
        let seed = seed + u64::from(n);
        let mut ann = announcement(&[], T0 - H);
        ann.size = each;
        ann.sha256 = Generated::sha256(seed, each);
        conn.announce_recording(ann.clone()).await.unwrap();
        conns.push((conn, ann, seed));
    }
    let started = Instant::now();
    // One task drives every upload (as the concurrent-upload test does); the clients'
    // work is generating bytes, which is cheap next to the gateway's.
    let uploads = conns.into_iter().map(|(conn, ann, seed)| async move {
        let mut source = Generated::new(seed, each);
        let mut offset = 0;
        loop {
            let length = CHUNK.min(each - offset);
            let header = UploadHeader {
                recording_id: ann.recording_id,
                offset,
                length,
            };
            match conn.upload_chunk(header, &mut source).await.unwrap() {
                UploadReply::Offset(o) => offset = o.offset,
                UploadReply::Stored(_) => return,
            }
        }
    });
    futures::future::join_all(uploads).await;
    started.elapsed().as_secs_f64()
}

/// The same bytes over plain quinn streams (same certificates, same transport
/// settings), read and discarded by the server.
async fn plain_quinn(fx: &Fixture, count: u32, each: u64) -> f64 {
    let config = &fx.gw.config;
    let pki = gateway::pki::prepare(&config.pki_dir(), false, 0, time::OffsetDateTime::now_utc())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .unwrap();
    tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let transport = gateway::endpoint::transport_config(&config.device, &config.limits).unwrap();
    let server = gateway::endpoint::bind(
        "127.0.0.1:0".parse().unwrap(),
        config.device.udp_receive_buffer,
        crypto,
        transport,
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let mut readers = Vec::new();
        for _ in 0..count {
            let conn = server.accept().await.unwrap().await.unwrap();
            readers.push(tokio::spawn(async move {
                let mut recv = conn.accept_uni().await.unwrap();
                let mut total = 0u64;
                while let Some(chunk) = recv.read_chunk(1 << 20, true).await.unwrap() {
                    total += chunk.bytes.len() as u64;
                }
                total
            }));
        }
        let mut total = 0;
        for r in readers {
            total += r.await.unwrap();
        }
        total
    });
    let mut clients = Vec::new();
    for n in 0..count {
        let (_, identity) = fx.gw.device(n % 16 + 1);
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let cfg = client_config(&identity, &TransportSettings::default()).unwrap();
        let conn = endpoint
            .connect_with(cfg, addr, "localhost")
            .unwrap()
            .await
            .unwrap();
        clients.push((endpoint, conn));
    }
    let started = Instant::now();
    let sends: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(n, (_, conn))| {
            let conn = conn.clone();
            tokio::spawn(async move {
                let mut send = conn.open_uni().await.unwrap();
                let mut source = Generated::new(1000 + n as u64, each);
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let got = source.fill(&mut buf);
                    if got == 0 {
                        break;
                    }
                    send.write_all(&buf[..got]).await.unwrap();
                }
                send.finish().unwrap();
                send.stopped().await.ok();
            })
        })
        .collect();
    for s in sends {
        s.await.unwrap();
    }
    let received = accept.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(received, u64::from(count) * each);
    elapsed
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --release --run-ignored only --no-capture"]
async fn upload_goodput_against_plain_quinn() {
    let fx = Fixture::start_with(&Backend::Sqlite, |c| {
        c.pki.dev_devices = 16;
        c.limits.max_recording_bytes = 2 * total();
    })
    .await;
    let mib = |secs: f64| total() as f64 / (1 << 20) as f64 / secs;
    let before = peak_rss_kib();
    let small = upload(&fx, 1, 64 << 20, 1).await;
    let after_small = peak_rss_kib();
    let one = upload(&fx, 1, total(), 100).await;
    let after_big = peak_rss_kib();
    let sixteen = upload(&fx, 16, total() / 16, 200).await;
    let base_one = plain_quinn(&fx, 1, total()).await;
    let base_sixteen = plain_quinn(&fx, 16, total() / 16).await;
    println!("upload 64 MiB once: {:.0} MiB/s", 64.0 / small);
    println!(
        "1 upload of 1 GiB:        {:.0} MiB/s; plain quinn {:.0} MiB/s; ratio {:.2}",
        mib(one),
        mib(base_one),
        base_one / one
    );
    println!(
        "16 uploads of 64 MiB:     {:.0} MiB/s; plain quinn {:.0} MiB/s; ratio {:.2}",
        mib(sixteen),
        mib(base_sixteen),
        base_sixteen / sixteen
    );
    println!(
        "peak RSS: {} KiB at start, {} KiB after a 64 MiB upload, {} KiB after a 1 GiB upload",
        before, after_small, after_big
    );
    fx.gw.gateway.shutdown().await;
}
