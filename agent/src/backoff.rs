//! Reconnect delays: exponential backoff with jitter, pure (the random draw is an
//! argument), so its bounds are unit tests rather than sleeps.
//!
//! "Equal jitter": after `n` failures the delay is uniformly drawn from
//! `[cap/2, cap]`, with `cap = min(max, initial × 2ⁿ)`. Half the delay is random, so
//! a station full of terminals that lost the gateway together does not reconnect in
//! lock-step; the other half keeps a floor, so a dead gateway is not hammered.

use std::time::Duration;

/// Backoff state of one reconnect loop.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff starting at `initial` and never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// The delay before the next attempt after one more failure; `jitter` is a
    /// uniform draw from `[0, 1)`.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let cap = self.cap();
        self.failures = self.failures.saturating_add(1);
        let jitter = jitter.clamp(0.0, 1.0);
        cap / 2 + (cap / 2).mul_f64(jitter)
    }

    /// The upper bound of the next delay.
    pub fn cap(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets the failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_and_stay_within_the_jitter_band() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let caps: Vec<_> = (0..8)
            .map(|_| {
                let cap = b.cap();
                let low = b.clone().next_delay(0.0);
                let high = b.clone().next_delay(1.0);
                assert_eq!(low, cap / 2);
                assert_eq!(high, cap);
                b.next_delay(0.5);
                cap.as_millis()
            })
            .collect();
        assert_eq!(caps, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
    }

    #[test]
    fn a_success_starts_over_and_huge_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        for _ in 0..1000 {
            b.next_delay(0.3);
        }
        assert_eq!(b.cap(), Duration::from_secs(300));
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.cap(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..10 {
            let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
            seen.insert(b.next_delay(f64::from(i) / 10.0));
        }
        assert_eq!(seen.len(), 10);
    }
}
