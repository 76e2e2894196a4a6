//! Slowloris on the operator listener: connections that send the start of a request
//! and then one more header line every few seconds, never the blank line that ends
//! the headers. The gateway must close them on its header-read timer, turn away those
//! past its per-client cap at once, and keep answering its operators (the harness
//! reads `/metrics` from another address while the attack is on). Each client opens a
//! new connection as soon as the gateway closed its last one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{AttackCounts, HTTP_ATTACKER, pause};

/// Between two header lines of a held request: well inside the gateway's header-read
/// timeout, so only that timeout (not an idle timer) can end the request.
const DRIP: Duration = Duration::from_secs(2);
/// After the gateway closed a connection, before the next one.
const AGAIN: Duration = Duration::from_millis(500);

/// Starts `clients` slowloris clients against `http`.
pub fn spawn(
    http: SocketAddr,
    clients: usize,
    counts: Arc<AttackCounts>,
    stop: &watch::Sender<bool>,
) -> Vec<JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (counts, mut stop) = (counts.clone(), stop.subscribe());
            tokio::spawn(async move {
                while !*stop.borrow() {
                    match open(http).await {
                        Ok(stream) => {
                            AttackCounts::bump(&counts.slowloris_opened);
                            if hold(stream, &mut stop).await {
                                AttackCounts::bump(&counts.slowloris_closed);
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "slowloris: connect"),
                    }
                    if pause(&mut stop, AGAIN).await {
                        break;
                    }
                }
            })
        })
        .collect()
}

async fn open(http: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(HTTP_ATTACKER, 0))?;
    socket.connect(http).await
}

/// Holds one half-sent request until the gateway closes it (true) or `stop` (false).
async fn hold(mut stream: TcpStream, stop: &mut watch::Receiver<bool>) -> bool {
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: fieldsync\r\n")
        .await
        .is_err()
    {
        return true;
    }
    let mut buf = [0u8; 1024];
    let mut n = 0u64;
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                // Closed (or answered with an error page, then closed).
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            },
            () = tokio::time::sleep(DRIP) => {
                n += 1;
                let line = format!("X-Slow-{n}: 1\r\n");
                if stream.write_all(line.as_bytes()).await.is_err() {
                    return true;
                }
            }
            _ = stop.changed() => return false,
        }
    }
}
