//! The `hostile` scenario's attackers (issue 19, point 7), run from the harness's own
//! process beside the honest fleet, each as tasks of its own:
//!
//! - [`flood`]: QUIC handshakes without a client certificate, as fast as a fixed number
//!   in flight allows;
//! - [`stolen`]: one enrolled device whose certificate was stolen, announcing
//!   recordings without end and holding upload chunks open with a trickle of bytes;
//! - [`slowloris`]: half-sent HTTP requests held on the operator listener.
//!
//! They speak from other loopback addresses than the honest devices (127.0.0.1): the
//! operator listener's caps count connections per client address, and an attacker on
//! the honest devices' address would be counted with them (and the harness's own
//! `/metrics` reads with it), which is not what an attacker on the internet looks like.
//! The device listener's caps key on the device (uploads, announcements) or are global
//! (the handshake rate that asks for a QUIC Retry), so the flood and the stolen device
//! may share an address.

pub mod flood;
pub mod slowloris;
pub mod stolen;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::transport::frames::{read_message, write_message};
use protocol::frame::FrameDecoder;
use protocol::{Request, RequestBody, Response, ResponseBody};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::runner::fleet_run::{Attack, AttackTarget};
use crate::scrape::{Scrape, scrape};

/// Where the device-side attackers (flood, stolen device) send from.
pub const DEVICE_ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Where the slowloris clients send from.
pub const HTTP_ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// Frames the attackers read and write (the protocol's default limit).
pub const MAX_FRAME: u32 = 1 << 20;

/// How hard each attacker pushes.
#[derive(Clone, Debug)]
pub struct AttackPlan {
    /// Handshakes without a certificate in flight at once.
    pub flood_in_flight: usize,
    /// Upload chunks the stolen device keeps open (more than the per-device cap, so
    /// that the cap is exercised).
    pub slow_uploads: usize,
    /// Half-sent requests held on the operator listener (more than the per-client cap).
    pub slowloris: usize,
}

/// What the attackers did, counted from their side.
#[derive(Debug, Default)]
pub struct AttackCounts {
    /// Handshakes without a certificate started.
    pub flood_attempts: AtomicU64,
    /// Of them, refused by the gateway (handshake failed or connection closed).
    pub flood_refused: AtomicU64,
    /// Of them, still open after the wait for the gateway's refusal: must stay 0.
    pub flood_admitted: AtomicU64,
    /// Of them, with no answer at all in time.
    pub flood_timed_out: AtomicU64,
    /// Connections the stolen device opened.
    pub stolen_connections: AtomicU64,
    /// Recordings the gateway accepted from the stolen device.
    pub announced: AtomicU64,
    /// Upload chunks the stolen device started.
    pub slow_chunks: AtomicU64,
    /// The stolen device's requests refused, by error code.
    pub stolen_refused: Mutex<BTreeMap<String, u64>>,
    /// Operator-listener connections the slowloris clients opened.
    pub slowloris_opened: AtomicU64,
    /// Of them, closed by the gateway (cap or timer).
    pub slowloris_closed: AtomicU64,
}

