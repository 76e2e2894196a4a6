//! Prometheus metrics of the gateway, served on the operator listener at `/metrics`.
//!
//! One [`Metrics`] value owns its own registry (not the global one) so that several
//! gateways in one test process do not share counters.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Handshake outcomes, as the `outcome` label of `fieldsync_handshakes_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandshakeOutcome {
    /// Admitted.
    Ok,
    /// Chains to the fleet CA, but the fingerprint is not enrolled.
    Unknown,
    /// Enrolled, but revoked.
    Revoked,
    /// Enrolled, but suspended.
    Suspended,
    /// Enrolled, but reported lost.
    Lost,
    /// Enrolled, but retired.
    Retired,
    /// Does not chain to the fleet CA (or is a CA certificate, or malformed).
    BadChain,
    /// Outside its validity period on the gateway's clock: expired, or not valid yet
    /// (TLS names both `certificate_expired`).
    Expired,
    /// Lacks the clientAuth extended key usage.
    BadUsage,
    /// No client certificate at all.
    NoCertificate,
    /// The client did not offer the `fieldsync/1` ALPN.
    WrongAlpn,
    /// The handshake failed for another reason (timeout, transport); not a refusal.
    Failed,
}

impl HandshakeOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeOutcome::Ok => "ok",
            HandshakeOutcome::Unknown => "unknown",
            HandshakeOutcome::Revoked => "revoked",
            HandshakeOutcome::Suspended => "suspended",
            HandshakeOutcome::Lost => "lost",
            HandshakeOutcome::Retired => "retired",
            HandshakeOutcome::BadChain => "bad_chain",
            HandshakeOutcome::Expired => "expired",
            HandshakeOutcome::BadUsage => "bad_usage",
            HandshakeOutcome::NoCertificate => "no_certificate",
            HandshakeOutcome::WrongAlpn => "wrong_alpn",
            HandshakeOutcome::Failed => "failed",
        }
    }
}

/// The gateway's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Device connections open now.
    pub live_connections: IntGauge,
    /// Handshakes by outcome.
    pub handshakes: IntCounterVec,
    /// Requests by kind and outcome (`ok` or an error code name).
    pub requests: IntCounterVec,
    /// Request latency by kind, in seconds.
    pub request_seconds: HistogramVec,
    /// Connections closed by the gateway, by close reason.
    pub closed: IntCounterVec,
    /// Handshakes answered with a QUIC Retry (address validation under load).
    pub retries: IntCounter,
}

impl Metrics {
    /// Creates the metrics in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let live_connections =
            IntGauge::new("fieldsync_connections_live", "Device connections open now")
                .expect("valid metric");
        let handshakes = IntCounterVec::new(
            Opts::new("fieldsync_handshakes_total", "Device handshakes by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let requests = IntCounterVec::new(
            Opts::new(
                "fieldsync_requests_total",
                "Device requests by kind and outcome",
            ),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "fieldsync_request_duration_seconds",
                "Device request latency",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["kind"],
        )
        .expect("valid metric");
        let closed = IntCounterVec::new(
            Opts::new(
                "fieldsync_connections_closed_total",
                "Connections closed by the gateway",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let retries = IntCounter::new(
            "fieldsync_handshake_retries_total",
            "Handshakes answered with a QUIC Retry because the handshake rate was high",
        )
        .expect("valid metric");
        for c in [
            Box::new(retries.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(live_connections.clone()),
            Box::new(handshakes.clone()),
            Box::new(requests.clone()),
            Box::new(request_seconds.clone()),
            Box::new(closed.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Self {
            registry,
            live_connections,
            handshakes,
            requests,
            request_seconds,
            closed,
            retries,
        }
    }

    /// Counts one handshake outcome.
    pub fn handshake(&self, outcome: HandshakeOutcome) {
        self.handshakes.with_label_values(&[outcome.as_str()]).inc();
    }

    /// How many handshakes ended with `outcome` (for tests and reports).
    pub fn handshake_count(&self, outcome: HandshakeOutcome) -> u64 {
        self.handshakes.with_label_values(&[outcome.as_str()]).get()
    }

    /// Registers more collectors (later subsystems add their own).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        self.registry
            .register(collector)
            .expect("metric registered once");
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
