//! Gateway configuration: a TOML file, then `FIELDSYNC_*` environment overrides, then
//! validation, all before any port is bound (as linkerd2-proxy does).
//!
//! Every key has a default, so the gateway runs with no file at all. The environment
//! is read through [`EnvSource`] so tests pass a map instead of the process
//! environment. Every key is documented in `docs/configuration.md`; a test checks that
//! the document names each one.
//!
//! Every table's type lives here (its own file when it has its own checks), so the
//! parts of the gateway import their settings from `config` and `config` imports
//! nothing of theirs: configuration is read first and depends on no running part.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use protocol::Limits;
use protocol::action_kind::ActionKinds;
use protocol::allocation::AllocationPolicy;
use protocol::clock::ClockPolicy;
use protocol::deadline::DeadlinePolicy;
use protocol::two_officer::TwoOfficerPolicy;
use serde::{Deserialize, Serialize};

pub mod allocation_report;
pub mod full_process;
pub mod http;
pub mod ingest;
pub mod storage;

pub use allocation_report::AllocationReportConfig;
pub use full_process::{FullProcessPolicy, FullProcessPolicyError};
pub use http::{HttpConfig, HttpTls};
pub use ingest::IngestConfig;
pub use storage::StorageSettings;
use store::StoreConfig;

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "FIELDSYNC_";

/// Where environment variables come from.
pub trait EnvSource {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
    /// The names of every variable set (to find misspelt overrides).
    fn names(&self) -> Vec<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

/// `FIELDSYNC_*` variables that belong to the project's other programs (the CLIs,
/// the agent, the test and benchmark harnesses) and may share the gateway's
/// environment: never configuration, never refused. Names ending in `_` are prefixes.
pub const OTHER_PROGRAMS_VARIABLES: [&str; 11] = [
    "FIELDSYNC_CONFIG",
    "FIELDSYNC_TOKEN",
    "FIELDSYNC_TOKEN_FILE",
    "FIELDSYNC_GATEWAY",
    "FIELDSYNC_CA",
    "FIELDSYNC_TEST_PG",
    "FIELDSYNC_CHROMIUM",
    "FIELDSYNC_IN_NETNS",
    "FIELDSYNC_GATEWAY_CHILD",
    "FIELDSYNC_AGENT_",
    "FIELDSYNC_BENCH_",
];

/// The first `FIELDSYNC_*` variable set that is neither a configuration key's nor
/// another program's (pure): a misspelt override is refused, not silently ignored.
fn unknown_variable(names: &[String], keys: &[(String, String)]) -> Option<String> {
    let mut unknown: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with(ENV_PREFIX))
        .filter(|n| !keys.iter().any(|(_, var)| var == *n))
        .filter(|n| {
            !OTHER_PROGRAMS_VARIABLES
                .iter()
                .any(|o| *n == o || (o.ends_with('_') && n.starts_with(o)))
        })
        .collect();
    unknown.sort();
    unknown.first().map(|n| (*n).clone())
}