impl AttackCounts {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one refusal of the stolen device's with `code`.
    pub fn refused(&self, code: String) {
        *self
            .stolen_refused
            .lock()
            .expect("counts lock")
            .entry(code)
            .or_default() += 1;
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A read of `/metrics` taken while the attack was still on: the operator listener
/// must keep answering its operators during a slowloris.
#[derive(Clone, Debug)]
pub struct ScrapeUnderAttack {
    /// What it said, or why it failed.
    pub result: Result<Scrape, String>,
    /// How long it took.
    pub took: Duration,
}

/// The three attackers, started and stopped together by the fleet runner.
pub struct HostileAttack {
    plan: AttackPlan,
    /// What they did.
    pub counts: Arc<AttackCounts>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    http: Mutex<Option<SocketAddr>>,
    started: Mutex<Option<Instant>>,
    /// When they started and stopped.
    pub span: Mutex<Option<(Instant, Instant)>>,
    /// The read of `/metrics` taken just before they stopped.
    pub scrape_under_attack: Mutex<Option<ScrapeUnderAttack>>,
}

impl HostileAttack {
    /// Attackers following `plan`, not started.
    pub fn new(plan: AttackPlan) -> Self {
        Self {
            plan,
            counts: Arc::default(),
            stop: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            http: Mutex::new(None),
            started: Mutex::new(None),
            span: Mutex::new(None),
            scrape_under_attack: Mutex::new(None),
        }
    }

    /// How long the attack lasted (zero if it never ran).
    pub fn duration(&self) -> Duration {
        self.span
            .lock()
            .expect("span lock")
            .map_or(Duration::ZERO, |(a, b)| b - a)
    }
}

impl Attack for HostileAttack {
    fn stolen_devices(&self) -> usize {
        1
    }

    fn start(&self, target: AttackTarget) {
        let mut tasks = self.tasks.lock().expect("tasks lock");
        *self.started.lock().expect("start lock") = Some(Instant::now());
        *self.http.lock().expect("http lock") = target.http_addr;
        let counts = &self.counts;
        if let Some(device) = target.stolen.first() {
            tasks.push(tokio::spawn(flood::run(
                target.device_addr,
                device.identity.ca.clone(),
                self.plan.flood_in_flight,
                counts.clone(),
                self.stop.subscribe(),
            )));
            tasks.extend(stolen::spawn(
                target.device_addr,
                device.identity.clone(),
                self.plan.slow_uploads,
                counts.clone(),
                &self.stop,
            ));
        }
        if let Some(http) = target.http_addr {
            tasks.extend(slowloris::spawn(
                http,
                self.plan.slowloris,
                counts.clone(),
                &self.stop,
            ));
        }
    }

    fn stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let http = *self.http.lock().expect("http lock");
            if let Some(http) = http {
                let t = Instant::now();
                let result = scrape(http).await.map_err(|e| e.to_string());
                *self.scrape_under_attack.lock().expect("scrape lock") = Some(ScrapeUnderAttack {
                    result,
                    took: t.elapsed(),
                });
            }
            let _ = self.stop.send(true);
            let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
            for task in tasks {
                // Every attacker ends on the stop signal within a second or two; one
                // that does not is aborted rather than holding up the report.
                let abort = task.abort_handle();
                if tokio::time::timeout(Duration::from_secs(10), task)
                    .await
                    .is_err()
                {
                    abort.abort();
                }
            }
            let started = *self.started.lock().expect("start lock");
            if let Some(started) = started {
                *self.span.lock().expect("span lock") = Some((started, Instant::now()));
            }
        })
    }
}

/// Sleeps `d`, or less if `stop` turns true; returns whether to stop.
pub async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// A UDP socket on `from` (an ephemeral port), for a quinn client endpoint.
pub fn udp_socket_on(from: IpAddr) -> std::io::Result<std::net::UdpSocket> {
    std::net::UdpSocket::bind(SocketAddr::new(from, 0))
}

/// A quinn client endpoint sending from `from`.
pub fn client_endpoint(from: IpAddr) -> std::io::Result<quinn::Endpoint> {
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for quinn"))?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        udp_socket_on(from)?,
        runtime,
    )
}

/// Sends one request on a new stream and reads its reply.
pub async fn request(conn: &quinn::Connection, body: RequestBody) -> Result<ResponseBody, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    write_message(&mut send, &Request::new(body), MAX_FRAME)
        .await
        .map_err(|e| e.to_string())?;
    let _ = send.finish();
    match read_message::<Response>(&mut recv, FrameDecoder::new(MAX_FRAME)).await {
        Ok(Some(r)) => Ok(r.body),
        Ok(None) => Err("no reply".into()),
        Err(e) => Err(e.to_string()),
    }
}
