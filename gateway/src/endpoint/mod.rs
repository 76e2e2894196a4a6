//! The device endpoint: a quinn server with mutual TLS, transport limits sized for
//! thousands of mostly idle connections, Retry above a handshake rate, and the accept
//! loop that hands each connection to [`connection::serve`].

mod connection;
mod frames;
mod rate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::Limits;
use quinn::{IdleTimeout, TransportConfig, VarInt};

pub use rate::RateWindow;

use crate::config::DeviceListenerConfig;
use crate::state::GatewayState;

/// Why the endpoint cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The UDP socket cannot be bound.
    #[error("cannot listen for devices on UDP {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A transport setting is out of range.
    #[error("device listener setting: {0}")]
    Setting(String),
}

/// The QUIC transport settings for device connections.
///
/// Memory per idle connection is dominated by quinn's connection state and rustls's
/// session; windows are credit, not preallocated buffers, so they bound memory only
/// while data is in flight (see docs/configuration.md for the budget).
pub fn transport_config(
    device: &DeviceListenerConfig,
    limits: &Limits,
) -> Result<TransportConfig, EndpointError> {
    let mut t = TransportConfig::default();
    let idle = IdleTimeout::try_from(Duration::from_secs(device.idle_timeout_secs))
        .map_err(|e| EndpointError::Setting(format!("idle_timeout_secs: {e}")))?;
    t.max_idle_timeout(Some(idle));
    t.keep_alive_interval(Some(Duration::from_secs(device.keep_alive_secs)));
    t.max_concurrent_bidi_streams(VarInt::from_u32(limits.max_concurrent_streams));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.receive_window(VarInt::from_u32(device.receive_window));
    t.stream_receive_window(VarInt::from_u32(device.stream_receive_window));
    t.send_window(device.send_window);
    t.datagram_receive_buffer_size(None);
    Ok(t)
}

/// Binds the device endpoint, with the UDP receive buffer asked for (the kernel caps
/// it at `net.core.rmem_max`; the size obtained is logged).
pub fn bind(
    addr: SocketAddr,
    receive_buffer: u32,
    crypto: quinn::crypto::rustls::QuicServerConfig,
    transport: TransportConfig,
) -> Result<quinn::Endpoint, EndpointError> {
    let err = |source| EndpointError::Bind { addr, source };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(err)?;
    if addr.is_ipv6() {
        // Accept IPv4-mapped peers too when bound to [::], as std does not promise.
        let _ = socket.set_only_v6(false);
    }
    if receive_buffer > 0 {
        socket
            .set_recv_buffer_size(receive_buffer as usize)
            .map_err(err)?;
    }
    socket.bind(&addr.into()).map_err(err)?;
    let got = socket.recv_buffer_size().unwrap_or(0);
    tracing::debug!(asked = receive_buffer, got, "device socket receive buffer");
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport));
    let runtime = quinn::default_runtime()
        .ok_or_else(|| err(std::io::Error::other("no async runtime for quinn")))?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket.into(),
        runtime,
    )
    .map_err(err)
}

/// Accepts connections until shutdown; each is served on its own task.
pub async fn accept_loop(state: Arc<GatewayState>, endpoint: quinn::Endpoint) {
    let mut rate = RateWindow::default();
    let limit = state.config.device.retry_above_handshakes_per_sec;
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            () = state.shutdown.cancelled() => break,
        };
        let Some(incoming) = incoming else { break };
        let per_sec = rate.note(state.clock.now());
        if per_sec > limit && !incoming.remote_address_validated() && incoming.may_retry() {
            // Under load, make the client prove its address before we spend a
            // handshake on it.
            if incoming.retry().is_ok() {
                state.metrics.retries.inc();
            }
            continue;
        }
        let state = state.clone();
        state
            .tasks
            .clone()
            .spawn(connection::handle_incoming(state, incoming));
    }
    tracing::info!("device endpoint stopped accepting connections");
}
