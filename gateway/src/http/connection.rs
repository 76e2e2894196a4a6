//! One operator connection from accept to close: the TLS handshake within its timer,
//! then HTTP/1.1 with hyper's header-read timer, and a watcher that closes the
//! connection when a request or an idle spell lasts too long (see [`super::activity`]).
//!
//! `axum::serve` runs no timers at all, so a client that sends half a request holds
//! its connection for as long as it likes; this driver replaces it. HTTP/1.1 only:
//! the listener announces `http/1.1` over TLS, and HTTP/2 would bring streams and
//! frames of its own to bound for no gain on an operator console.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::activity::{Activity, GuardedBody, Overstay, Tracked};
use super::clients::Place;
use super::metrics::{Closed, HttpMetrics};
use crate::config::http::Timers;

/// The read buffer of one connection may grow to this (hyper's default is ~400 KiB):
/// request headers beyond it are refused with 431, and 512 connections hold at most
/// 32 MiB of it. A body is read through it in pieces, so no body is limited by it.
const MAX_BUFFER_BYTES: usize = 64 * 1024;

/// What every connection of one listener shares.
pub struct Listening {
    /// The routes.
    pub router: Router,
    /// TLS, when the listener speaks it.
    pub tls: Option<TlsAcceptor>,
    /// The timers.
    pub timers: Timers,
    /// Counters on `/metrics`.
    pub metrics: HttpMetrics,
    /// Cancelled when the gateway shuts down.
    pub shutdown: CancellationToken,
}

/// Serves one accepted connection until it ends; `place` is its share of the caps,
/// given back when this returns.
pub async fn run(listening: Arc<Listening>, stream: TcpStream, place: Place) {
    let _place = place;
    let peer = stream.peer_addr().ok();
    // Replies are written whole; Nagle would only hold their last segment back.
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    let io = Tracked::new(stream, activity.clone());
    let Some(acceptor) = &listening.tls else {
        return drive(&listening, io, activity).await;
    };
    let handshake = tokio::time::timeout(listening.timers.tls_handshake, acceptor.accept(io));
    let finished = tokio::select! {
        finished = handshake => finished,
        () = listening.shutdown.cancelled() => return,
    };
    match finished {
        Ok(Ok(tls)) => drive(&listening, tls, activity).await,
        Ok(Err(e)) => {
            tracing::debug!(?peer, error = %e, "operator TLS handshake failed");
            listening.metrics.closed(Closed::HandshakeFailed);
        }
        Err(_) => {
            tracing::debug!(?peer, "operator TLS handshake timed out");
            listening.metrics.closed(Closed::HandshakeTimeout);
        }
    }
}

/// HTTP/1.1 on `io` until the client or a timer ends it, or shutdown lets the request
/// in progress finish.
async fn drive<I>(listening: &Listening, io: I, activity: Arc<Activity>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let router = listening.router.clone();
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let guard = requests.begin_request();
        let call = router.clone().oneshot(request.map(axum::body::Body::new));
        async move {
            let response = call
                .await
                .unwrap_or_else(|never: Infallible| match never {});
            Ok::<_, Infallible>(response.map(|body| GuardedBody::new(body, guard)))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(listening.timers.header_read)
        .max_buf_size(MAX_BUFFER_BYTES);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let overstayed = activity.overstayed(listening.timers.request, listening.timers.idle);
    tokio::pin!(overstayed);
    let mut draining = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    if e.is_timeout() && !activity.kept_alive_unused() {
                        listening.metrics.closed(Closed::HeaderTimeout);
                    }
                    tracing::debug!(error = %e, "operator connection ended");
                }
                return;
            }
            why = &mut overstayed => {
                listening.metrics.closed(match why {
                    Overstay::Request => Closed::RequestTimeout,
                    Overstay::Idle => Closed::IdleTimeout,
                });
                tracing::debug!(?why, "operator connection closed by its timer");
                return;
            }
            () = listening.shutdown.cancelled(), if !draining => {
                // Finish the request in progress, take no other.
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
