//! The agent's configuration: `agent.toml` in its data folder, every key optional.
//!
//! With no `gateway` address the agent finds the gateway by mDNS on the station's LAN
//! (`_fieldsync._udp.local.`); TLS against the fleet CA authenticates it either way.
//! Validation happens when the file is read, before any socket is opened, so a typo
//! is a usage error (exit 64 in the CLI), not a silent default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// File name of the configuration inside the data folder.
pub const CONFIG_FILE: &str = "agent.toml";

/// Every setting of the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The gateway's device endpoint, `host:port`. Unset: discover it by mDNS.
    pub gateway: Option<String>,
    /// The name the gateway's certificate must carry. Unset: the host of `gateway`,
    /// or the host name the mDNS advertisement gives.
    pub server_name: Option<String>,
    /// How long one mDNS discovery listens for an advertisement, in seconds.
    pub discovery_timeout_secs: u64,
    /// How long a connection attempt (QUIC + TLS handshake) may take, in seconds.
    pub connect_timeout_secs: u64,
    /// How long one request may wait for its reply, in seconds.
    pub request_timeout_secs: u64,
    /// How long `check-id` tries the gateway (connect, hello, answer) before it
    /// answers from the synced roster instead, in seconds: an officer at the
    /// roadside should not wait for a dead link.
    pub online_check_timeout_secs: u64,
    /// While connected, how often the daemon syncs, in seconds.
    pub sync_interval_secs: u64,
    /// First reconnect delay after a failure, in milliseconds (doubles each failure).
    pub backoff_initial_ms: u64,
    /// Longest reconnect delay, in seconds.
    pub backoff_max_secs: u64,
    /// Most field records in one push (the gateway's limit applies too).
    pub records_per_push: u32,
    /// Bytes of a recording sent in its first upload request, and the least any later
    /// request carries; later ones grow to about a second's worth at the rate measured
    /// (see `uploader::chunk`).
    pub upload_chunk_bytes: u64,
    /// Upload bandwidth limit in bytes per second; 0 means unlimited.
    pub upload_bytes_per_sec: u64,
    /// QUIC keep-alive interval, in seconds (keeps cellular NAT bindings open).
    pub keep_alive_secs: u64,
    /// QUIC idle timeout, in seconds.
    pub idle_timeout_secs: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            gateway: None,
            server_name: None,
            discovery_timeout_secs: 5,
            connect_timeout_secs: 10,
            request_timeout_secs: 60,
            online_check_timeout_secs: 3,
            sync_interval_secs: 30,
            backoff_initial_ms: 500,
            backoff_max_secs: 300,
            records_per_push: 256,
            upload_chunk_bytes: 16 << 20,
            upload_bytes_per_sec: 0,
            keep_alive_secs: 20,
            idle_timeout_secs: 60,
        }
    }
}

/// Why a configuration cannot be used; each names the file or the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a key is unknown or of the wrong type.
    #[error("{path}: {message}")]
    Syntax {
        /// The file (or `<command line>`).
        path: PathBuf,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A key is well-typed but its value is not allowed.
    #[error("config key `{key}`: {problem}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// `config set` named a key that does not exist.
    #[error("unknown config key `{0}`; known keys: {keys}", keys = AgentConfig::KEYS.join(", "))]
    UnknownKey(String),
}

