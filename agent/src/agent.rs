//! [`Agent`]: one device's agent — its identity, configuration, local store and clock
//! — with the operations the CLI and `loadtest` call: record, check an identity,
//! connect, sync, report status.
//!
//! An agent does not own a socket: [`Agent::connect`] binds one for a CLI process,
//! while [`Agent::connect_via`] and [`Agent::sync_once`] work on a shared
//! [`GatewayEndpoint`] and an open [`GatewayConnection`], so one process can run
//! thousands of agents over one quinn endpoint.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use protocol::message::RecordContent;
use protocol::{CloseCode, DeviceId};

use crate::config::{AgentConfig, split_host_port};
use crate::discovery::{self, DiscoveryError};
use crate::enroll::{self, EnrollError};
use crate::identity::{DeviceIdentity, IdentityError};
use crate::outbox::records::{QueuedRecord, RecordError};
use crate::outbox::state::ClaimError;
use crate::outbox::{Outbox, StoreError};
use crate::transport::{ClientError, GatewayConnection, GatewayEndpoint};
use clock::{SharedClock, SystemClock};

/// The agent's software version, sent in the hello.
pub const AGENT_VERSION: &str = concat!("fieldsync-agent/", env!("CARGO_PKG_VERSION"));

/// Why an agent cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No identity, or an unusable one.
    #[error(transparent)]
    Enroll(#[from] EnrollError),
    /// The certificate names no device.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The data folder belongs to another device.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the gateway could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The configured address does not resolve.
    #[error("cannot resolve the gateway address {address}: {message}")]
    Resolve {
        /// The configured address.
        address: String,
        /// Why.
        message: String,
    },
    /// No address is configured and mDNS found no gateway.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The handshake did not finish in time.
    #[error("the gateway at {0} did not answer within the connect timeout")]
    Timeout(SocketAddr),
    /// The connection failed (TLS, refusal, network).
    #[error("cannot connect to the gateway at {addr}: {source}")]
    Client {
        /// The address tried.
        addr: SocketAddr,
        /// The cause.
        source: ClientError,
    },
}

impl ConnectError {
    /// The close code when the gateway refused this device.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            ConnectError::Client { source, .. } => source.close_code(),
            _ => None,
        }
    }
}

/// Where to reach the gateway and the name its certificate must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayTarget {
    /// Addresses to try, in order.
    pub addrs: Vec<SocketAddr>,
    /// The TLS server name.
    pub server_name: String,
}

/// A connection with the endpoint it owns (from [`Agent::connect`]).
pub struct Session {
    /// The UDP endpoint.
    pub endpoint: GatewayEndpoint,
    /// The connection.
    pub conn: GatewayConnection,
}

impl Session {
    /// Closes the connection and waits (briefly) until the close reached the gateway,
    /// so it does not wait for an idle timeout to forget this device's connection.
    pub async fn close(self) {
        self.conn.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.endpoint.wait_idle())
            .await;
    }
}

/// One device's agent.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    config: AgentConfig,
    identity: DeviceIdentity,
    device: DeviceId,
    outbox: Outbox,
    clock: SharedClock,
}

impl Agent {
    /// Opens the agent of `data_dir` with its installed identity and the system clock.
    pub async fn open(data_dir: &Path, config: AgentConfig) -> Result<Self, OpenError> {
        let identity = enroll::load(data_dir)?;
        Self::open_with(data_dir, config, identity, Arc::new(SystemClock)).await
    }

    /// Opens an agent with a given identity and clock (simulators and tests: the
    /// identity need not be installed in the folder).
    pub async fn open_with(
        data_dir: &Path,
        config: AgentConfig,
        identity: DeviceIdentity,
        clock: SharedClock,
    ) -> Result<Self, OpenError> {
        Self::open_with_connections(
            data_dir,
            config,
            identity,
            clock,
            crate::outbox::DEFAULT_CONNECTIONS,
        )
        .await
    }

    /// [`Agent::open_with`] with at most `store_connections` SQLite connections to
    /// its local store: `loadtest` runs thousands of agents in one process, and each
    /// connection holds two file descriptors and a thread.
    pub async fn open_with_connections(
        data_dir: &Path,
        config: AgentConfig,
        identity: DeviceIdentity,
        clock: SharedClock,
        store_connections: u32,
    ) -> Result<Self, OpenError> {
        let device = identity.device_id()?;
        let outbox =
            Outbox::open_with_connections(data_dir, device.clone(), store_connections).await?;
        outbox.claim_device().await?;
        Ok(Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_owned(),
                config,
                identity,
                device,
                outbox,
                clock,
            }),
        })
    }

    /// The device this agent speaks for.
    pub fn device_id(&self) -> &DeviceId {
        &self.inner.device
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.inner.config
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The device identity.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.inner.identity
    }

    /// The local store.
    pub fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    /// Device time now.
    pub fn now(&self) -> protocol::Millis {
        self.inner.clock.now()
    }

    /// Adds a field record: validated against the gateway's last announced limits,
    /// sealed into the chain and committed to disk before this returns.
    pub async fn record(&self, content: RecordContent) -> Result<QueuedRecord, RecordError> {
        let limits = self.outbox().limits().await?;
        self.outbox().record(content, &limits, self.now()).await
    }

    /// Where the gateway is: the configured address, or mDNS discovery.
    pub async fn locate(&self) -> Result<GatewayTarget, ConnectError> {
        let config = self.config();
        if let Some(address) = &config.gateway {
            let resolve = |message: String| ConnectError::Resolve {
                address: address.clone(),
                message,
            };
            let (host, _) = split_host_port(address).map_err(resolve)?;
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(address.as_str())
                .await
                .map_err(|e| resolve(e.to_string()))?
                .collect();
            if addrs.is_empty() {
                return Err(resolve("no addresses".into()));
            }
            return Ok(GatewayTarget {
                addrs,
                server_name: config.server_name.clone().unwrap_or(host),
            });
        }
        let ca = self.identity().ca_fingerprint().unwrap_or_default();
        let found = discovery::discover(&ca, config.discovery_timeout()).await?;
        tracing::info!(host = %found.host, addrs = ?found.addrs, "gateway found by mDNS");
        Ok(GatewayTarget {
            addrs: found.addrs,
            server_name: config.server_name.clone().unwrap_or(found.host),
        })
    }

    /// Finds the gateway and connects from a new endpoint (one per CLI process).
    pub async fn connect(&self) -> Result<Session, ConnectError> {
        let target = self.locate().await?;
        let mut last = None;
        for addr in &target.addrs {
            let endpoint = GatewayEndpoint::bind(*addr).map_err(|source| ConnectError::Client {
                addr: *addr,
                source,
            })?;
            match self
                .connect_via(&endpoint, *addr, &target.server_name)
                .await
            {
                Ok(conn) => return Ok(Session { endpoint, conn }),
                Err(e) if e.close_code().is_some_and(CloseCode::is_refusal) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("locate returns at least one address"))
    }

    /// Connects over a shared endpoint to `addr`, authenticating the gateway as
    /// `server_name` against the fleet CA, within the connect timeout.
    pub async fn connect_via(
        &self,
        endpoint: &GatewayEndpoint,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<GatewayConnection, ConnectError> {
        let settings = self.config().transport();
        let attempt = endpoint.connect(addr, server_name, self.identity(), &settings);
        match tokio::time::timeout(self.config().connect_timeout(), attempt).await {
            Err(_) => Err(ConnectError::Timeout(addr)),
            Ok(Err(source)) => Err(ConnectError::Client { addr, source }),
            Ok(Ok(conn)) => Ok(conn),
        }
    }
}
