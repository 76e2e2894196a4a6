//! The operator listener against slow and silent clients (issue 19, point 5): 500
//! half-sent requests and 500 silent TLS connections are held while a real request is
//! answered, then closed by their timers; the caps on connections in total and per
//! client hold while other clients carry on; a trickled body and an idle connection end
//! at their own timers.
//!
//! Attackers connect from other loopback addresses (127.0.0.2 and up) than the honest
//! client (127.0.0.1), as they would from other hosts. What is asserted is what the
//! listener did (closed, refused, counted), never how long it took.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use gateway::config::HttpTls;
use test_support::{Backend, TestGateway, eventually, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Bounds the waits of these tests (a hung listener fails them instead of hanging).
const PATIENCE: Duration = Duration::from_secs(120);

/// Each test holds a thousand sockets or more (both ends are in this process).
fn enough_file_descriptors() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < 4096) {
        let raised = Rlimit {
            current: limit.maximum.map(|max| max.min(8192)),
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).expect("raise RLIMIT_NOFILE");
    }
}

async fn start(configure: impl FnOnce(&mut gateway::Config)) -> TestGateway {
    enough_file_descriptors();
    let data = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(data.path(), &Backend::Sqlite, 1);
    configure(&mut config);
    TestGateway::start_with(config, data, Arc::new(clock::SystemClock)).await
}

/// A connection from `127.0.0.{host}`.
async fn connect_from(host: u8, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))
        .unwrap();
    socket.connect(to).await.expect("TCP connect")
}

/// `count` connections spread over the hosts `hosts` (round robin).
async fn connect_many(
    count: usize,
    hosts: std::ops::RangeInclusive<u8>,
    to: SocketAddr,
) -> Vec<TcpStream> {
    let hosts: Vec<u8> = hosts.collect();
    let mut streams = Vec::with_capacity(count);
    for n in 0..count {
        streams.push(connect_from(hosts[n % hosts.len()], to).await);
    }
    streams
}

/// Waits until the listener has closed `stream` (end of file or reset).
async fn closed_by_listener(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            // A reply (a 408 or 431) before the close is allowed; keep reading.
            Ok(_) => continue,
        }
    }
}

/// Waits until the listener has closed every stream; returns how many it closed.
async fn all_closed(streams: &mut [TcpStream]) -> usize {
    let closing = streams.iter_mut().map(closed_by_listener);
    let closed = tokio::time::timeout(PATIENCE, futures::future::join_all(closing))
        .await
        .expect("the listener closes every connection");
    closed.into_iter().filter(|c| *c).count()
}

/// A plain GET from 127.0.0.1; `None` when the listener closed without a reply.
async fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = connect_from(1, addr).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("the listener answers or closes")
        .ok()?;
    (!response.is_empty()).then(|| String::from_utf8_lossy(&response).into_owned())
}

/// The gateway's metrics, read in-process (a request for them would need a place
/// under the caps these tests fill).
fn metrics_of(gw: &TestGateway) -> String {
    gw.gateway.state().metrics.render()
}

/// The value of a metric line that starts with `name` (labels included) in `text`.
fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

const OPEN: &str = "fieldsync_http_connections_open";

fn timed_out(reason: &str) -> String {
    format!("fieldsync_http_connections_timed_out_total{{reason=\"{reason}\"}}")
}

fn refused(reason: &str) -> String {
    format!("fieldsync_http_connections_refused_total{{reason=\"{reason}\"}}")
}

