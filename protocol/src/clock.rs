//! Device clocks on gateway time (DOMAIN R2): "a corrected time can never lie after
//! the moment the gateway hears of it: a clock that says so is implausible, flagged,
//! and the deadline counts from when the gateway heard of the recording (nobody gains
//! time by a wrong clock)".
//!
//! A device time is corrected by the skew measured at hello ([`ClockSkew`]). The result
//! is implausible when it lies more than `tolerance_secs` after the moment the gateway
//! heard of it (the record arrived, the recording was announced), or when the measured
//! skew itself is larger than `max_skew_secs` (a clock that far off may have been reset
//! between the recording and the sync, so the correction cannot be trusted). An
//! implausible time is replaced by the moment the gateway heard of it.

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::deadline::ClockSkew;

/// How far device clocks are trusted, read from `[policy.clock]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockPolicy {
    /// How far (seconds) a corrected device time may lie after the moment the gateway
    /// heard of it before it is implausible: the skew is measured to within a round
    /// trip, and a device's clock drifts between two hellos (default 300).
    pub tolerance_secs: u32,
    /// The largest skew (seconds, either sign) a device clock may have before it is
    /// implausible (default 86400, a day: a clock hours off is what the skew correction
    /// exists for; one reset to 2000 is not correctable).
    pub max_skew_secs: u32,
}

impl Default for ClockPolicy {
    fn default() -> Self {
        ClockPolicy {
            tolerance_secs: 300,
            max_skew_secs: 86_400,
        }
    }
}

/// Why a [`ClockPolicy`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockPolicyError {
    /// A bound of zero flags every device whose clock is a millisecond off.
    #[error("{field} must be at least 1")]
    Zero {
        /// The field.
        field: &'static str,
    },
}

impl ClockPolicy {
    /// Checks the figures before the service starts.
    pub fn validate(&self) -> Result<(), ClockPolicyError> {
        if self.tolerance_secs == 0 {
            return Err(ClockPolicyError::Zero {
                field: "tolerance_secs",
            });
        }
        if self.max_skew_secs == 0 {
            return Err(ClockPolicyError::Zero {
                field: "max_skew_secs",
            });
        }
        Ok(())
    }

    /// The tolerance in milliseconds.
    pub fn tolerance_ms(&self) -> Millis {
        Millis::from(self.tolerance_secs) * 1000
    }

    /// True when a skew this large makes the device's clock implausible.
    pub fn skew_implausible(&self, skew: ClockSkew) -> bool {
        skew.as_millis().unsigned_abs() > u64::from(self.max_skew_secs) * 1000
    }
}

/// True when `time` lies more than `tolerance_ms` after `now` (both on one clock): the
/// gateway's test of a corrected device time against the moment it heard of it, and
/// the agent's own test of `record --at` against its clock before it seals a record.
pub fn beyond_tolerance(time: Millis, now: Millis, tolerance_ms: Millis) -> bool {
    time > now.saturating_add(tolerance_ms)
}

/// A device time put on gateway time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayTime {
    /// The time on the gateway's clock: the corrected device time, or (when that is
    /// implausible) the moment the gateway heard of it.
    pub at: Millis,
    /// The device's clock could not be trusted for this time.
    pub implausible: bool,
}

/// Puts `device_ms` on gateway time: corrected by `skew`, unless that is implausible
/// (see the module docs), in which case it is `heard_at`.
pub fn on_gateway_time(
    device_ms: Millis,
    skew: ClockSkew,
    heard_at: Millis,
    policy: &ClockPolicy,
) -> GatewayTime {
    let corrected = skew.to_gateway_time(device_ms);
    let future = beyond_tolerance(corrected, heard_at, policy.tolerance_ms());
    if future || policy.skew_implausible(skew) {
        GatewayTime {
            at: heard_at,
            implausible: true,
        }
    } else {
        GatewayTime {
            at: corrected,
            implausible: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: Millis = 3_600_000;
    const T0: Millis = 1_777_624_200_000;

    #[test]
    fn a_plausible_time_is_corrected_by_the_skew() {
        let p = ClockPolicy::default();
        let skew = ClockSkew::measure(T0, T0 - 60_000);
        let t = on_gateway_time(T0 - 2 * H - 60_000, skew, T0, &p);
        assert_eq!(
            t,
            GatewayTime {
                at: T0 - 2 * H,
                implausible: false
            }
        );
        // Within the tolerance after hearing of it is still plausible.
        let t = on_gateway_time(T0 + 299_000, ClockSkew::ZERO, T0, &p);
        assert!(!t.implausible);
    }

    #[test]
    fn a_time_in_the_future_counts_from_when_the_gateway_heard_of_it() {
        let p = ClockPolicy::default();
        // `agent record --at 2030-01-01T00:00:00Z` on a device with a right clock.
        let t = on_gateway_time(1_893_456_000_000, ClockSkew::ZERO, T0, &p);
        assert_eq!(
            t,
            GatewayTime {
                at: T0,
                implausible: true
            }
        );
    }

    #[test]
    fn a_clock_reset_to_2000_between_recording_and_sync_gains_nothing() {
        let p = ClockPolicy::default();
        // Recorded at T0 - 1 h with a right clock; the clock then reset to 2000-01-01,
        // so the hello measures a skew of about 26 years.
        let skew = ClockSkew::measure(T0, 946_684_800_000);
        let t = on_gateway_time(T0 - H, skew, T0, &p);
        assert_eq!(
            t,
            GatewayTime {
                at: T0,
                implausible: true
            }
        );
        // A time made after the reset corrects to the past but the skew is too large.
        let t = on_gateway_time(946_684_800_000 - H, skew, T0, &p);
        assert_eq!(
            t,
            GatewayTime {
                at: T0,
                implausible: true
            }
        );
    }

    #[test]
    fn the_agent_refuses_times_beyond_the_tolerance() {
        let p = ClockPolicy::default();
        assert!(!beyond_tolerance(T0 + 300_000, T0, p.tolerance_ms()));
        assert!(beyond_tolerance(T0 + 300_001, T0, p.tolerance_ms()));
        assert_eq!(
            ClockPolicy {
                tolerance_secs: 0,
                ..p
            }
            .validate(),
            Err(ClockPolicyError::Zero {
                field: "tolerance_secs"
            })
        );
    }

    proptest! {
        #[test]
        fn never_after_the_moment_heard_plus_tolerance(
            device in any::<i64>(), skew in any::<i64>(), heard in any::<i64>()
        ) {
            let p = ClockPolicy::default();
            let t = on_gateway_time(device, ClockSkew::from_millis(skew), heard, &p);
            prop_assert!(t.at <= heard.saturating_add(p.tolerance_ms()));
        }
    }
}
