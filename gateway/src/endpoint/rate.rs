//! Handshake rate, to decide when to ask clients for address validation (QUIC Retry).
//!
//! A sliding one-second window over the last two whole seconds, so the rate does not
//! drop to zero at each second boundary. Pure: time is a parameter.

use protocol::Millis;

/// Counts events per second.
#[derive(Debug, Default, Clone)]
pub struct RateWindow {
    second: i64,
    current: u32,
    previous: u32,
}

impl RateWindow {
    /// Notes one event at `now` and returns the estimated events per second.
    pub fn note(&mut self, now: Millis) -> u32 {
        let second = now.div_euclid(1000);
        let into = now.rem_euclid(1000) as u64;
        if second != self.second {
            self.previous = if second == self.second + 1 {
                self.current
            } else {
                0
            };
            self.current = 0;
            self.second = second;
        }
        self.current = self.current.saturating_add(1);
        let carried = (u64::from(self.previous) * (1000 - into) / 1000) as u32;
        self.current.saturating_add(carried)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_counts_and_decays() {
        let mut w = RateWindow::default();
        for i in 0..100 {
            w.note(10_000 + i);
        }
        assert_eq!(w.note(10_500), 101);
        // Half-way through the next second, half of the last second still counts.
        assert_eq!(w.note(11_500), 1 + 101 / 2);
        // After a quiet second, nothing carries over.
        assert_eq!(w.note(13_000), 1);
    }
}