/// The whole gateway configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Folder for the SQLite store, the development PKI and media.
    pub data_dir: PathBuf,
    /// The device listener (QUIC).
    pub device: DeviceListenerConfig,
    /// The operator listener (admin API, pages, `/metrics`).
    pub http: HttpConfig,
    /// Which store to use.
    pub store: StoreSettings,
    /// Where the fleet CA and the gateway certificate come from.
    pub pki: PkiConfig,
    /// mDNS advertisement.
    pub mdns: MdnsConfig,
    /// Protocol limits, announced to devices.
    pub limits: Limits,
    /// Policy numbers from DOMAIN.md.
    pub policy: PolicyConfig,
    /// How long a shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
    /// Group commit of field records.
    pub ingest: IngestConfig,
    /// Where recordings' bytes are kept.
    pub media: media::MediaSettings,
    /// How often the deadline watcher re-evaluates recordings and flags, in seconds.
    pub deadline_check_secs: u64,
    /// When the daily allocation snapshot is taken.
    pub allocation_report: AllocationReportConfig,
    /// Free-space alarm and the reserve kept for operators.
    pub storage: StorageSettings,
    /// The agencies' time zone: an IANA name (`Asia/Shanghai`) or a fixed offset
    /// (`+08:00`). Days of the allocation trend and of the archive period are its days.
    pub time_zone: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./fieldsync-data"),
            device: DeviceListenerConfig::default(),
            http: HttpConfig::default(),
            store: StoreSettings::default(),
            pki: PkiConfig::default(),
            mdns: MdnsConfig::default(),
            limits: Limits::default(),
            policy: PolicyConfig::default(),
            shutdown_grace_secs: 10,
            ingest: IngestConfig::default(),
            media: media::MediaSettings::default(),
            deadline_check_secs: 60,
            allocation_report: AllocationReportConfig::default(),
            storage: StorageSettings::default(),
            time_zone: DEFAULT_TIME_ZONE.into(),
        }
    }
}

/// The QUIC listener for devices, sized for thousands of mostly idle connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceListenerConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// A connection with no traffic for this long is closed, in seconds.
    pub idle_timeout_secs: u64,
    /// Keep-alive interval, in seconds; keeps cellular NAT bindings open.
    pub keep_alive_secs: u64,
    /// Connection-level receive window, in bytes.
    pub receive_window: u32,
    /// Per-stream receive window, in bytes.
    pub stream_receive_window: u32,
    /// Send window, in bytes.
    pub send_window: u64,
    /// Above this many handshakes per second, clients must prove their address with a
    /// Retry round trip first.
    pub retry_above_handshakes_per_sec: u32,
    /// Receive buffer of the UDP socket, in bytes (0 keeps the system default). A
    /// reconnect storm of thousands of devices overflows the usual 208 KiB default
    /// and dropped handshake packets cost whole retransmission timeouts.
    pub udp_receive_buffer: u32,
    /// Refused handshakes are written to the audit log as one summary per reason per
    /// this many seconds (counted on `/metrics` at once): a flood cannot grow the
    /// append-only log faster than that.
    pub refusal_audit_secs: u64,
    /// Sample peers (address, fingerprint) a refusal summary names, per reason.
    pub refusal_audit_samples: usize,
}

impl Default for DeviceListenerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:4433".parse().expect("valid address"),
            idle_timeout_secs: 60,
            keep_alive_secs: 20,
            receive_window: 1 << 20,
            stream_receive_window: 256 << 10,
            send_window: 1 << 20,
            retry_above_handshakes_per_sec: 5_000,
            udp_receive_buffer: 4 << 20,
            refusal_audit_secs: 60,
            refusal_audit_samples: 5,
        }
    }
}

/// The store backend, as written in the configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite` (embedded, the default) or `postgres` (several gateways).
    pub backend: String,
    /// SQLite file; empty means `<data_dir>/fieldsync.db`.
    pub sqlite_path: String,
    /// PostgreSQL connection URL (backend `postgres`).
    pub postgres_url: String,
    /// PostgreSQL schema; empty means the server's default search path.
    pub postgres_schema: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: "sqlite".into(),
            sqlite_path: String::new(),
            postgres_url: String::new(),
            postgres_schema: String::new(),
        }
    }
}

/// Where the fleet CA and the gateway certificate live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PkiConfig {
    /// Folder with `ca.pem`, `gateway.pem` and `gateway.key`; empty means
    /// `<data_dir>/pki`.
    pub dir: String,
    /// When the folder has no CA, make a development PKI there (and enroll its
    /// device bundles) instead of refusing to start.
    pub auto_dev_pki: bool,
    /// How many device bundles the development PKI makes.
    pub dev_devices: u32,
}

impl Default for PkiConfig {
    fn default() -> Self {
        Self {
            dir: String::new(),
            auto_dev_pki: true,
            dev_devices: 3,
        }
    }
}

