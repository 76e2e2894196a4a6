//! The upload benchmark (issue 6): goodput of recordings through the real gateway
//! (mTLS QUIC, staging, fsync per chunk, SHA-256, rename, commit), over one upload and
//! over 16 concurrent uploads, as a ratio to a plain quinn bulk transfer of the same
//! bytes with the same certificates and transport settings, in the same run. A second
//! reference, the disk: the same bytes written in the same chunks to files in the
//! gateway's data folder, each chunk fsync'd, with no network — what durability alone
//! allows on this machine. The four network phases run in rounds (5 unless
//! `FIELDSYNC_BENCH_ROUNDS` says otherwise), interleaved, and each ratio is taken over
//! all rounds; the median of the rounds' own ratios is printed beside it.
//!
//! Not part of the suite (it asserts nothing about speed). Run with:
//!
//! ```text
//! FIELDSYNC_BENCH_MIB=1024 cargo nextest run --release -p gateway --test recordings \
//!     bench --run-ignored only --no-capture
//! ```

use std::sync::Arc;
use std::time::Instant;

use agent::transport::{TransportSettings, client_config};
use test_support::Backend;

use crate::support::{Fixture, H, T0, announcement, content, upload_like_agent};

/// A number from the environment variable `name`, else `default`.
fn from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
}

/// A size in MiB from the environment variable `name`, else `default`, in bytes.
fn mib_from_env(name: &str, default: usize) -> usize {
    from_env(name, default) << 20
}

/// Bytes of the first upload chunk (an agent's default, 16 MiB, unless
/// `FIELDSYNC_BENCH_CHUNK_MIB` says otherwise); later chunks grow by the agent's rule.
/// The disk reference writes and fsyncs in chunks of this size.
fn chunk() -> usize {
    let agent_default = agent::config::AgentConfig::default().upload_chunk_bytes;
    mib_from_env(
        "FIELDSYNC_BENCH_CHUNK_MIB",
        usize::try_from(agent_default >> 20).unwrap_or(16),
    )
}

/// Bytes in all (256 MiB unless `FIELDSYNC_BENCH_MIB` says otherwise).
fn total() -> usize {
    mib_from_env("FIELDSYNC_BENCH_MIB", 256)
}

/// CPU seconds this process has used (user + system, from `/proc/self/stat`, in the
/// kernel's 100 Hz ticks): with the wall time of a phase, how busy the 2 cores were.
/// (`loadtest::procstat` reads the same fields of another process; this test cannot
/// depend on the load-test crate, which depends on the gateway.)
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15 (1-based, in proc(5)).
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    ticks(14).unwrap_or(0.0) / 100.0 + ticks(15).unwrap_or(0.0) / 100.0
}

/// Wall and CPU time of a timed phase (setup before `start` is not counted in either).
struct Stopwatch {
    wall: Instant,
    cpu: f64,
}

impl Stopwatch {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    /// Prints the phase's wall and CPU time; returns its wall seconds.
    fn stop(self, name: &str) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        let used = cpu_seconds() - self.cpu;
        println!(
            "{name}: {wall:.2} s wall, {used:.2} CPU-s ({:.0} % of one core)",
            100.0 * used / wall
        );
        wall
    }
}

/// Uploads `count` recordings of `each` bytes at once, one device connection each.
async fn upload(fx: &Fixture, count: u32, each: usize, seed: u64) -> f64 {
    let mut jobs = Vec::new();
    for n in 0..count {
        let conn = fx.device(n % 16 + 1, 0).await;
        let bytes = content(seed + u64::from(n), each);
        let ann = announcement(&bytes, T0 - H);
        conn.announce_recording(ann.clone()).await.unwrap();
        jobs.push((conn, ann, bytes));
    }
    let started = Stopwatch::start();
    let uploads = jobs.iter().map(|(conn, ann, bytes)| async move {
        upload_like_agent(conn, ann.recording_id, bytes, chunk())
            .await
            .unwrap();
    });
    futures::future::join_all(uploads).await;
    started.stop(&format!("{count} upload(s)"))
}

/// The same bytes over plain quinn streams, read and discarded by the server.
async fn plain_quinn(fx: &Fixture, count: u32, each: usize) -> f64 {
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
    let mut jobs = Vec::new();
    for n in 0..count {
        let (_, identity) = fx.gw.device(n % 16 + 1);
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let cfg = client_config(&identity, &TransportSettings::default()).unwrap();
        let connecting = endpoint.connect_with(cfg, addr, "localhost").unwrap();
        let incoming = server.accept().await.unwrap();
        let (client, served) = tokio::join!(connecting, incoming);
        jobs.push((
            endpoint,
            client.unwrap(),
            served.unwrap(),
            content(5000 + u64::from(n), each),
        ));
    }
    let started = Stopwatch::start();
    let transfers = jobs.iter().map(|(_, client, served, bytes)| async move {
        let send = async {
            // Bidirectional, as the device listener allows no unidirectional streams.
            let (mut send, _recv) = client.open_bi().await.unwrap();
            send.write_all(bytes).await.unwrap();
            send.finish().unwrap();
        };
        let receive = async {
            let (_send, mut recv) = served.accept_bi().await.unwrap();
            let mut got = 0;
            while let Some(chunk) = recv.read_chunk(1 << 20, true).await.unwrap() {
                got += chunk.bytes.len();
            }
            got
        };
        let ((), got) = tokio::join!(send, receive);
        assert_eq!(got, bytes.len());
    });
    futures::future::join_all(transfers).await;
    started.stop(&format!("{count} plain quinn transfer(s)"))
}

