//! The operator listener: `/metrics` for Prometheus, `/healthz` for load balancers,
//! the admin API under `/api/v1` (see [`crate::api`]) and the dashboard pages (see
//! [`crate::pages`]). Plain HTTP on loopback;
//! TLS with the gateway's certificate on any other address (or always, when
//! configured), see [`tls`].
//!
//! The listener may face a LAN, so no client can hold it (issue 19, point 5): every
//! connection is counted against caps in total and per client from its accept
//! ([`clients`]), and timers bound the TLS handshake, the request headers, each request
//! and idle spells ([`connection`], [`activity`]).

pub mod activity;
pub mod clients;
pub mod connection;
pub mod metrics;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::config::HttpConfig;
use crate::state::GatewayState;
use clients::ConnectionCaps;
use connection::Listening;
use metrics::HttpMetrics;

/// Why the operator listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TCP socket cannot be bound.
    #[error("cannot listen for operators on TCP {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS configuration of the listener cannot be built.
    #[error("operator listener TLS: {0}")]
    Tls(String),
}

/// The router of the operator listener.
pub fn router(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state.clone())
        .merge(crate::api::router(state.clone()))
        .merge(crate::pages::router(state))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, over TLS when `tls`
/// is given, within the caps and timers of `settings`. On shutdown it stops
/// accepting, lets each connection finish the request it is answering, and returns
/// once every connection has ended.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    settings: &HttpConfig,
    metrics: &crate::metrics::Metrics,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let caps = ConnectionCaps::new(
        settings.max_connections,
        settings.max_connections_per_client,
    );
    let listening = Arc::new(Listening {
        router,
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        timers: settings.timers(),
        metrics: HttpMetrics::register(metrics),
        shutdown: shutdown.clone(),
    });
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: give closing connections a
                // moment instead of spinning.
                tracing::warn!(error = %e, "operator listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match caps.admit(peer.ip()) {
            Ok(place) => {
                let listening = listening.clone();
                listening.metrics.opened();
                connections.spawn(async move {
                    connection::run(listening.clone(), stream, place).await;
                    listening.metrics.ended();
                });
            }
            Err(refused) => {
                drop(stream);
                listening.metrics.refused(refused);
                tracing::debug!(%peer, %refused, "operator connection refused");
            }
        }
    }
    connections.close();
    connections.wait().await;
}

/// `ok`; `degraded: …` (still 200: it serves) while a storage alarm stands (see
/// [`crate::storage`]); `failed: …` with 503 once a storage failure stopped a component
/// (see [`crate::faults`]): a load balancer then sends devices to another gateway.
async fn healthz(State(state): State<Arc<GatewayState>>) -> impl IntoResponse {
    let halted = state.faults.halted();
    if !halted.is_empty() {
        let reasons: Vec<String> = halted.iter().map(ToString::to_string).collect();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failed: {}\n", reasons.join("; ")),
        );
    }
    let alarms = state.storage.alarms();
    if !alarms.is_empty() {
        return (StatusCode::OK, format!("degraded: {}\n", alarms.join("; ")));
    }
    (StatusCode::OK, "ok\n".to_owned())
}

async fn metrics(State(state): State<Arc<GatewayState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Binds the operator listener. Whether it then speaks TLS is decided by
/// [`crate::config::http::needs_tls`]: plain HTTP only ever on loopback.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, HttpError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}