/// mDNS advertisement of `_fieldsync._udp.local.`: opt-in, because it announces the
/// gateway to everyone on the LAN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MdnsConfig {
    /// Advertise the gateway.
    pub enabled: bool,
    /// Interface names to advertise on; empty means all.
    pub interfaces: Vec<String>,
    /// The instance name advertised.
    pub instance: String,
}

impl Default for MdnsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interfaces: Vec::new(),
            instance: "fieldsync-gateway".into(),
        }
    }
}

/// Policy numbers (DOMAIN.md): deployment configuration, not code.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// The 24-hour upload rule.
    pub deadline: DeadlinePolicy,
    /// How far device clocks are trusted.
    pub clock: ClockPolicy,
    /// Allocation ratios.
    pub allocation: AllocationPolicy,
    /// How many certified officers a two-officer action needs.
    pub two_officer: TwoOfficerPolicy,
    /// Full-process recording (R3): archive days.
    pub full_process: FullProcessPolicy,
    /// The action-kind vocabulary: which kinds exist and what each needs.
    pub action_kinds: ActionKinds,
}

/// China Standard Time (DOMAIN R3: the agency's time zone, CST by default).
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

/// `+HH:MM`, `-HH:MM` or `+HH` as seconds east of UTC (at most ±14 hours).
fn fixed_offset_seconds(text: &str) -> Option<i32> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = text[1..].split_once(':').unwrap_or((&text[1..], "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60 && h * 60 + m <= 14 * 60).then_some(sign * (h * 3600 + m * 60))
}

/// Resolves a configured time zone: a fixed offset such as `+08:00` (or `UTC`), or an
/// IANA name looked up in the time-zone database bundled into the binary (so a gateway
/// on a minimal host without /usr/share/zoneinfo gives the same answer).
pub fn resolve_time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    let name = name.trim();
    if let Some(seconds) = fixed_offset_seconds(name) {
        return jiff::tz::Offset::from_seconds(seconds)
            .map(jiff::tz::TimeZone::fixed)
            .map_err(|e| format!("{name:?}: {e}"));
    }
    jiff::tz::db().get(name).map_err(|_| {
        format!("{name:?} is neither an IANA time zone (Asia/Shanghai) nor an offset (+08:00)")
    })
}

