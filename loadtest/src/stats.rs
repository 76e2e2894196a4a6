//! Latency histograms per operation, errors by kind, and completions per second,
//! shared by every simulated device of a run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles of one operation, in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OpSummary {
    /// The operation (handshake, hello, push, …).
    pub op: String,
    /// How many completed.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// The slowest latency a histogram holds exactly (one hour); slower ones are
/// recorded as one hour.
const MAX_MICROS: u64 = 3_600_000_000;

#[derive(Default)]
struct Inner {
    ops: BTreeMap<&'static str, Histogram<u64>>,
    errors: BTreeMap<String, u64>,
    /// Completions per whole second since `start`, per operation.
    per_second: BTreeMap<u64, BTreeMap<&'static str, u64>>,
}

/// Where every device task records what it did. Cheap to clone.
#[derive(Clone)]
pub struct Stats {
    start: Instant,
    inner: Arc<Mutex<Inner>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Starts the clock of a run.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            inner: Arc::default(),
        }
    }

    /// Records one completed operation and how long it took (from its planned start,
    /// for open-loop operations, so a stalled gateway shows as latency).
    pub fn record(&self, op: &'static str, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let second = self.start.elapsed().as_secs();
        let mut inner = self.inner.lock().expect("stats lock");
        inner
            .ops
            .entry(op)
            .or_insert_with(|| {
                Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
            })
            .saturating_record(micros);
        *inner
            .per_second
            .entry(second)
            .or_default()
            .entry(op)
            .or_default() += 1;
    }

    /// Counts one error of a kind (for example `handshake: timed out`).
    pub fn error(&self, kind: impl Into<String>) {
        let mut inner = self.inner.lock().expect("stats lock");
        *inner.errors.entry(kind.into()).or_default() += 1;
    }

    /// How many of `op` completed so far.
    pub fn count(&self, op: &str) -> u64 {
        let inner = self.inner.lock().expect("stats lock");
        inner.ops.get(op).map_or(0, Histogram::len)
    }

    /// Total errors so far.
    pub fn error_count(&self) -> u64 {
        self.inner.lock().expect("stats lock").errors.values().sum()
    }

    /// Percentiles of every operation.
    pub fn summaries(&self) -> Vec<OpSummary> {
        let inner = self.inner.lock().expect("stats lock");
        inner
            .ops
            .iter()
            .map(|(op, h)| OpSummary {
                op: (*op).to_owned(),
                count: h.len(),
                p50_ms: ms(h.value_at_quantile(0.5)),
                p90_ms: ms(h.value_at_quantile(0.9)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                p999_ms: ms(h.value_at_quantile(0.999)),
                max_ms: ms(h.max()),
            })
            .collect()
    }

    /// The latency of `op` at quantile `q`, if any completed.
    pub fn quantile_ms(&self, op: &str, q: f64) -> Option<f64> {
        let inner = self.inner.lock().expect("stats lock");
        inner
            .ops
            .get(op)
            .filter(|h| !h.is_empty())
            .map(|h| ms(h.value_at_quantile(q)))
    }

    /// Errors by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.inner.lock().expect("stats lock").errors.clone()
    }

    /// Completions per second, per operation, from the start of the run.
    pub fn throughput(&self) -> BTreeMap<u64, BTreeMap<String, u64>> {
        let inner = self.inner.lock().expect("stats lock");
        inner
            .per_second
            .iter()
            .map(|(s, ops)| (*s, ops.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()))
            .collect()
    }

    /// Seconds since the run started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_errors_are_kept_per_operation() {
        let stats = Stats::new();
        for i in 1..=1000u64 {
            stats.record("push", Duration::from_micros(i * 1000));
        }
        stats.record("hello", Duration::from_millis(3));
        stats.error("push: timed out");
        stats.error("push: timed out");
        let s = stats.summaries();
        let push = s.iter().find(|o| o.op == "push").unwrap();
        assert_eq!(push.count, 1000);
        assert!((push.p50_ms - 500.0).abs() < 1.0, "{push:?}");
        assert!((push.p99_ms - 990.0).abs() < 1.0, "{push:?}");
        assert!((push.max_ms - 1000.0).abs() < 1.0, "{push:?}");
        assert_eq!(stats.count("hello"), 1);
        assert_eq!(stats.errors()["push: timed out"], 2);
        assert_eq!(stats.error_count(), 2);
        let total: u64 = stats.throughput().values().flat_map(|m| m.values()).sum();
        assert_eq!(total, 1001);
    }
}
