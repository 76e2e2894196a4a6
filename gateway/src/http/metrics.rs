//! What the operator listener shows on `/metrics`: connections open, turned away by
//! which cap, and closed by which timer, so an operator sees a slow-client attack (and
//! whether the caps fit the honest load) without reading logs.

use prometheus::{IntCounterVec, IntGauge, Opts};

use super::clients::Refused;

/// Why the listener closed a connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The request's headers were not complete within `http.header_read_timeout_secs`.
    HeaderTimeout,
    /// A request was not answered within `http.request_timeout_secs`.
    RequestTimeout,
    /// Nothing moved for `http.idle_timeout_secs`.
    IdleTimeout,
    /// The TLS handshake did not finish within `http.tls_handshake_timeout_secs`.
    HandshakeTimeout,
    /// The TLS handshake failed (plain HTTP on a TLS port, no common cipher, …).
    HandshakeFailed,
}

impl Closed {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::RequestTimeout => "request_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::HandshakeTimeout => "handshake_timeout",
            Closed::HandshakeFailed => "handshake_failed",
        }
    }
}

/// The operator listener's metrics.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    open: IntGauge,
    refused: IntCounterVec,
    closed: IntCounterVec,
}

impl HttpMetrics {
    /// Registers the metrics with the gateway's registry.
    pub fn register(metrics: &crate::metrics::Metrics) -> Self {
        let open = IntGauge::new(
            "fieldsync_http_connections_open",
            "Operator-listener connections open now (TLS handshakes included)",
        )
        .expect("valid metric");
        let refused = IntCounterVec::new(
            Opts::new(
                "fieldsync_http_connections_refused_total",
                "Operator-listener connections closed at once because a cap was reached",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let closed = IntCounterVec::new(
            Opts::new(
                "fieldsync_http_connections_timed_out_total",
                "Operator-listener connections closed by a timer or a failed TLS handshake",
            ),
            &["reason"],
        )
        .expect("valid metric");
        metrics.register(Box::new(open.clone()));
        metrics.register(Box::new(refused.clone()));
        metrics.register(Box::new(closed.clone()));
        Self {
            open,
            refused,
            closed,
        }
    }

    /// Counts a connection admitted.
    pub fn opened(&self) {
        self.open.inc();
    }

    /// Counts a connection ended.
    pub fn ended(&self) {
        self.open.dec();
    }

    /// Counts a connection turned away.
    pub fn refused(&self, why: Refused) {
        self.refused.with_label_values(&[why.as_str()]).inc();
    }

    /// Counts a connection the listener closed.
    pub fn closed(&self, why: Closed) {
        self.closed.with_label_values(&[why.as_str()]).inc();
    }
}