/// Why the configuration cannot be used. Each names the file, key or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A `FIELDSYNC_*` variable that names no configuration key.
    #[error(
        "environment variable {var} is not a configuration key (misspelt? `gateway --print-config` lists the keys; docs/configuration.md names their variables)"
    )]
    UnknownVariable {
        /// The variable.
        var: String,
    },
    /// An environment override cannot be parsed.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A key has the wrong type or is unknown.
    #[error("config key `{key}`: {message}")]
    Key {
        /// The dotted key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value is well-typed but not allowed.
    #[error("config key `{key}`: {problem}")]
    Invalid {
        /// The dotted key path.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

impl Config {
    /// Loads the configuration: defaults, then the file (if any), then environment
    /// overrides, then validation.
    pub fn load(file: Option<&Path>, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_text(&text, path, env)
            }
            None => Config::from_table(toml::Table::new(), env),
        }
    }

    /// Parses the text of a config file (`path` only names it in errors), then applies
    /// environment overrides and validates: everything [`Config::load`] does after
    /// reading the file, so the config fuzz target drives the path that runs.
    pub fn from_text(text: &str, path: &Path, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Syntax {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        Config::from_table(table, env)
    }

    fn from_table(mut table: toml::Table, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        apply_env(&mut table, env)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                ConfigError::Key {
                    key: e.path().to_string(),
                    message: e.inner().to_string(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that are well-typed but not allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: String| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                problem,
            })
        };
        if self.device.idle_timeout_secs == 0 {
            return invalid("device.idle_timeout_secs", "must be at least 1".into());
        }
        if self.device.keep_alive_secs == 0
            || self.device.keep_alive_secs >= self.device.idle_timeout_secs
        {
            return invalid(
                "device.keep_alive_secs",
                format!(
                    "must be at least 1 and below device.idle_timeout_secs ({})",
                    self.device.idle_timeout_secs
                ),
            );
        }
        if self.device.refusal_audit_secs == 0 {
            return invalid("device.refusal_audit_secs", "must be at least 1".into());
        }
        if self.device.refusal_audit_samples > 100 {
            return invalid(
                "device.refusal_audit_samples",
                "must be at most 100 (each sample is kept in memory and in every summary)".into(),
            );
        }
        if self.device.stream_receive_window > self.device.receive_window {
            return invalid(
                "device.stream_receive_window",
                "must not exceed device.receive_window".into(),
            );
        }
        if self.limits.max_frame_bytes < 1024 {
            return invalid("limits.max_frame_bytes", "must be at least 1024".into());
        }
        for (key, value) in [
            (
                "limits.max_records_per_push",
                self.limits.max_records_per_push,
            ),
            (
                "limits.max_identity_checks_per_push",
                self.limits.max_identity_checks_per_push,
            ),
        ] {
            if value == 0 || value > protocol::limits::PUSH_ITEMS_CEILING {
                return invalid(
                    key,
                    format!(
                        "must be between 1 and {} (the protocol's ceiling)",
                        protocol::limits::PUSH_ITEMS_CEILING
                    ),
                );
            }
        }
        if self.limits.max_concurrent_streams == 0 {
            return invalid("limits.max_concurrent_streams", "must be at least 1".into());
        }
        match self.store.backend.as_str() {
            "sqlite" => {}
            "postgres" if self.store.postgres_url.is_empty() => {
                return invalid(
                    "store.postgres_url",
                    "must be set when store.backend is \"postgres\"".into(),
                );
            }
            "postgres" => {}
            other => {
                return invalid(
                    "store.backend",
                    format!("{other:?} is not a store backend; use \"sqlite\" or \"postgres\""),
                );
            }
        }
        if self.pki.auto_dev_pki && self.pki.dev_devices == 0 {
            return invalid("pki.dev_devices", "must be at least 1".into());
        }
        let policy = |key: &str, e: &dyn std::fmt::Display| invalid(key, e.to_string());
        if let Err(e) = self.policy.deadline.validate() {
            return policy("policy.deadline", &e);
        }
        if let Err(e) = self.policy.allocation.validate() {
            return policy("policy.allocation", &e);
        }
        if let Err(e) = self.policy.two_officer.validate() {
            return policy("policy.two_officer", &e);
        }
        if let Err(e) = self.policy.clock.validate() {
            return policy("policy.clock", &e);
        }
        if let Err(e) = self.policy.action_kinds.validate() {
            return policy("policy.action_kinds", &e);
        }
        if let Err(problem) = resolve_time_zone(&self.time_zone) {
            return invalid("time_zone", problem);
        }
        if let Err((key, problem)) = self.ingest.validate() {
            return invalid(key, problem);
        }
        if let Err(e) = self.policy.full_process.validate() {
            return policy("policy.full_process", &e);
        }
        if let Err((key, problem)) = self.media.validate() {
            return invalid(key, problem);
        }
        if self.media.max_staging_bytes_per_device < self.limits.max_recording_bytes {
            return invalid(
                "media.max_staging_bytes_per_device",
                format!(
                    "must be at least limits.max_recording_bytes ({}), or the largest recording could never be staged",
                    self.limits.max_recording_bytes
                ),
            );
        }
        if self.deadline_check_secs == 0 {
            return invalid("deadline_check_secs", "must be at least 1".into());
        }
        if let Err((key, problem)) = self.allocation_report.validate() {
            return invalid(key, problem);
        }
        if let Err((key, problem)) = self.storage.validate() {
            return invalid(key, problem);
        }
        if let Err((key, problem)) = self.http.validate() {
            return invalid(key, problem);
        }
        Ok(())
    }

    /// The rules terminals apply before they seal a record, offline too.
    pub fn device_rules(&self) -> protocol::message::DeviceRules {
        protocol::message::DeviceRules {
            action_kinds: self.policy.action_kinds.clone(),
            min_officers: self.policy.two_officer.min_officers,
            clock_tolerance_ms: self.policy.clock.tolerance_ms(),
        }
    }

    /// The agencies' time zone (validated at load; UTC if it was not).
    pub fn zone(&self) -> jiff::tz::TimeZone {
        resolve_time_zone(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// The agencies' offset from UTC at `at`, in minutes (what pages print times in).
    pub fn utc_offset_minutes(&self, at: protocol::Millis) -> i32 {
        let at = jiff::Timestamp::from_millisecond(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.zone().to_offset(at).seconds() / 60
    }

    /// The PKI folder.
    pub fn pki_dir(&self) -> PathBuf {
        if self.pki.dir.is_empty() {
            self.data_dir.join("pki")
        } else {
            PathBuf::from(&self.pki.dir)
        }
    }

    /// The store to open.
    pub fn store_config(&self) -> StoreConfig {
        if self.store.backend == "postgres" {
            StoreConfig::Postgres {
                url: self.store.postgres_url.clone(),
                schema: (!self.store.postgres_schema.is_empty())
                    .then(|| self.store.postgres_schema.clone()),
            }
        } else {
            let path = if self.store.sqlite_path.is_empty() {
                self.data_dir.join("fieldsync.db")
            } else {
                PathBuf::from(&self.store.sqlite_path)
            };
            StoreConfig::Sqlite { path }
        }
    }

    /// Every configuration key as a dotted path, with its environment variable.
    pub fn keys() -> Vec<(String, String)> {
        let defaults = toml::Value::try_from(Config::default()).expect("defaults serialize");
        let mut out = Vec::new();
        collect_keys(&defaults, &mut Vec::new(), &mut out);
        out.into_iter()
            .map(|path| {
                let var = format!("{ENV_PREFIX}{}", path.replace('.', "_").to_uppercase());
                (path, var)
            })
            .collect()
    }
}

fn collect_keys(value: &toml::Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, child) in table {
                path.push(key.clone());
                collect_keys(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.join(".")),
    }
}

/// Applies `FIELDSYNC_*` overrides: each known key's variable replaces the key. A
/// string key takes the value as it is; other keys parse it as a TOML value.
fn apply_env(table: &mut toml::Table, env: &dyn EnvSource) -> Result<(), ConfigError> {
    let defaults = toml::Value::try_from(Config::default()).expect("defaults serialize");
    let keys = Config::keys();
    if let Some(var) = unknown_variable(&env.names(), &keys) {
        return Err(ConfigError::UnknownVariable { var });
    }
    for (path, var) in keys {
        let Some(raw) = env.var(&var) else { continue };
        let parts: Vec<&str> = path.split('.').collect();
        let default = parts
            .iter()
            .try_fold(&defaults, |v, p| v.get(p))
            .expect("known key");
        let value = env_value(&raw, default).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
        let (last, parents) = parts.split_last().expect("non-empty path");
        let mut node = &mut *table;
        for part in parents {
            let entry = node
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry.as_table_mut().ok_or_else(|| ConfigError::Key {
                key: part.to_string(),
                message: "must be a table".into(),
            })?;
        }
        node.insert(last.to_string(), value);
    }
    Ok(())
}

/// An environment variable's text as the value of a key whose default is `default`:
/// a string as it is, a number or a boolean parsed as one (the error says so in
/// those words), anything else (lists, tables) as a TOML value.
fn env_value(raw: &str, default: &toml::Value) -> Result<toml::Value, String> {
    let text = raw.trim();
    match default {
        toml::Value::String(_) => Ok(toml::Value::String(raw.to_owned())),
        toml::Value::Integer(_) => text
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("{raw:?} is not a whole number")),
        toml::Value::Float(_) => text
            .parse::<f64>()
            .map(toml::Value::Float)
            .map_err(|_| format!("{raw:?} is not a number")),
        toml::Value::Boolean(_) => text
            .parse::<bool>()
            .map(toml::Value::Boolean)
            .map_err(|_| format!("{raw:?} is not true or false")),
        _ => format!("v = {raw}")
            .parse::<toml::Table>()
            .map_err(|e| format!("{raw:?} is not a TOML value: {}", e.message()))?
            .remove("v")
            .ok_or_else(|| format!("{raw:?} is not a TOML value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), &env(vars))
    }

    #[test]
    fn no_file_gives_working_defaults() {
        let config = Config::load(None, &env(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.device.listen.port(), 4433);
        assert!(config.http.listen.ip().is_loopback());
        assert!(!config.mdns.enabled);
    }

    #[test]
    fn file_then_environment() {
        let config = load_text(
            "data_dir = \"/srv/fs\"\n[device]\nidle_timeout_secs = 90\n",
            &[
                ("FIELDSYNC_DEVICE_KEEP_ALIVE_SECS", "30"),
                ("FIELDSYNC_STORE_POSTGRES_SCHEMA", "42"),
            ],
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/fs"));
        assert_eq!(config.device.idle_timeout_secs, 90);
        assert_eq!(config.device.keep_alive_secs, 30);
        assert_eq!(config.store.postgres_schema, "42");
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let err = load_text("[device]\nidle_timeout_secs = \"soon\"\n", &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("device.idle_timeout_secs"), "{text}");
        assert!(text.contains("invalid type"), "{text}");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = load_text("[device]\nidel_timeout_secs = 5\n", &[]).unwrap_err();
        assert!(err.to_string().contains("idel_timeout_secs"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = load_text("[store]\nbackend = \"mysql\"\n", &[]).unwrap_err();
        assert!(
            err.to_string().starts_with("config key `store.backend`"),
            "{err}"
        );
        let err = load_text("[store]\nbackend = \"postgres\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("store.postgres_url"), "{err}");
        let err = load_text("[policy.allocation]\nratio_a = 0\n", &[]).unwrap_err();
        assert!(err.to_string().contains("policy.allocation"), "{err}");
        let err = load_text("[limits]\nmax_records_per_push = 5000\n", &[]).unwrap_err();
        assert!(
            err.to_string().contains("limits.max_records_per_push")
                && err.to_string().contains("4096"),
            "{err}"
        );
        let err = load_text("[limits]\nmax_identity_checks_per_push = 0\n", &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("limits.max_identity_checks_per_push"),
            "{err}"
        );
    }

    #[test]
    fn the_rules_of_issue_21_are_configured_and_checked() {
        let config = load_text(
            "time_zone = \"+08:00\"\n\
             [policy.clock]\ntolerance_secs = 60\n\
             [[policy.action_kinds]]\ncode = \"seizure\"\nname_zh = \"扣押\"\n\
             name_en = \"Seizure\"\ntwo_officers = true\naudio_video = true\n\
             closes_case = true\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.policy.action_kinds.codes(), vec!["seizure"]);
        assert_eq!(config.policy.clock.tolerance_ms(), 60_000);
        assert_eq!(config.utc_offset_minutes(0), 480);
        assert_eq!(
            Config::default().utc_offset_minutes(0),
            480,
            "Asia/Shanghai"
        );
        // The lists the vocabulary replaced, and the offset `time_zone` replaced, are
        // unknown keys now, not silently ignored.
        for old in [
            "[policy.two_officer]\naction_kinds = [\"seizure\"]\n",
            "[policy.full_process]\naction_kinds = [\"seizure\"]\n",
            "[allocation_report]\nutc_offset_minutes = 480\n",
        ] {
            let err = load_text(old, &[]).unwrap_err();
            assert!(err.to_string().contains("unknown field"), "{old}: {err}");
        }
        let err = load_text("time_zone = \"Mars/Olympus\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("time_zone"), "{err}");
        let err = load_text("[[policy.action_kinds]]\ncode = \"Seizure\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("policy.action_kinds"), "{err}");
        let err = load_text("[policy.clock]\nmax_skew_secs = 0\n", &[]).unwrap_err();
        assert!(err.to_string().contains("policy.clock"), "{err}");
    }

    #[test]
    fn bad_environment_names_the_variable() {
        let err =
            Config::load(None, &env(&[("FIELDSYNC_DEVICE_IDLE_TIMEOUT_SECS", "x y")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("FIELDSYNC_DEVICE_IDLE_TIMEOUT_SECS"),
            "{err}"
        );
    }

    #[test]
    fn a_number_that_does_not_parse_says_so() {
        let err = Config::load(
            None,
            &env(&[("FIELDSYNC_DEVICE_IDLE_TIMEOUT_SECS", "thirty")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable FIELDSYNC_DEVICE_IDLE_TIMEOUT_SECS: \"thirty\" is not a whole number"
        );
    }

    #[test]
    fn an_unknown_variable_is_named_and_other_programs_variables_pass() {
        let err =
            Config::load(None, &env(&[("FIELDSYNC_DEVICE_IDLE_TIMEOUT_SEC", "30")])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnknownVariable { var } if var == "FIELDSYNC_DEVICE_IDLE_TIMEOUT_SEC"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("FIELDSYNC_DEVICE_IDLE_TIMEOUT_SEC "),
            "{err}"
        );
        let others = env(&[
            ("FIELDSYNC_TOKEN", "fst_x"),
            ("FIELDSYNC_TEST_PG", "postgres://x"),
            ("FIELDSYNC_AGENT_DATA", "/tmp/a"),
            ("FIELDSYNC_BENCH_MIB", "4"),
            ("OTHER_VARIABLE", "1"),
        ]);
        assert!(Config::load(None, &others).is_ok());
    }

    #[test]
    fn bad_syntax_names_the_file() {
        let err = load_text("[device\n", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn every_key_is_documented() {
        let doc = include_str!("../../../docs/configuration.md");
        for (key, var) in Config::keys() {
            assert!(
                doc.contains(&format!("`{key}`")),
                "docs/configuration.md lacks `{key}`"
            );
            assert!(doc.contains(&var), "docs/configuration.md lacks {var}");
        }
    }

    /// The default a row of docs/configuration.md states: the first `code` of its
    /// default column, `""` for "empty …", `None` for prose (a table such as the
    /// action-kind vocabulary).
    fn documented_default(doc: &str, key: &str) -> Option<Option<String>> {
        let row = doc
            .lines()
            .find(|line| line.starts_with(&format!("| `{key}` |")))?;
        let cell = row.split('|').nth(3)?.trim();
        let stated = if cell.starts_with("empty") {
            Some(String::new())
        } else if let Some(rest) = cell.strip_prefix('`') {
            rest.split('`').next().map(str::to_owned)
        } else {
            None
        };
        Some(stated)
    }

    #[test]
    fn every_documented_default_is_the_real_one() {
        let doc = include_str!("../../../docs/configuration.md");
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        for (key, _) in Config::keys() {
            let value = key
                .split('.')
                .try_fold(&defaults, |v, part| v.get(part))
                .unwrap();
            let stated = documented_default(doc, &key)
                .unwrap_or_else(|| panic!("docs/configuration.md has no table row for `{key}`"));
            let real = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(a) if a.is_empty() => "[]".to_owned(),
                other => {
                    assert!(
                        stated.is_none(),
                        "`{key}`: a table default ({other}) is described, not written as code"
                    );
                    continue;
                }
            };
            let stated = stated.unwrap_or_else(|| {
                panic!("docs/configuration.md: `{key}` states no default (the code has {real:?})")
            });
            let empty_list = stated.is_empty() && real == "[]";
            assert!(
                stated == real || empty_list,
                "docs/configuration.md says `{key}` defaults to {stated:?}, the code to {real:?}"
            );
        }
    }
}