#[tokio::test]
async fn half_sent_requests_are_held_while_a_real_request_is_answered_then_closed_by_the_header_timer()
 {
    let gw = start(|config| {
        config.http.header_read_timeout_secs = 5;
        config.http.idle_timeout_secs = 3600;
        config.http.request_timeout_secs = 3600;
    })
    .await;
    let addr = gw.gateway.http_addr();
    // 500 slowloris connections from ten hosts, each within its per-client cap.
    let mut attack = connect_many(500, 2..=11, addr).await;
    for stream in &mut attack {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .await
            .unwrap();
    }

    let answered = get(addr, "/metrics")
        .await
        .expect("a real request is answered");
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    // Every half-sent request was still held while this one was answered.
    assert_eq!(metric(&answered, OPEN), 501, "{answered}");

    assert_eq!(all_closed(&mut attack).await, 500);
    let after = metrics_of(&gw);
    assert_eq!(metric(&after, &timed_out("header_timeout")), 500, "{after}");
    assert!(eventually(PATIENCE, || async { metric(&metrics_of(&gw), OPEN) == 0 }).await);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn silent_tls_connections_are_held_while_a_real_request_is_answered_then_time_out() {
    let gw = start(|config| {
        config.http.tls = HttpTls::Always;
        config.http.tls_handshake_timeout_secs = 5;
    })
    .await;
    let addr = gw.gateway.http_addr();
    // 500 connections that never send a ClientHello.
    let mut attack = connect_many(500, 2..=11, addr).await;

    let token = pki::load_admin_token(&gw.pki_dir()).unwrap();
    let answered = super::tls::https_get(&gw, "/metrics", &token).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert_eq!(metric(&answered, OPEN), 501, "{answered}");

    assert_eq!(all_closed(&mut attack).await, 500);
    let after = metrics_of(&gw);
    assert_eq!(
        metric(&after, &timed_out("handshake_timeout")),
        500,
        "{after}"
    );
    assert!(eventually(PATIENCE, || async { metric(&metrics_of(&gw), OPEN) == 0 }).await);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn the_caps_hold_in_total_and_per_client_and_a_closed_connection_gives_its_place_back() {
    let gw = start(|config| {
        config.http.max_connections = 32;
        config.http.max_connections_per_client = 8;
        config.http.header_read_timeout_secs = 3600;
    })
    .await;
    let addr = gw.gateway.http_addr();

    // One host opens 20 silent connections: 8 are held, 12 are closed at once, and
    // another client is answered.
    let mut greedy = connect_many(20, 2..=2, addr).await;
    let held_and_refused = eventually(PATIENCE, || async {
        let text = metrics_of(&gw);
        metric(&text, &refused("per_client")) == 12 && metric(&text, OPEN) == 8
    })
    .await;
    assert!(held_and_refused, "{}", metrics_of(&gw));
    let answered = get(addr, "/healthz")
        .await
        .expect("another client is answered");
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    let (refused_now, held): (Vec<_>, Vec<_>) = {
        let mut outcomes = Vec::new();
        for mut stream in greedy.drain(..) {
            // A refused connection is already closed; a held one reads nothing yet.
            let mut byte = [0u8; 1];
            let closed = matches!(
                tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await,
                Ok(Ok(0) | Err(_))
            );
            outcomes.push((closed, stream));
        }
        outcomes.into_iter().partition(|(closed, _)| *closed)
    };
    assert_eq!((refused_now.len(), held.len()), (12, 8));

    // Three more hosts fill the listener: 8 + 24 = 32. A 33rd connection, from a host
    // with no connection at all, is closed at once, and so is an honest request.
    let _others = connect_many(24, 3..=5, addr).await;
    assert!(eventually(PATIENCE, || async { metric(&metrics_of(&gw), OPEN) == 32 }).await);
    let mut one_too_many = connect_from(6, addr).await;
    assert!(closed_by_listener(&mut one_too_many).await);
    assert_eq!(get(addr, "/healthz").await, None);

    // The greedy host gives up its connections: their places come back and the
    // honest client is answered again.
    drop(held);
    assert!(
        eventually(PATIENCE, || async {
            get(addr, "/healthz")
                .await
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        })
        .await
    );
    let text = metrics_of(&gw);
    assert!(metric(&text, &refused("total")) >= 2, "{text}");
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_trickled_body_ends_at_the_request_timer_and_a_quiet_connection_at_the_idle_timer() {
    let gw = start(|config| {
        config.http.header_read_timeout_secs = 3600;
        config.http.request_timeout_secs = 2;
        config.http.idle_timeout_secs = 2;
    })
    .await;
    let addr = gw.gateway.http_addr();

    // Headers complete, then one byte of a 100-byte sign-in form, then nothing.
    let mut trickle = connect_from(2, addr).await;
    trickle
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nt",
        )
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(PATIENCE, closed_by_listener(&mut trickle))
            .await
            .unwrap()
    );

    // A request answered on a kept-alive connection, then silence.
    let mut quiet = connect_from(3, addr).await;
    quiet
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut reply = vec![0u8; 4096];
    let n = quiet.read(&mut reply).await.unwrap();
    assert!(reply[..n].starts_with(b"HTTP/1.1 200"));
    assert!(
        tokio::time::timeout(PATIENCE, closed_by_listener(&mut quiet))
            .await
            .unwrap()
    );

    let text = metrics_of(&gw);
    assert_eq!(metric(&text, &timed_out("request_timeout")), 1, "{text}");
    assert_eq!(metric(&text, &timed_out("idle_timeout")), 1, "{text}");
    assert_eq!(metric(&text, &timed_out("header_timeout")), 0, "{text}");
    gw.gateway.shutdown().await;
}
