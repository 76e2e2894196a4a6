//! Fixtures shared by fieldsync's integration tests, so that no test copies set-up:
//! a gateway on loopback with its own data folder and development PKI, on SQLite or
//! on a fresh PostgreSQL schema, and device identities (enrolled or deliberately
//! wrong) to connect with.

pub mod netns;
pub mod tmpfs;

pub use tmpfs::Tmpfs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent::transport::TransportSettings;
use agent::{ClientError, DeviceIdentity, GatewayConnection, GatewayEndpoint};
use clock::{ManualClock, SharedClock, SystemClock};
use gateway::RunningGateway;
use gateway::config::Config;
use pki::{DeviceEku, FleetCa, Validity};
use protocol::DeviceId;

/// The environment variable naming a PostgreSQL server for tests.
pub const PG_ENV: &str = "FIELDSYNC_TEST_PG";

/// Which store a test gateway uses.
#[derive(Clone, Debug)]
pub enum Backend {
    /// SQLite in the gateway's data folder.
    Sqlite,
    /// PostgreSQL: the URL and a schema made for this test.
    Postgres {
        /// Server URL.
        url: String,
        /// The test's own schema.
        schema: String,
    },
}

impl Backend {
    /// A short name for test output.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// SQLite, plus PostgreSQL on a fresh schema when `FIELDSYNC_TEST_PG` is set (with a
/// printed notice when it is not).
pub async fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    match postgres_backend().await {
        Some(pg) => out.push(pg),
        None => eprintln!("{PG_ENV} unset: skipping PostgreSQL"),
    }
    out
}

/// A fresh PostgreSQL schema, or `None` when `FIELDSYNC_TEST_PG` is unset.
pub async fn postgres_backend() -> Option<Backend> {
    let url = std::env::var(PG_ENV).ok()?;
    let schema = format!("fs_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("FIELDSYNC_TEST_PG is set but PostgreSQL is not reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    Some(Backend::Postgres { url, schema })
}

/// A gateway configuration for tests: loopback on ephemeral ports, its own data
/// folder, a development PKI with `devices` enrolled bundles.
pub fn test_config(data_dir: &Path, backend: &Backend, devices: u32) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_owned(),
        shutdown_grace_secs: 5,
        ..Config::default()
    };
    config.device.listen = "127.0.0.1:0".parse().expect("address");
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.pki.dev_devices = devices;
    // The storage alarm measures the host's disk: a test machine with little free
    // space would raise it (an extra audit entry, a degraded /healthz) in tests that
    // are not about storage. Those tests set it themselves.
    config.storage.alarm_free_percent = 0;
    if let Backend::Postgres { url, schema } = backend {
        config.store.backend = "postgres".into();
        config.store.postgres_url = url.clone();
        config.store.postgres_schema = schema.clone();
    }
    config
}

/// A gateway running in this process, with the folder it owns.
pub struct TestGateway {
    /// The gateway.
    pub gateway: RunningGateway,
    /// Its data folder (deleted when the fixture is dropped).
    pub data: Arc<tempfile::TempDir>,
    /// Its configuration.
    pub config: Config,
}

impl TestGateway {
    /// Starts a gateway with `devices` enrolled development bundles.
    pub async fn start(backend: &Backend, devices: u32) -> Self {
        let data = Arc::new(tempfile::tempdir().expect("tempdir"));
        let config = test_config(data.path(), backend, devices);
        Self::start_with(config, data, Arc::new(SystemClock)).await
    }

    /// Starts a gateway with a manual clock.
    pub async fn start_with_clock(backend: &Backend, devices: u32, clock: ManualClock) -> Self {
        let data = Arc::new(tempfile::tempdir().expect("tempdir"));
        let config = test_config(data.path(), backend, devices);
        Self::start_with(config, data, Arc::new(clock)).await
    }

    /// Starts a gateway from a configuration and a folder it may share with another.
    pub async fn start_with(
        config: Config,
        data: Arc<tempfile::TempDir>,
        clock: SharedClock,
    ) -> Self {
        let gateway = gateway::start_with_clock(config.clone(), clock)
            .await
            .expect("gateway starts");
        Self {
            gateway,
            data,
            config,
        }
    }

    /// The PKI folder.
    pub fn pki_dir(&self) -> PathBuf {
        self.config.pki_dir()
    }

    /// The fleet CA (to issue extra certificates in tests).
    pub fn fleet_ca(&self) -> FleetCa {
        pki::load_pki_dir(&self.pki_dir()).expect("fleet CA loads")
    }

