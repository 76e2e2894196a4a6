//! The one clock of fieldsync, injected wherever "now" is read, so that tests can move
//! time 25 hours in a microsecond or run a device two hours fast (STYLE.md, "Inject
//! the clock").
//!
//! The gateway, the agent and the load test all take a [`SharedClock`]: the
//! [`SystemClock`] in production, a [`ManualClock`] in tests. It is its own crate,
//! not part of `protocol`, because `protocol` is sans-IO and never reads a clock (its
//! arithmetic takes `now` as an argument); the system clock has to live somewhere that
//! may read one, and both ends need the same trait.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::Millis;

/// One day in milliseconds (policy periods and report windows count whole days).
pub const DAY: Millis = 24 * 3_600_000;

/// A source of "now" in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to. Clones share one time, so a test keeps a
/// clone and moves the clock of the gateway or agent it handed the other to.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: Millis) -> Self {
        Self(Arc::new(AtomicI64::new(now)))
    }

    /// Moves the clock by `by` milliseconds (back with a negative amount).
    pub fn advance(&self, by: Millis) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, now: Millis) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(1_000);
        let shared: SharedClock = Arc::new(clock.clone());
        assert_eq!(shared.now(), 1_000);
        clock.advance(DAY);
        assert_eq!(shared.now(), 1_000 + DAY);
        clock.advance(-500);
        clock.set(42);
        assert_eq!(shared.now(), 42);
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800_000);
    }
}