impl AgentConfig {
    /// Every key, in file order.
    pub const KEYS: &'static [&'static str] = &[
        "gateway",
        "server_name",
        "discovery_timeout_secs",
        "connect_timeout_secs",
        "request_timeout_secs",
        "online_check_timeout_secs",
        "sync_interval_secs",
        "backoff_initial_ms",
        "backoff_max_secs",
        "records_per_push",
        "upload_chunk_bytes",
        "upload_bytes_per_sec",
        "keep_alive_secs",
        "idle_timeout_secs",
    ];

    /// The configuration file of a data folder.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join(CONFIG_FILE)
    }

    /// Reads `agent.toml` from the data folder; defaults when it does not exist.
    pub fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        let path = Self::path_in(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Parses and validates TOML text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Writes the configuration to the data folder (via a temporary file and a rename,
    /// so a crash leaves the old file or the new one).
    pub fn save(&self, data_dir: &Path) -> Result<(), ConfigError> {
        self.validate()?;
        let path = Self::path_in(data_dir);
        let text = toml::to_string_pretty(self).expect("the configuration serializes");
        durable::files::write_atomic(&path, text.as_bytes())
            .map_err(|source| ConfigError::Write { path, source })
    }

    /// Returns a copy with `key` set from its text form (`config set KEY VALUE`).
    pub fn with_key(&self, key: &str, value: &str) -> Result<Self, ConfigError> {
        if !Self::KEYS.contains(&key) {
            return Err(ConfigError::UnknownKey(key.to_owned()));
        }
        let mut table = toml::Table::try_from(self).expect("the configuration serializes");
        let parsed = match key {
            "gateway" | "server_name" => toml::Value::String(value.to_owned()),
            _ => value
                .trim()
                .parse::<u64>()
                .ok()
                .and_then(|n| i64::try_from(n).ok())
                .map(toml::Value::Integer)
                .ok_or_else(|| ConfigError::Invalid {
                    key: Self::KEYS
                        .iter()
                        .find(|k| **k == key)
                        .copied()
                        .unwrap_or("?"),
                    problem: format!("{value:?} is not a whole number"),
                })?,
        };
        table.insert(key.to_owned(), parsed);
        let text = toml::to_string(&table).expect("a table serializes");
        Self::parse(&text, Path::new("<command line>"))
    }

    /// Returns a copy with `key` back at its default (`config unset KEY`).
    pub fn without_key(&self, key: &str) -> Result<Self, ConfigError> {
        if !Self::KEYS.contains(&key) {
            return Err(ConfigError::UnknownKey(key.to_owned()));
        }
        let mut table = toml::Table::try_from(self).expect("the configuration serializes");
        table.remove(key);
        let text = toml::to_string(&table).expect("a table serializes");
        Self::parse(&text, Path::new("<command line>"))
    }

    /// Checks values that are well-typed but not allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        if let Some(gateway) = &self.gateway
            && let Err(problem) = split_host_port(gateway)
        {
            return invalid("gateway", &problem);
        }
        if let Some(name) = &self.server_name
            && rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            return invalid("server_name", "is not a DNS name or an IP address");
        }
        let at_least_one = [
            ("discovery_timeout_secs", self.discovery_timeout_secs),
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("online_check_timeout_secs", self.online_check_timeout_secs),
            ("sync_interval_secs", self.sync_interval_secs),
            ("backoff_initial_ms", self.backoff_initial_ms),
            ("backoff_max_secs", self.backoff_max_secs),
            ("records_per_push", u64::from(self.records_per_push)),
            ("keep_alive_secs", self.keep_alive_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if self.backoff_initial_ms > self.backoff_max_secs.saturating_mul(1000) {
            return invalid("backoff_initial_ms", "must not exceed backoff_max_secs");
        }
        if self.keep_alive_secs >= self.idle_timeout_secs {
            return invalid("keep_alive_secs", "must be below idle_timeout_secs");
        }
        if self.upload_chunk_bytes < 4096 {
            return invalid("upload_chunk_bytes", "must be at least 4096");
        }
        if self.upload_bytes_per_sec != 0 && self.upload_bytes_per_sec < 1024 {
            return invalid(
                "upload_bytes_per_sec",
                "must be 0 (unlimited) or at least 1024",
            );
        }
        Ok(())
    }

    /// The configured connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    /// The configured request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The configured sync interval.
    pub fn sync_interval(&self) -> Duration {
        Duration::from_secs(self.sync_interval_secs)
    }

    /// The configured discovery timeout.
    pub fn discovery_timeout(&self) -> Duration {
        Duration::from_secs(self.discovery_timeout_secs)
    }

    /// QUIC settings for device connections.
    pub fn transport(&self) -> crate::transport::TransportSettings {
        crate::transport::TransportSettings {
            keep_alive: Duration::from_secs(self.keep_alive_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
        }
    }
}

/// Splits `host:port` (IPv6 in brackets), checking both parts.
pub fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let address = address.trim();
    if let Ok(addr) = address.parse::<std::net::SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{address:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{address:?}: port {port:?} is not a number from 1 to 65535"))?;
    if port == 0 {
        return Err(format!("{address:?}: port 0 is not allowed"));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || rustls::pki_types::ServerName::try_from(host).is_err() {
        return Err(format!(
            "{address:?}: {host:?} is not a host name or address"
        ));
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(text, Path::new("agent.toml"))
    }

    #[test]
    fn an_empty_file_gives_the_defaults_with_discovery() {
        let config = parse("").unwrap();
        assert_eq!(config, AgentConfig::default());
        assert!(config.gateway.is_none(), "no address means mDNS discovery");
    }

    #[test]
    fn a_misspelt_key_is_named() {
        let err = parse("gatewy = \"127.0.0.1:4433\"").unwrap_err();
        assert!(err.to_string().contains("gatewy"), "{err}");
    }

    #[test]
    fn a_bad_gateway_address_is_refused() {
        for bad in [
            "127.0.0.1",
            "host:notaport",
            ":4433",
            "host:0",
            "bad host:1",
        ] {
            let err = parse(&format!("gateway = {bad:?}")).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { key: "gateway", .. }),
                "{bad}: {err}"
            );
        }
        for good in ["127.0.0.1:4433", "[::1]:4433", "gw.station.local:4433"] {
            parse(&format!("gateway = {good:?}")).unwrap();
        }
    }

    #[test]
    fn zero_intervals_and_inverted_timeouts_are_refused() {
        let err = parse("sync_interval_secs = 0").unwrap_err();
        assert!(err.to_string().contains("sync_interval_secs"), "{err}");
        let err = parse("keep_alive_secs = 60\nidle_timeout_secs = 30").unwrap_err();
        assert!(err.to_string().contains("keep_alive_secs"), "{err}");
        let err = parse("upload_bytes_per_sec = 10").unwrap_err();
        assert!(err.to_string().contains("upload_bytes_per_sec"), "{err}");
    }

    #[test]
    fn set_and_unset_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = AgentConfig::default()
            .with_key("gateway", "127.0.0.1:4433")
            .unwrap()
            .with_key("upload_bytes_per_sec", "65536")
            .unwrap();
        config.save(dir.path()).unwrap();
        let loaded = AgentConfig::load(dir.path()).unwrap();
        assert_eq!(loaded.gateway.as_deref(), Some("127.0.0.1:4433"));
        assert_eq!(loaded.upload_bytes_per_sec, 65536);
        let back = loaded.without_key("gateway").unwrap();
        assert!(back.gateway.is_none());
        assert!(matches!(
            AgentConfig::default().with_key("nope", "1"),
            Err(ConfigError::UnknownKey(_))
        ));
        assert!(matches!(
            AgentConfig::default().with_key("sync_interval_secs", "soon"),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn a_missing_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            AgentConfig::load(dir.path()).unwrap(),
            AgentConfig::default()
        );
    }
}
