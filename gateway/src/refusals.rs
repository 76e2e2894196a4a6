//! Refused handshakes: counted on `/metrics` at once, written to the audit log only as
//! bounded summaries, off the handshake path (issue 19, point 1).
//!
//! An outsider can make the gateway refuse thousands of handshakes a second (no
//! certificate, a foreign CA, a wrong ALPN). Each used to be one audit row, written
//! while the handshake's task waited, on the same write lock as the group commit; the
//! audit log is append-only, so the attacker also grew it for ever. Now a refusal only
//! notes itself in a [`RefusalTally`] (a few counters and samples per reason, behind a
//! mutex held for microseconds), and a task writes at most one row per reason per
//! `device.refusal_audit_secs`: how many, first and last time, a few sample peers.
//!
//! The tally is pure (it takes `now`); the flush is the IO around it, and the job that
//! calls it is `jobs::refusal_audit`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use protocol::Millis;

use crate::metrics::HandshakeOutcome;
use store::Store;

/// What the audit log says about one refusal reason over one interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusalSummary {
    /// The refusal reason (the `outcome` label of `fieldsync_handshakes_total`).
    pub reason: &'static str,
    /// How many handshakes were refused for it.
    pub count: u64,
    /// When the first of them was refused.
    pub first: Millis,
    /// When the last of them was refused.
    pub last: Millis,
    /// The first few distinct peers (address, and the certificate fingerprint when one
    /// was presented), so that an operator sees who keeps knocking.
    pub samples: Vec<String>,
}

/// Refusals since the last flush, by reason. Its size is bounded by the number of
/// reasons times the sample limit, whatever the rate of refusals.
#[derive(Debug)]
pub struct RefusalTally {
    by_reason: BTreeMap<&'static str, RefusalSummary>,
    max_samples: usize,
}

impl RefusalTally {
    /// An empty tally keeping at most `max_samples` sample peers per reason.
    pub fn new(max_samples: usize) -> Self {
        Self {
            by_reason: BTreeMap::new(),
            max_samples,
        }
    }

    /// Notes one refusal of `peer` for `outcome` at `now`.
    pub fn note(&mut self, outcome: HandshakeOutcome, peer: &str, now: Millis) {
        let reason = outcome.as_str();
        let summary = self
            .by_reason
            .entry(reason)
            .or_insert_with(|| RefusalSummary {
                reason,
                count: 0,
                first: now,
                last: now,
                samples: Vec::new(),
            });
        summary.count += 1;
        summary.first = summary.first.min(now);
        summary.last = summary.last.max(now);
        if summary.samples.len() < self.max_samples && !summary.samples.iter().any(|s| s == peer) {
            summary.samples.push(peer.to_owned());
        }
    }

    /// Puts back a summary that could not be written, so that its refusals are counted
    /// in the next one.
    pub fn restore(&mut self, back: RefusalSummary) {
        let Some(now) = self.by_reason.get_mut(back.reason) else {
            self.by_reason.insert(back.reason, back);
            return;
        };
        now.count += back.count;
        now.first = now.first.min(back.first);
        now.last = now.last.max(back.last);
        let mut samples = back.samples;
        for s in std::mem::take(&mut now.samples) {
            if !samples.contains(&s) {
                samples.push(s);
            }
        }
        samples.truncate(self.max_samples);
        now.samples = samples;
    }

    /// Everything noted since the last call, one summary per reason, and a fresh start.
    pub fn take(&mut self) -> Vec<RefusalSummary> {
        std::mem::take(&mut self.by_reason).into_values().collect()
    }
}

/// The gateway's tally, shared by the handshake tasks and the writer.
#[derive(Debug)]
pub struct RefusalLog {
    tally: Mutex<RefusalTally>,
}

impl RefusalLog {
    /// An empty log keeping at most `max_samples` sample peers per reason and interval.
    pub fn new(max_samples: usize) -> Self {
        Self {
            tally: Mutex::new(RefusalTally::new(max_samples)),
        }
    }

    /// Notes a refusal; never waits for anything but the tally's mutex.
    pub fn note(&self, outcome: HandshakeOutcome, peer: &str, now: Millis) {
        self.tally
            .lock()
            .expect("refusal tally lock")
            .note(outcome, peer, now);
    }

    /// Writes one audit row per reason refused since the last flush; returns how many
    /// rows were written. A summary the store refuses is kept for the next flush.
    pub async fn flush(&self, store: &Store, now: Millis) -> usize {
        let summaries = self.tally.lock().expect("refusal tally lock").take();
        let mut written = 0;
        for summary in summaries {
            let row = store::RefusedConnections {
                reason: summary.reason,
                count: summary.count,
                first: summary.first,
                last: summary.last,
                samples: &summary.samples,
            };
            match store.audit_refused_connections(&row, now).await {
                Ok(_) => written += 1,
                Err(e) => {
                    tracing::warn!(error = %e, reason = summary.reason, "cannot audit refused handshakes; kept for the next summary");
                    self.tally
                        .lock()
                        .expect("refusal tally lock")
                        .restore(summary);
                }
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_one_summary_per_reason_with_bounded_samples() {
        let mut tally = RefusalTally::new(3);
        for n in 0..10_000 {
            tally.note(
                HandshakeOutcome::NoCertificate,
                &format!("192.0.2.{}:4433", n % 50),
                1_000 + n,
            );
        }
        tally.note(HandshakeOutcome::BadChain, "198.51.100.1:1", 500);
        let summaries = tally.take();
        assert_eq!(summaries.len(), 2);
        let no_cert = summaries
            .iter()
            .find(|s| s.reason == "no_certificate")
            .unwrap();
        assert_eq!(no_cert.count, 10_000);
        assert_eq!((no_cert.first, no_cert.last), (1_000, 10_999));
        assert_eq!(
            no_cert.samples,
            ["192.0.2.0:4433", "192.0.2.1:4433", "192.0.2.2:4433"]
        );
        assert!(tally.take().is_empty(), "taking starts afresh");
    }

    #[test]
    fn a_summary_put_back_is_merged_into_the_next() {
        let mut tally = RefusalTally::new(2);
        tally.note(HandshakeOutcome::Expired, "a", 10);
        let failed = tally.take().pop().unwrap();
        tally.note(HandshakeOutcome::Expired, "b", 20);
        tally.note(HandshakeOutcome::Expired, "c", 30);
        tally.restore(failed);
        let merged = tally.take().pop().unwrap();
        assert_eq!(merged.count, 3);
        assert_eq!((merged.first, merged.last), (10, 30));
        assert_eq!(merged.samples, ["a", "b"]);
    }
}
