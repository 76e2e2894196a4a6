//! Assembles a gateway from its configuration and runs it until a shutdown future
//! completes: `run(config, shutdown)` (STYLE.md, "Shutdown you can test").

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::CloseCode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::endpoint::{self, EndpointError};
use crate::http::{self, HttpError};
use crate::jobs;
use crate::live::LiveConnections;
use crate::mdns::{self, MdnsError};
use crate::metrics::Metrics;
use crate::pki::{self, PkiSetupError};
use crate::state::GatewayState;
use crate::storage::Crossing;
use crate::tls::{self, TlsError};
use clock::{SharedClock, SystemClock};
use store::{Store, StoreError};

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The data folder cannot be made.
    #[error("cannot create data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The PKI cannot be used.
    #[error(transparent)]
    Pki(#[from] PkiSetupError),
    /// The store cannot be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// TLS cannot be configured.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The device endpoint cannot start.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The operator listener cannot start.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// mDNS cannot start.
    #[error(transparent)]
    Mdns(#[from] MdnsError),
    /// The bootstrap admin token cannot be stored.
    #[error("admin token: {0}")]
    AdminToken(#[from] store::OperatorTokenError),
    /// The media store cannot be opened.
    #[error("media store: {0}")]
    Media(#[from] media::MediaError),
}

/// A started gateway.
pub struct RunningGateway {
    state: Arc<GatewayState>,
    endpoint: quinn::Endpoint,
    device_addr: SocketAddr,
    http_addr: SocketAddr,
    background: Vec<JoinHandle<()>>,
    _mdns: Option<mdns::Advertisement>,
}

impl RunningGateway {
    /// Where devices connect (UDP).
    pub fn device_addr(&self) -> SocketAddr {
        self.device_addr
    }

    /// Where operators and Prometheus connect (TCP).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The shared state (store, metrics, live connections).
    pub fn state(&self) -> &Arc<GatewayState> {
        &self.state
    }

    /// Stops the gateway: refuse new connections, let in-flight requests finish (up to
    /// the grace period), close every connection with "going away", close the store.
    pub async fn shutdown(self) {
        let state = self.state.clone();
        tracing::info!("shutting down");
        self.endpoint.set_server_config(None);
        state.shutdown.cancel();
        state.tasks.close();
        let grace = Duration::from_secs(state.config.shutdown_grace_secs);
        if tokio::time::timeout(grace, state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish within {grace:?}");
        }
        // Every handler has finished: commit what is queued, then stop the committer.
        state.ingest.stop().await;
        state.live.close_all(CloseCode::GoingAway);
        state.connections.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            state.connections.wait().await;
            self.endpoint.wait_idle().await;
        })
        .await;
        for task in self.background {
            task.abort();
            let _ = task.await;
        }
        state.media.unlock();
        // What was refused since the last summary is written before the store closes.
        state.refusals.flush(&state.store, state.clock.now()).await;
        state.store.close().await;
        tracing::info!("gateway stopped");
    }
}

/// Starts a gateway with the system clock.
pub async fn start(config: Config) -> Result<RunningGateway, GatewayError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// Starts a gateway with the given clock (tests pass a manual one): [`prepare`] what
/// needs no port, then [`bind`] the sockets, then [`spawn`] the tasks. A gateway that
/// cannot open its PKI, store or media store fails before it holds any port.
pub async fn start_with_clock(
    config: Config,
    clock: SharedClock,
) -> Result<RunningGateway, GatewayError> {
    let prepared = prepare(config, clock).await?;
    let bound = bind(&prepared).await?;
    Ok(spawn(prepared, bound))
}

/// What a gateway has before it binds a port: its configuration and clock, the PKI,
/// the open store (development devices enrolled, the admin token seeded), the media
/// store holding its staging folder, and the metrics registry.
struct Prepared {
    config: Config,
    clock: SharedClock,
    pki: pki::GatewayPki,
    store: Store,
    media: Arc<media::MediaStore>,
    metrics: Metrics,
}

/// Makes the data folder, loads (or makes) the PKI, opens the store and the media
/// store. Binds nothing.
async fn prepare(config: Config, clock: SharedClock) -> Result<Prepared, GatewayError> {
    durable::files::private_dir(&config.data_dir).map_err(|source| GatewayError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let now_utc =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(clock.now()) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let pki_dir = config.pki_dir();
    let gateway_pki = pki::prepare(
        &pki_dir,
        config.pki.auto_dev_pki,
        config.pki.dev_devices,
        now_utc,
    )?;
    let store = Store::open(&config.store_config()).await?;
    if gateway_pki.made_now {
        let file = gateway_pki.enrollment_file();
        let reader = std::fs::File::open(&file).map_err(|source| GatewayError::DataDir {
            path: file.clone(),
            source,
        })?;
        let summary = store
            .import_enrollment(reader, None, "gateway (development PKI)", clock.now())
            .await?;
        tracing::info!(?summary, file = %file.display(), "enrolled the development devices");
    }
    crate::api::bootstrap::seed_admin_token(&store, &pki_dir, clock.now()).await?;
    let media = Arc::new(media::MediaStore::open(&config.media, &config.data_dir)?);
    Ok(Prepared {
        config,
        clock,
        pki: gateway_pki,
        store,
        media,
        metrics: Metrics::new(),
    })
}

/// The gateway's sockets: the QUIC endpoint for devices, the TCP listener for
/// operators (with its TLS configuration when it needs one), and the mDNS
/// advertisement of the device port.
struct Bound {
    quic: quinn::Endpoint,
    device_addr: SocketAddr,
    listener: tokio::net::TcpListener,
    http_addr: SocketAddr,
    http_tls: Option<Arc<rustls::ServerConfig>>,
    advertisement: Option<mdns::Advertisement>,
}

/// Binds the device endpoint and the operator listener, and advertises over mDNS when
/// configured. Starts no task.
async fn bind(prepared: &Prepared) -> Result<Bound, GatewayError> {
    let Prepared {
        config, clock, pki, ..
    } = prepared;
    let crypto = tls::server_crypto(
        &pki.ca,
        pki.chain.clone(),
        pki.key.clone_key(),
        clock.clone(),
    )?;
    let transport = endpoint::transport_config(&config.device, &config.limits)?;
    let quic = endpoint::bind(
        config.device.listen,
        config.device.udp_receive_buffer,
        crypto,
        transport,
    )?;
    let device_addr = quic.local_addr().map_err(|source| EndpointError::Bind {
        addr: config.device.listen,
        source,
    })?;
    let listener = http::bind(config.http.listen).await?;
    let http_addr = listener.local_addr().map_err(|source| HttpError::Bind {
        addr: config.http.listen,
        source,
    })?;
    let http_tls = if crate::config::http::needs_tls(http_addr, config.http.tls) {
        let tls = http::tls::server_config(pki.chain.clone(), pki.key.clone_key())
            .map_err(|e| HttpError::Tls(e.to_string()))?;
        Some(tls)
    } else {
        None
    };
    let advertisement = if config.mdns.enabled {
        Some(mdns::advertise(
            &config.mdns,
            device_addr.port(),
            &pki.ca_fingerprint,
        )?)
    } else {
        None
    };
    Ok(Bound {
        quic,
        device_addr,
        listener,
        http_addr,
        http_tls,
        advertisement,
    })
}

/// Builds the shared state (the committer, the storage watch and the recording
/// metrics with it) and spawns every task: the device accept loop, the background
/// jobs and the operator listener.
fn spawn(prepared: Prepared, bound: Bound) -> RunningGateway {
    let Prepared {
        config,
        clock,
        pki: gateway_pki,
        store,
        media,
        metrics,
    } = prepared;
    let pki_dir = gateway_pki.dir.clone();
    let recording_metrics = crate::deadlines::RecordingMetrics::register(&metrics);
    let faults = Arc::new(crate::faults::StorageFaults::register(&metrics));
    let storage = Arc::new(crate::storage::StorageWatch::new(
        config.storage.clone(),
        watched_folders(&config),
        &metrics,
    ));
    // Measured once before serving, so /metrics and /healthz are right from the start.
    let first_crossings = storage.check();
    let rules = store::IngestRules {
        two_officer: config.policy.two_officer.clone(),
        action_kinds: config.policy.action_kinds.clone(),
        clock: config.policy.clock,
        tamper_flags_per_device: config.ingest.tamper_flags_per_device,
    };
    // Registry changes and the review job judge flags by the rules ingest applies.
    store.use_rules(rules.clone());
    let ingest = crate::ingest::Committer::start(
        store.clone(),
        rules,
        clock.clone(),
        crate::ingest::RecordMetrics::register(&metrics),
        crate::ingest::IngestSettings::from(&config.ingest),
        faults.clone(),
        storage.clone(),
    );
    let device_rules = config.device_rules();
    let refusals = Arc::new(crate::refusals::RefusalLog::new(
        config.device.refusal_audit_samples,
    ));
    let state = Arc::new(GatewayState {
        device_rules_digest: device_rules.digest(),
        device_rules,
        config,
        store,
        metrics,
        ingest,
        media,
        recording_metrics,
        faults,
        storage,
        live: Arc::new(LiveConnections::default()),
        refusals,
        clock,
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        connections: TaskTracker::new(),
    });
    let router = http::router(state.clone());
    let http_shutdown = state.shutdown.clone();
    let (listener, http_tls) = (bound.listener, bound.http_tls);
    // The jobs first: revocation enforcement subscribes to the store's device events
    // before the first device is admitted.
    let mut background = spawn_jobs(&state, first_crossings);
    background.extend([
        tokio::spawn(endpoint::accept_loop(state.clone(), bound.quic.clone())),
        tokio::spawn({
            let state = state.clone();
            async move {
                let settings = &state.config.http;
                http::serve(
                    listener,
                    router,
                    http_tls,
                    settings,
                    &state.metrics,
                    http_shutdown,
                )
                .await;
            }
        }),
    ]);
    tracing::info!(
        devices = %bound.device_addr,
        operators = %bound.http_addr,
        data = %state.config.data_dir.display(),
        pki = %pki_dir.display(),
        "gateway listening"
    );
    if gateway_pki.made_now {
        tracing::info!(
            "development devices are enrolled: give a device a bundle from {}/devices/<id>/ \
             (`agent enroll bundle DIR`)",
            pki_dir.display()
        );
    }
    tracing::info!(
        "to enroll a device: on the device `agent enroll request --device-id ID --serial SN --out ID.csr`, \
         then `provisioning devices enroll-csr --csr ID.csr --id ID --kind terminal --serial SN --out DIR --reason …` \
         with the admin token from {}/admin.token, then `agent enroll install DIR/device.pem --ca DIR/ca.pem`",
        pki_dir.display()
    );
    RunningGateway {
        state,
        endpoint: bound.quic,
        device_addr: bound.device_addr,
        http_addr: bound.http_addr,
        background,
        _mdns: bound.advertisement,
    }
}

/// Spawns the background jobs, each with the handles it needs from `state`.
/// `first_crossings` are the storage check's before the gateway served.
fn spawn_jobs(state: &GatewayState, first_crossings: Vec<Crossing>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(jobs::revocations::run(
            state.store.device_status_events(),
            state.live.clone(),
            state.store.clone(),
            state.metrics.closed.clone(),
        )),
        tokio::spawn(jobs::refusal_audit::run(
            state.refusals.clone(),
            state.store.clone(),
            state.clock.clone(),
            Duration::from_secs(state.config.device.refusal_audit_secs),
            state.shutdown.clone(),
        )),
        tokio::spawn(jobs::deadline_watch::run(
            state.deadlines(),
            Duration::from_secs(state.config.deadline_check_secs),
            state.shutdown.clone(),
        )),
        tokio::spawn(jobs::storage_alarm::run(
            state.storage.clone(),
            state.faults.clone(),
            state.store.clone(),
            state.clock.clone(),
            Duration::from_secs(state.config.storage.check_secs),
            first_crossings,
        )),
        tokio::spawn(jobs::two_officer_reviews::run(
            state.store.clone(),
            state.clock.clone(),
            state.ingest.reviews_due(),
            Duration::from_secs(state.config.deadline_check_secs),
            state.shutdown.clone(),
        )),
        tokio::spawn(jobs::staging_sweep::run(
            state.media.clone(),
            state.store.clone(),
            state.clock.clone(),
            state.config.media.clone(),
            state.recording_metrics.staging_removed.clone(),
            state.shutdown.clone(),
        )),
        tokio::spawn(jobs::allocation_snapshots::run(
            state.allocation(),
            state.config.allocation_report.clone(),
            state.shutdown.clone(),
        )),
    ]
}

/// The folders whose free space is watched: the SQLite database's (PostgreSQL's disk is
/// the database server's) and the media folder.
fn watched_folders(config: &Config) -> Vec<(crate::storage::Folder, std::path::PathBuf)> {
    use crate::storage::Folder;
    let mut folders = vec![(Folder::Media, config.media.dir(&config.data_dir))];
    if let store::StoreConfig::Sqlite { path } = config.store_config() {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(
                || std::path::PathBuf::from("."),
                std::path::Path::to_path_buf,
            );
        folders.push((Folder::Store, dir));
    }
    folders
}

/// Runs a gateway until `shutdown` completes, then stops it gracefully.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
    let gateway = start(config).await?;
    shutdown.await;
    gateway.shutdown().await;
    Ok(())
}
