//! Connecting many simulated devices at once, with the `agent` library's transport.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use agent::transport::TransportSettings;
use agent::{ClientError, GatewayConnection, GatewayEndpoint};
use futures::StreamExt;

use crate::fleet::SimDevice;
use crate::stats::Stats;

/// Devices per client UDP socket: one quinn endpoint is driven by one task, so a very
/// large fleet is spread over several.
const DEVICES_PER_ENDPOINT: usize = 1_000;

/// How long one handshake may take before it counts as failed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The name on the gateway's certificate (development PKIs always include it).
pub const SERVER_NAME: &str = "localhost";

/// Opens device connections to one server.
pub struct Connector {
    endpoints: Vec<GatewayEndpoint>,
    server: SocketAddr,
    settings: TransportSettings,
}

impl Connector {
    /// Client endpoints for `devices` devices connecting to `server`.
    pub fn new(server: SocketAddr, devices: usize) -> Result<Self, ClientError> {
        let count = devices.div_ceil(DEVICES_PER_ENDPOINT).max(1);
        let endpoints = (0..count)
            .map(|_| GatewayEndpoint::bind(server))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            endpoints,
            server,
            settings: TransportSettings::default(),
        })
    }

    /// Connects device number `index` (the endpoint is chosen by index).
    pub async fn connect(
        &self,
        index: usize,
        device: &SimDevice,
    ) -> Result<GatewayConnection, ClientError> {
        let endpoint = &self.endpoints[index % self.endpoints.len()];
        endpoint
            .connect(self.server, SERVER_NAME, &device.identity, &self.settings)
            .await
    }

    /// Waits until every connection is closed.
    pub async fn wait_idle(&self) {
        for e in &self.endpoints {
            e.wait_idle().await;
        }
    }
}

/// What a connect phase achieved.
pub struct ConnectPhase {
    /// One slot per device: the connection, or `None` when it failed.
    pub connections: Vec<Option<GatewayConnection>>,
    /// Wall time from the first handshake started to the last one finished.
    pub wall: Duration,
    /// Handshakes that succeeded.
    pub connected: usize,
}

impl ConnectPhase {
    /// Completed handshakes per second of wall time.
    pub fn handshakes_per_sec(&self) -> f64 {
        self.connected as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Connects every device with at most `concurrency` handshakes in flight, recording
/// each handshake's latency as `op`.
pub async fn connect_all(
    connector: &Connector,
    fleet: &[SimDevice],
    concurrency: usize,
    stats: &Stats,
    op: &'static str,
) -> ConnectPhase {
    let started = Instant::now();
    let mut connections: Vec<Option<GatewayConnection>> = (0..fleet.len()).map(|_| None).collect();
    let mut results = futures::stream::iter(fleet.iter().enumerate())
        .map(|(i, device)| async move {
            let t = Instant::now();
            let result =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(i, device)).await;
            (i, t.elapsed(), result)
        })
        .buffer_unordered(concurrency.max(1));
    let mut connected = 0;
    while let Some((i, took, result)) = results.next().await {
        match result {
            Ok(Ok(conn)) => {
                stats.record(op, took);
                connections[i] = Some(conn);
                connected += 1;
            }
            Ok(Err(e)) => stats.error(format!("{op}: {e}")),
            Err(_) => stats.error(format!("{op}: timed out")),
        }
    }
    ConnectPhase {
        connections,
        wall: started.elapsed(),
        connected,
    }
}
