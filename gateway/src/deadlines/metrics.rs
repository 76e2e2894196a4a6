//! The recording metrics on `/metrics`: overdue recordings, silent devices and devices
//! with implausible clocks (set by the deadline watcher), bytes received, recordings
//! stored and recordings with implausible times (by the recording handlers).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

use crate::metrics::Metrics;

/// Recording metrics, registered in the gateway's registry.
#[derive(Clone, Debug)]
pub struct RecordingMetrics {
    /// Recordings not stored whose deadline has passed, at the last watcher pass.
    pub overdue: IntGauge,
    /// Devices in service silent for `silent_device_hours` or more, at the last pass.
    pub silent_devices: IntGauge,
    /// Devices whose clock is flagged implausible, at the last pass.
    pub clock_implausible_devices: IntGauge,
    /// Open case flags by rule, at the last pass.
    pub case_flags: prometheus::IntGaugeVec,
    /// Recording bytes made durable in staging.
    pub bytes_received: IntCounter,
    /// Recording bytes read from devices' upload streams, durable or not yet: they
    /// become durable at the end of their chunk, so the difference to `bytes_received`
    /// is what is in flight, and this one moves while a large chunk arrives.
    pub bytes_streamed: IntCounter,
    /// Recordings stored, by final state (`uploaded_on_time`, `uploaded_late`).
    pub stored: IntCounterVec,
    /// Uploads refused because the bytes did not match the announced SHA-256.
    pub hash_mismatches: IntCounter,
    /// Recording requests refused or chunks cut off to bound what one device (or all)
    /// may hold, by reason (`stalled`, `busy`, `too_many_uploads`,
    /// `too_many_pending`, `staging_quota`).
    pub upload_refusals: IntCounterVec,
    /// Abandoned staging files removed after `media.staging_max_age_hours`.
    pub staging_removed: IntCounter,
    /// Staged files dropped before publishing because the disk did not hold what was
    /// received (read back and checked before every publish).
    pub staged_damaged: IntCounter,
    /// Seconds spent reading each staged file back and checking its size and SHA-256
    /// before it is published: what that check costs, for the upload benchmark and
    /// for an operator whose disk is slow.
    pub read_back_seconds: Histogram,
    /// Recordings announced with times the gateway could not trust (DOMAIN R2).
    pub clock_implausible: IntCounter,
    /// Held for the whole of a watcher pass, so two passes (the watcher's and one
    /// asked for) never interleave and an older pass never sets a gauge last.
    pub(crate) pass: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Set once the watcher's first pass after start has finished.
    pub(crate) first_pass: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl RecordingMetrics {
    /// Creates the metrics and registers them in `metrics`' registry.
    pub fn register(metrics: &Metrics) -> Self {
        let overdue = IntGauge::new(
            "fieldsync_recordings_overdue",
            "Recordings not stored whose upload deadline has passed",
        )
        .expect("valid metric");
        let silent_devices = IntGauge::new(
            "fieldsync_devices_silent",
            "Devices in service not synced for silent_device_hours or more",
        )
        .expect("valid metric");
        let clock_implausible_devices = IntGauge::new(
            "fieldsync_devices_clock_implausible",
            "Devices whose clock is flagged implausible (skew beyond the bound, or times in the future)",
        )
        .expect("valid metric");
        let case_flags = prometheus::IntGaugeVec::new(
            Opts::new(
                "fieldsync_case_flags_open",
                "Open full-process flags on cases, by rule",
            ),
            &["flag"],
        )
        .expect("valid metric");
        let bytes_received = IntCounter::new(
            "fieldsync_recording_bytes_received_total",
            "Recording bytes made durable in staging",
        )
        .expect("valid metric");
        let bytes_streamed = IntCounter::new(
            "fieldsync_recording_bytes_streamed_total",
            "Recording bytes read from upload streams (durable at the end of their chunk)",
        )
        .expect("valid metric");
        let stored = IntCounterVec::new(
            Opts::new(
                "fieldsync_recordings_stored_total",
                "Recordings stored, by final state",
            ),
            &["state"],
        )
        .expect("valid metric");
        let hash_mismatches = IntCounter::new(
            "fieldsync_recording_hash_mismatches_total",
            "Uploads refused because the bytes did not have the announced SHA-256",
        )
        .expect("valid metric");
        let upload_refusals = IntCounterVec::new(
            Opts::new(
                "fieldsync_upload_refusals_total",
                "Recording requests refused or chunks cut off by the upload bounds, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let staging_removed = IntCounter::new(
            "fieldsync_staging_files_removed_total",
            "Abandoned staging files removed after media.staging_max_age_hours",
        )
        .expect("valid metric");
        let staged_damaged = IntCounter::new(
            "fieldsync_recording_staged_damaged_total",
            "Staged recordings dropped before publishing because the copy on disk differed from what was received",
        )
        .expect("valid metric");
        let read_back_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "fieldsync_recording_read_back_seconds",
                "Time to read a staged recording back and check its size and SHA-256 before publishing it",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("valid metric");
        let clock_implausible = IntCounter::new(
            "fieldsync_recordings_clock_implausible_total",
            "Recordings announced with implausible device times (deadline from the announcement)",
        )
        .expect("valid metric");
        for c in [
            Box::new(overdue.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(staged_damaged.clone()),
            Box::new(read_back_seconds.clone()),
            Box::new(upload_refusals.clone()),
            Box::new(staging_removed.clone()),
            Box::new(silent_devices.clone()),
            Box::new(clock_implausible_devices.clone()),
            Box::new(case_flags.clone()),
            Box::new(bytes_received.clone()),
            Box::new(bytes_streamed.clone()),
            Box::new(stored.clone()),
            Box::new(hash_mismatches.clone()),
            Box::new(clock_implausible.clone()),
        ] {
            metrics.register(c);
        }
        Self {
            overdue,
            silent_devices,
            clock_implausible_devices,
            case_flags,
            bytes_received,
            bytes_streamed,
            stored,
            hash_mismatches,
            upload_refusals,
            staging_removed,
            staged_damaged,
            read_back_seconds,
            clock_implausible,
            pass: std::sync::Arc::default(),
            first_pass: std::sync::Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}
