//! The operator listener: `/metrics` for Prometheus and `/healthz` for load balancers.
//! (The admin API and pages join it in their own issue.)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
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
    /// A non-loopback address without TLS.
    #[error(
        "http.listen = {0} is not a loopback address; the operator listener serves plain HTTP \
         and must stay on loopback (127.0.0.1 or ::1)"
    )]
    NotLoopback(SocketAddr),
}

/// The router of the operator listener.
pub fn router(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<GatewayState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Binds the operator listener (loopback only while it speaks plain HTTP).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, HttpError> {
    if !addr.ip().is_loopback() {
        return Err(HttpError::NotLoopback(addr));
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}