    /// The enrolled development device `n` (1-based).
    pub fn device(&self, n: u32) -> (DeviceId, DeviceIdentity) {
        let id = DeviceId::new(format!("dev-{n:05}")).expect("device id");
        let dir = pki::layout::device_dir(&self.pki_dir(), &id);
        let identity = DeviceIdentity::load_bundle(&dir).expect("bundle loads");
        (id, identity)
    }

    /// Connects as `identity`.
    pub async fn connect(
        &self,
        identity: &DeviceIdentity,
    ) -> Result<GatewayConnection, ClientError> {
        connect(self.gateway.device_addr(), identity).await
    }

    /// Reads `/metrics`.
    pub async fn metrics_text(&self) -> String {
        http_get(self.gateway.http_addr(), "/metrics").await
    }

    /// Stops the gateway and keeps the folder.
    pub async fn stop(self) -> (Arc<tempfile::TempDir>, Config) {
        self.gateway.shutdown().await;
        (self.data, self.config)
    }
}

/// Connects a device to a gateway on loopback.
pub async fn connect(
    gateway: std::net::SocketAddr,
    identity: &DeviceIdentity,
) -> Result<GatewayConnection, ClientError> {
    let endpoint = GatewayEndpoint::bind(gateway)?;
    endpoint
        .connect(
            gateway,
            "localhost",
            identity,
            &TransportSettings::default(),
        )
        .await
}

/// Issues an extra device identity from `ca` (enrolled or not is up to the test).
pub fn issue_identity(
    ca: &FleetCa,
    id: &str,
    validity: Validity,
    eku: DeviceEku,
) -> (DeviceId, DeviceIdentity, String) {
    let device = DeviceId::new(id).expect("device id");
    let issued = ca
        .issue_device_bundle_with(&device, &format!("SN-{id}"), validity, eku)
        .expect("certificate issued");
    let identity = DeviceIdentity::from_pem(&issued.cert_pem, &issued.key_pem, ca.cert_pem())
        .expect("identity");
    (device, identity, issued.fingerprint())
}

/// Validity from `from` to `to`, relative to now.
pub fn validity(from: time::Duration, to: time::Duration) -> Validity {
    let now = time::OffsetDateTime::now_utc();
    Validity::new(now + from, now + to)
}

/// A plain HTTP GET over loopback (no client library needed for tests).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to operator listener");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    response
}

/// `len` bytes of deterministic pseudo-random content (xorshift), distinct per seed:
/// recordings whose every byte matters to their hash.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Polls `check` every 20 ms until it holds, for at most `limit`; returns whether it
/// held. For waiting on asynchronous effects without asserting on timing.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connects with no client certificate at all (the gateway must refuse), and tries a
/// hello. Returns `Ok` only if a request was served.
pub async fn connect_without_certificate(
    gateway: std::net::SocketAddr,
    ca: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<(), String> {
    RawClient::new(ca, None, protocol::ALPN)?
        .hello(gateway)
        .await
}

/// A QUIC client that is not the agent: what an attacker or a broken device could
/// send (no certificate, any ALPN). One TLS configuration serves every connection, so
/// a later connection resumes an earlier one's TLS session, as any TLS client may.
#[derive(Clone)]
pub struct RawClient {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
}

impl RawClient {
    /// A client trusting `ca` for the gateway, presenting `identity`'s certificate (or
    /// none) and offering `alpn`.
    pub fn new(
        ca: &[rustls::pki_types::CertificateDer<'static>],
        identity: Option<&DeviceIdentity>,
        alpn: &[u8],
    ) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in ca {
            roots.add(c.clone()).map_err(|e| e.to_string())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let mut tls = match identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| e.to_string())?,
            None => builder.with_no_client_auth(),
        };
        tls.alpn_protocols = vec![alpn.to_vec()];
        let crypto =
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("address"))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            endpoint,
            config: quinn::ClientConfig::new(Arc::new(crypto)),
        })
    }

    /// Completes a handshake with the gateway (which may still close it at admission).
    pub async fn connect(
        &self,
        gateway: std::net::SocketAddr,
    ) -> Result<quinn::Connection, quinn::ConnectionError> {
        self.endpoint
            .connect_with(self.config.clone(), gateway, "localhost")
            .expect("a valid client configuration")
            .await
    }

    /// Connects and tries a hello. Returns `Ok` only if a request was served.
    pub async fn hello(&self, gateway: std::net::SocketAddr) -> Result<(), String> {
        let connection = self.connect(gateway).await.map_err(|e| e.to_string())?;
        let served = hello_on(&connection).await;
        connection.close(0u32.into(), b"done");
        served
    }
}

