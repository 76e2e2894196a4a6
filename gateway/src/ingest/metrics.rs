//! Metrics of field-record ingest and identity checks (issue 5, point 6), registered
//! in the gateway's own registry beside the endpoint's.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};

use crate::metrics::Metrics;
use store::IngestSummary;

/// Counters and histograms of ingest.
#[derive(Clone)]
pub struct RecordMetrics {
    /// Field records by outcome: `stored`, `duplicate`, `rejected`.
    pub records: IntCounterVec,
    /// Stored records flagged under the two-officer rule.
    pub two_officer_violations: IntCounter,
    /// Chain breaks counted beyond their device's cap of tamper flags (not kept).
    pub tamper_counted: IntCounter,
    /// Pushes refused as busy because waiting pushes held `ingest.queue_bytes`.
    pub busy: IntCounter,
    /// Stored records whose device time could not be trusted (DOMAIN R2).
    pub clock_implausible: IntCounter,
    /// Records per group commit.
    pub batch_records: Histogram,
    /// Pushes (requests, usually from different connections) per group commit.
    pub batch_requests: Histogram,
    /// Time from BEGIN to COMMIT of a group, in seconds.
    pub commit_seconds: Histogram,
    /// Group commits that failed (every caller got an error).
    pub failed_commits: IntCounterVec,
    /// Identity checks by mode (`online`/`offline`) and verdict.
    pub identity_checks: IntCounterVec,
}

impl RecordMetrics {
    /// Creates the metrics and registers them with the gateway's registry.
    pub fn register(metrics: &Metrics) -> Self {
        let records = IntCounterVec::new(
            Opts::new("fieldsync_records_total", "Field records by ingest outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let two_officer_violations = IntCounter::new(
            "fieldsync_two_officer_violations_total",
            "Stored field records that break the two-officer rule",
        )
        .expect("valid metric");
        let tamper_counted = IntCounter::new(
            "fieldsync_tamper_breaks_counted_total",
            "Chain breaks counted beyond their device's cap of tamper flags instead of kept",
        )
        .expect("valid metric");
        let busy = IntCounter::new(
            "fieldsync_ingest_busy_total",
            "Record pushes refused as busy: waiting pushes held ingest.queue_bytes",
        )
        .expect("valid metric");
        let clock_implausible = IntCounter::new(
            "fieldsync_records_clock_implausible_total",
            "Stored field records whose device time was implausible (counted from arrival)",
        )
        .expect("valid metric");
        let batch_records = Histogram::with_opts(
            HistogramOpts::new(
                "fieldsync_ingest_batch_records",
                "Field records per group commit",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
            ]),
        )
        .expect("valid metric");
        let batch_requests = Histogram::with_opts(
            HistogramOpts::new(
                "fieldsync_ingest_batch_requests",
                "Record pushes (requests) per group commit",
            )
            .buckets(vec![
                1.0, 2.0, 3.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0,
            ]),
        )
        .expect("valid metric");
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "fieldsync_ingest_commit_seconds",
                "Latency of one group commit (begin to durable commit)",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("valid metric");
        let failed_commits = IntCounterVec::new(
            Opts::new(
                "fieldsync_ingest_failed_commits_total",
                "Group commits that failed; none of their records was acknowledged",
            ),
            &["backend"],
        )
        .expect("valid metric");
        let identity_checks = IntCounterVec::new(
            Opts::new(
                "fieldsync_identity_checks_total",
                "Identity checks stored, by mode and verdict",
            ),
            &["mode", "verdict"],
        )
        .expect("valid metric");
        for c in [
            Box::new(records.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(two_officer_violations.clone()),
            Box::new(tamper_counted.clone()),
            Box::new(busy.clone()),
            Box::new(clock_implausible.clone()),
            Box::new(batch_records.clone()),
            Box::new(batch_requests.clone()),
            Box::new(commit_seconds.clone()),
            Box::new(failed_commits.clone()),
            Box::new(identity_checks.clone()),
        ] {
            metrics.register(c);
        }
        Self {
            records,
            two_officer_violations,
            tamper_counted,
            busy,
            clock_implausible,
            batch_records,
            batch_requests,
            commit_seconds,
            failed_commits,
            identity_checks,
        }
    }

    /// Counts the outcome of one group commit.
    pub fn committed(&self, summary: &IngestSummary, requests: usize, seconds: f64) {
        self.records
            .with_label_values(&["stored"])
            .inc_by(summary.stored);
        self.records
            .with_label_values(&["duplicate"])
            .inc_by(summary.duplicate);
        self.records
            .with_label_values(&["rejected"])
            .inc_by(summary.rejected);
        self.two_officer_violations
            .inc_by(summary.two_officer_violations);
        self.clock_implausible.inc_by(summary.clock_implausible);
        self.tamper_counted.inc_by(summary.tamper_counted);
        self.batch_records
            .observe((summary.stored + summary.duplicate + summary.rejected) as f64);
        self.batch_requests.observe(requests as f64);
        self.commit_seconds.observe(seconds);
    }
}

impl std::fmt::Debug for RecordMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordMetrics")
    }
}
