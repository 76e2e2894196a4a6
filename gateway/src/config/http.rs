//! The `[http]` table of the configuration: where the operator listener binds,
//! when it speaks TLS, and the timers and caps that keep slow or hostile clients
//! from holding it (issue 19, point 5). Every key is in `docs/configuration.md`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The operator listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// TCP address for the admin API, pages and `/metrics`. Loopback by default.
    pub listen: SocketAddr,
    /// When the listener speaks TLS with the gateway's certificate.
    pub tls: HttpTls,
    /// From a connection's start (or the end of its previous response) until a
    /// request's headers are complete, in seconds. Bounds slowloris clients and idle
    /// kept-alive connections alike.
    pub header_read_timeout_secs: u64,
    /// From a request's headers until its response is fully written, in seconds: a
    /// trickled body, a slow handler and a client that reads the reply slowly all end
    /// here.
    pub request_timeout_secs: u64,
    /// A connection on which no byte moves either way, while no request is being
    /// answered, is closed after this many seconds.
    pub idle_timeout_secs: u64,
    /// How long a client may take to finish the TLS handshake, in seconds.
    pub tls_handshake_timeout_secs: u64,
    /// Connections open at once (TLS handshakes included); one more is closed at
    /// once.
    pub max_connections: u32,
    /// Connections open at once from one client (an IPv4 address or an IPv6 /64).
    pub max_connections_per_client: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4480".parse().expect("valid address"),
            tls: HttpTls::Auto,
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
            idle_timeout_secs: 30,
            tls_handshake_timeout_secs: 10,
            max_connections: 512,
            max_connections_per_client: 64,
        }
    }
}

impl HttpConfig {
    /// Checks values that are well-typed but not allowed: every timer must run (zero
    /// would switch a protection off) and a client must be able to open at least one
    /// connection, never more than the listener as a whole.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, secs) in [
            (
                "http.header_read_timeout_secs",
                self.header_read_timeout_secs,
            ),
            ("http.request_timeout_secs", self.request_timeout_secs),
            ("http.idle_timeout_secs", self.idle_timeout_secs),
            (
                "http.tls_handshake_timeout_secs",
                self.tls_handshake_timeout_secs,
            ),
        ] {
            if secs == 0 || secs > MAX_TIMEOUT_SECS {
                return Err((
                    key,
                    format!("must be between 1 and {MAX_TIMEOUT_SECS} seconds"),
                ));
            }
        }
        if self.max_connections == 0 {
            return Err(("http.max_connections", "must be at least 1".into()));
        }
        if self.max_connections_per_client == 0
            || self.max_connections_per_client > self.max_connections
        {
            return Err((
                "http.max_connections_per_client",
                format!(
                    "must be at least 1 and at most http.max_connections ({})",
                    self.max_connections
                ),
            ));
        }
        Ok(())
    }

    /// The connection timers.
    pub fn timers(&self) -> Timers {
        Timers {
            header_read: Duration::from_secs(self.header_read_timeout_secs),
            request: Duration::from_secs(self.request_timeout_secs),
            idle: Duration::from_secs(self.idle_timeout_secs),
            tls_handshake: Duration::from_secs(self.tls_handshake_timeout_secs),
        }
    }
}

/// The longest any operator-listener timer may be set to (an hour): longer is no
/// longer a protection.
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// The timers of one operator connection, from [`HttpConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Until a request's headers are complete.
    pub header_read: Duration,
    /// From a request's headers until its response is written.
    pub request: Duration,
    /// No byte moving while no request is answered.
    pub idle: Duration,
    /// Until the TLS handshake is finished.
    pub tls_handshake: Duration,
}

/// When the operator listener speaks TLS. Plain HTTP is never allowed off loopback:
/// bearer tokens must not cross a network in clear text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpTls {
    /// Plain HTTP on a loopback address, TLS on any other.
    Auto,
    /// TLS on every address, loopback included.
    Always,
}

/// True when the operator listener on `addr` must speak TLS: on every address that
/// is not loopback (a token must never cross a network in clear text), and on
/// loopback too when configured `always`.
pub fn needs_tls(addr: SocketAddr, mode: HttpTls) -> bool {
    mode == HttpTls::Always || !addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_switches_nothing_off() {
        assert_eq!(HttpConfig::default().validate(), Ok(()));
        let zero_header = HttpConfig {
            header_read_timeout_secs: 0,
            ..HttpConfig::default()
        };
        assert_eq!(
            zero_header.validate().unwrap_err().0,
            "http.header_read_timeout_secs"
        );
        let long_idle = HttpConfig {
            idle_timeout_secs: MAX_TIMEOUT_SECS + 1,
            ..HttpConfig::default()
        };
        assert_eq!(
            long_idle.validate().unwrap_err().0,
            "http.idle_timeout_secs"
        );
        let no_connections = HttpConfig {
            max_connections: 0,
            ..HttpConfig::default()
        };
        assert_eq!(
            no_connections.validate().unwrap_err().0,
            "http.max_connections"
        );
        let per_client_above_total = HttpConfig {
            max_connections: 10,
            max_connections_per_client: 11,
            ..HttpConfig::default()
        };
        assert_eq!(
            per_client_above_total.validate().unwrap_err().0,
            "http.max_connections_per_client"
        );
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(!needs_tls(addr("127.0.0.1:4480"), HttpTls::Auto));
        assert!(!needs_tls(addr("127.8.9.1:4480"), HttpTls::Auto));
        assert!(!needs_tls(addr("[::1]:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("0.0.0.0:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("[::]:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("10.1.2.3:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("[::ffff:127.0.0.1]:4480"), HttpTls::Auto));
        assert!(needs_tls(addr("127.0.0.1:4480"), HttpTls::Always));
    }
}
