//! The operator listener: `/metrics` for Prometheus, `/healthz` for load balancers,
//! the admin API under `/api/v1` (see [`crate::api`]) and the dashboard pages (see
//! [`crate::pages`]). Plain HTTP on loopback;
//! TLS with the gateway's certificate on any other address (or always, when
//! configured), see [`crate::api::listener`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::GatewayState;

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
/// is given.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let stop = async move { shutdown.cancelled().await };
    match tls {
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        }
        Some(config) => {
            let listener = crate::api::listener::TlsListener::new(listener, config)?;
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        }
    }
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
/// [`crate::api::listener::needs_tls`]: plain HTTP only ever on loopback.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, HttpError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}