/// Sends a hello on a new stream of `connection`; `Ok` when a reply came.
pub async fn hello_on(connection: &quinn::Connection) -> Result<(), String> {
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
    let hello = protocol::Request::new(protocol::RequestBody::Hello(protocol::message::Hello {
        device_time: 0,
        agent_version: "raw-client".into(),
        rules_digest: None,
    }));
    agent::transport::frames::write_message(&mut send, &hello, 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    let _ = send.finish();
    match agent::transport::frames::read_message::<protocol::Response>(
        &mut recv,
        protocol::frame::FrameDecoder::new(1 << 20),
    )
    .await
    {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("no reply".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A `gateway` binary started by a test (tests name it with
/// `env!("CARGO_BIN_EXE_gateway")`), for what an in-process gateway cannot show: a
/// SIGKILL, the process's own log. Killed (SIGKILL) and reaped when dropped.
pub struct GatewayProcess {
    child: std::process::Child,
    /// Where the process's standard error goes unless the test sent it elsewhere: shown
    /// when the process does not start.
    stderr: tempfile::NamedTempFile,
    /// Where devices connect (UDP).
    pub device_addr: std::net::SocketAddr,
    /// The operator listener (TCP).
    pub http_addr: std::net::SocketAddr,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GatewayProcess {
    /// Loopback addresses for a gateway to come (device, operator), chosen up front so
    /// that a restarted process can listen on the same ones.
    pub fn free_addrs() -> (std::net::SocketAddr, std::net::SocketAddr) {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free loopback UDP port");
        // The operator listener is TCP: a port free for UDP may be taken for TCP.
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free loopback TCP port");
        (udp, tcp)
    }

    /// Starts `binary` on the data folder `data` with `backend`, listening on `addrs`
    /// (see [`GatewayProcess::free_addrs`]), logging at `warn` to a temporary file that
    /// a failed start shows; `configure` adds to or overrides that (environment, output)
    /// before the start. Returns once the operator listener answers `/healthz`.
    pub async fn start(
        binary: &Path,
        data: &Path,
        backend: &Backend,
        addrs: (std::net::SocketAddr, std::net::SocketAddr),
        configure: impl FnOnce(&mut std::process::Command),
    ) -> Self {
        let (device_addr, http_addr) = addrs;
        let stderr = tempfile::NamedTempFile::new().expect("a temporary file");
        let mut command = std::process::Command::new(binary);
        command
            .env("FIELDSYNC_DATA_DIR", data)
            .env("FIELDSYNC_DEVICE_LISTEN", device_addr.to_string())
            .env("FIELDSYNC_HTTP_LISTEN", http_addr.to_string())
            .env("RUST_LOG", "warn")
            // As in `test_config`: the host's free space is not the test's business.
            .env("FIELDSYNC_STORAGE_ALARM_FREE_PERCENT", "0")
            // The log (tracing writes to standard output) and any panic, in one file.
            .stdout(stderr.reopen().expect("the temporary file"))
            .stderr(stderr.reopen().expect("the temporary file"));
        if let Backend::Postgres { url, schema } = backend {
            command
                .env("FIELDSYNC_STORE_BACKEND", "postgres")
                .env("FIELDSYNC_STORE_POSTGRES_URL", url)
                .env("FIELDSYNC_STORE_POSTGRES_SCHEMA", schema);
        }
        configure(&mut command);
        let mut process = GatewayProcess {
            child: command.spawn().expect("start the gateway binary"),
            stderr,
            device_addr,
            http_addr,
        };
        // Up once `/healthz` answers 200 ("ok", or "degraded" with a storage alarm).
        let up = eventually(Duration::from_secs(30), || async move {
            tokio::net::TcpStream::connect(http_addr).await.is_ok()
                && http_get(http_addr, "/healthz")
                    .await
                    .starts_with("HTTP/1.1 200")
        })
        .await;
        if !up {
            let exited = process.child.try_wait().ok().flatten();
            let log = std::fs::read_to_string(process.stderr.path()).unwrap_or_default();
            panic!("the gateway binary did not start (exit: {exited:?}); its stderr:\n{log}");
        }
        process
    }

    /// What the process wrote to standard output (its log) and standard error so far
    /// (unless the test sent them elsewhere).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Waits up to `limit` for the process to end by itself; its exit status, or
    /// `None` if it still runs.
    pub async fn exited(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