/// The same bytes written to `count` files in `dir` at once, [`chunk`] at a time, each
/// chunk followed by `sync_data` (as the gateway's staging writer does).
async fn disk_writes(dir: &std::path::Path, count: u32, each: usize) -> f64 {
    // The bytes are made before the clock starts, as for the uploads.
    let files: Vec<_> = (0..count)
        .map(|n| {
            let path = dir.join(format!("disk-reference-{n}"));
            (path, content(9000 + u64::from(n), each))
        })
        .collect();
    let started = Stopwatch::start();
    let writers = files.into_iter().map(|(path, bytes)| {
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut file = std::fs::File::create(&path).unwrap();
            for chunk in bytes.chunks(chunk()) {
                file.write_all(chunk).unwrap();
                file.sync_data().unwrap();
            }
            drop(file);
            std::fs::remove_file(&path).unwrap();
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.unwrap();
    }
    started.stop(&format!("{count} file(s) written"))
}

/// Rounds of the four network phases (`FIELDSYNC_BENCH_ROUNDS`, 5 unless set). Why 5:
/// on this shared machine one binary's round ratios ranged from 0.54 to 0.88, and
/// 3-round figures still moved by ±0.08 from run to run.
fn rounds() -> u32 {
    u32::try_from(from_env("FIELDSYNC_BENCH_ROUNDS", 5))
        .unwrap_or(5)
        .max(1)
}

/// The median of the rounds' ratios (less moved than the sum by one disturbed round).
fn median(ratios: &[f64]) -> f64 {
    let mut sorted = ratios.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Wall seconds of one kind of phase, summed over the rounds.
#[derive(Default)]
struct Totals {
    one: f64,
    base_one: f64,
    sixteen: f64,
    base_sixteen: f64,
    /// Each round's ratios (plain / upload), 1 upload and 16 uploads.
    rounds_one: Vec<f64>,
    rounds_sixteen: Vec<f64>,
}

/// One upload phase and its plain quinn phase of the same size, plain first when
/// `plain_first`; returns (upload, plain) wall seconds.
async fn pair(fx: &Fixture, count: u32, each: usize, seed: u64, plain_first: bool) -> (f64, f64) {
    if plain_first {
        let plain = plain_quinn(fx, count, each).await;
        (upload(fx, count, each, seed).await, plain)
    } else {
        let uploaded = upload(fx, count, each, seed).await;
        (uploaded, plain_quinn(fx, count, each).await)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --run-ignored only --no-capture"]
async fn upload_goodput_against_plain_quinn() {
    let total = total();
    let fx = Fixture::start_with(&Backend::Sqlite, |c| c.pki.dev_devices = 16).await;
    let mib = |secs: f64| total as f64 / f64::from(1 << 20) / secs;
    // The machine is shared: its speed drifts within a run by more than the margin
    // measured. So the phases are interleaved in rounds, the order flipped every
    // round, and the ratio is taken over the summed times (the goodput of all rounds).
    let rounds = rounds();
    let mut sum = Totals::default();
    for round in 0..rounds {
        let seed = 1_000 * u64::from(round);
        let plain_first = round % 2 == 1;
        let (one, base_one) = pair(&fx, 1, total, seed + 100, plain_first).await;
        let (sixteen, base_sixteen) = pair(&fx, 16, total / 16, seed + 200, plain_first).await;
        println!(
            "round {}: 1 upload {:.2} × plain quinn, 16 uploads {:.2} ×",
            round + 1,
            base_one / one,
            base_sixteen / sixteen
        );
        sum.one += one;
        sum.base_one += base_one;
        sum.sixteen += sixteen;
        sum.base_sixteen += base_sixteen;
        sum.rounds_one.push(base_one / one);
        sum.rounds_sixteen.push(base_sixteen / sixteen);
    }
    let n = f64::from(rounds);
    let data_dir = fx.gw.config.data_dir.clone();
    let disk_one = disk_writes(&data_dir, 1, total).await;
    let disk_sixteen = disk_writes(&data_dir, 16, total / 16).await;
    println!(
        "{} MiB in 1 upload: {:.0} MiB/s; plain quinn {:.0} MiB/s; ratio {:.2} ({} rounds; \
         median round {:.2})",
        total >> 20,
        mib(sum.one / n),
        mib(sum.base_one / n),
        sum.base_one / sum.one,
        rounds,
        median(&sum.rounds_one)
    );
    println!(
        "{} MiB in 16 uploads: {:.0} MiB/s; plain quinn {:.0} MiB/s; ratio {:.2} ({} rounds; \
         median round {:.2})",
        total >> 20,
        mib(sum.sixteen / n),
        mib(sum.base_sixteen / n),
        sum.base_sixteen / sum.sixteen,
        rounds,
        median(&sum.rounds_sixteen)
    );
    println!(
        "disk alone (same chunks, fsync each): 1 file {:.0} MiB/s, 16 files {:.0} MiB/s; \
         uploads / disk {:.2} and {:.2}",
        mib(disk_one),
        mib(disk_sixteen),
        disk_one * n / sum.one,
        disk_sixteen * n / sum.sixteen
    );
    fx.gw.gateway.shutdown().await;
}
