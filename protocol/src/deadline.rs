//! The 24-hour upload rule (DOMAIN R2): when a recording must be stored, what state
//! its upload is in, and which devices have gone silent.
//!
//! "After an audio/video record is made, officers may not keep it themselves; within
//! 24 hours it must be stored" (000). Everything here is arithmetic on gateway time:
//! the caller passes `now`, so a test can move 25 hours forward in one line. Device
//! timestamps are corrected by the [`ClockSkew`] measured when the device connects,
//! because a device whose clock runs fast must not gain (or lose) hours of deadline.
//!
//! All arithmetic saturates: a corrupt timestamp from a device gives a far-off (or
//! long-past) deadline, never a panic in the gateway.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Millis;

/// Milliseconds in one hour; policy figures are in hours, timestamps in milliseconds.
pub const MILLIS_PER_HOUR: Millis = 3_600_000;

fn hours(h: u32) -> Millis {
    // u32::MAX hours is about 1.5e16 ms, far below i64::MAX: this cannot overflow.
    Millis::from(h) * MILLIS_PER_HOUR
}

/// The deadline figures of DOMAIN R2, read from deployment configuration.
///
/// Every field has the default of policy document 000, so an empty `[deadline]` table
/// in TOML gives the national rule. Unknown keys are rejected so that a misspelt key is
/// a startup error instead of a silently ignored setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadlinePolicy {
    /// Hours after the end of a recording by which it must be stored (default 24).
    pub upload_deadline_hours: u32,
    /// Hours before the deadline from which an unstored recording is "due soon", so
    /// the officer is warned while there is still time to reach a station (default 4).
    pub due_soon_hours: u32,
    /// Hours without a sync after which a device is flagged as possibly holding
    /// recordings (default 24, the same figure as the deadline: a device silent that
    /// long may already hold an overdue recording).
    pub silent_device_hours: u32,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        DeadlinePolicy {
            upload_deadline_hours: 24,
            due_soon_hours: 4,
            silent_device_hours: 24,
        }
    }
}

/// Why a [`DeadlinePolicy`] read from configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlinePolicyError {
    /// A figure is zero, which would make every recording overdue (or every device
    /// silent) the moment it exists.
    #[error("{field} must be at least 1 hour")]
    ZeroHours {
        /// The configuration key.
        field: &'static str,
    },
    /// The warning window is as long as the deadline itself, so a recording would be
    /// "due soon" from the moment it ends and the warning would mean nothing.
    #[error(
        "due_soon_hours ({due_soon_hours}) must be less than \
         upload_deadline_hours ({upload_deadline_hours})"
    )]
    DueSoonNotBeforeDeadline {
        /// The configured warning window.
        due_soon_hours: u32,
        /// The configured deadline.
        upload_deadline_hours: u32,
    },
}

impl DeadlinePolicy {
    /// Checks the figures before the service starts, so a bad config fails at startup
    /// and not in the middle of an upload report.
    pub fn validate(&self) -> Result<(), DeadlinePolicyError> {
        for (field, value) in [
            ("upload_deadline_hours", self.upload_deadline_hours),
            ("due_soon_hours", self.due_soon_hours),
            ("silent_device_hours", self.silent_device_hours),
        ] {
            if value == 0 {
                return Err(DeadlinePolicyError::ZeroHours { field });
            }
        }
        if self.due_soon_hours >= self.upload_deadline_hours {
            return Err(DeadlinePolicyError::DueSoonNotBeforeDeadline {
                due_soon_hours: self.due_soon_hours,
                upload_deadline_hours: self.upload_deadline_hours,
            });
        }
        Ok(())
    }
}

/// How far a device's clock is behind the gateway's: gateway time − device time, in
/// milliseconds, measured when the device says hello.
///
/// Positive means the device clock is slow, negative that it is fast. The measurement
/// is off by at most one network round trip (seconds), which is noise against a
/// deadline counted in hours; a clock hours off is what it exists to correct.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ClockSkew(Millis);

impl ClockSkew {
    /// No skew: the device clock agrees with the gateway.
    pub const ZERO: ClockSkew = ClockSkew(0);

    /// Measures the skew from the gateway's clock and the device's clock read at (about)
    /// the same instant: the device's hello carries `device_now`, the gateway stamps its
    /// arrival with `gateway_now`.
    pub fn measure(gateway_now: Millis, device_now: Millis) -> Self {
        ClockSkew(gateway_now.saturating_sub(device_now))
    }

    /// A skew stored earlier (for example, with the device's last session).
    pub fn from_millis(ms: Millis) -> Self {
        ClockSkew(ms)
    }

    /// The skew in milliseconds (gateway − device).
    pub fn as_millis(self) -> Millis {
        self.0
    }

    /// Converts a timestamp the device wrote with its own clock to gateway time.
    pub fn to_gateway_time(self, device_ms: Millis) -> Millis {
        device_ms.saturating_add(self.0)
    }
}

/// The deadline of a recording, in gateway time: its corrected end plus
/// `upload_deadline_hours`.
///
/// `ended_at_device` is the end of the recording as the device's clock said it, so a
/// device clock two hours fast does not take two hours off the officer's deadline.
pub fn upload_deadline(
    ended_at_device: Millis,
    skew: ClockSkew,
    policy: &DeadlinePolicy,
) -> Millis {
    skew.to_gateway_time(ended_at_device)
        .saturating_add(hours(policy.upload_deadline_hours))
}

/// Where a recording stands against its deadline (DOMAIN R2). Every recording has
/// exactly one state; the upload report counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Not stored yet, and the deadline is more than `due_soon_hours` away.
    Pending,
    /// Not stored yet, the deadline is within `due_soon_hours`: warn the officer.
    DueSoon,
    /// Not stored, and the deadline has passed: the rule is being broken right now.
    Overdue,
    /// Stored at or before the deadline. Final.
    UploadedOnTime,
    /// Stored after the deadline. Final: a late upload stays late in the record.
    UploadedLate,
}

impl UploadState {
    /// Every state, in declaration order.
    pub const ALL: &'static [UploadState] = &[
        UploadState::Pending,
        UploadState::DueSoon,
        UploadState::Overdue,
        UploadState::UploadedOnTime,
        UploadState::UploadedLate,
    ];

    /// The stable spelling used on the wire, in the store and in CSV reports (the same
    /// as the serde spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Pending => "pending",
            UploadState::DueSoon => "due_soon",
            UploadState::Overdue => "overdue",
            UploadState::UploadedOnTime => "uploaded_on_time",
            UploadState::UploadedLate => "uploaded_late",
        }
    }

    /// True once the gateway holds the recording; the state can no longer change.
    pub fn is_stored(self) -> bool {
        matches!(
            self,
            UploadState::UploadedOnTime | UploadState::UploadedLate
        )
    }
}

impl fmt::Display for UploadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a recording's upload at gateway time `now`.
///
/// `stored_at` is when the gateway made the recording durable (DOMAIN R2: every byte
/// held, SHA-256 verified, durable), or `None` if it has not.
///
/// Boundaries: the deadline instant itself still belongs to the officer, so a
/// recording stored exactly at the deadline is on time, and an unstored one is due
/// soon, not overdue, until `now` passes the deadline. The due-soon window is closed
/// at both ends: `deadline − due_soon_hours <= now <= deadline`.
pub fn upload_state(
    deadline: Millis,
    stored_at: Option<Millis>,
    now: Millis,
    policy: &DeadlinePolicy,
) -> UploadState {
    let due_soon_from = deadline.saturating_sub(hours(policy.due_soon_hours));
    match stored_at {
        Some(stored) if stored <= deadline => UploadState::UploadedOnTime,
        Some(_) => UploadState::UploadedLate,
        None if now > deadline => UploadState::Overdue,
        None if now >= due_soon_from => UploadState::DueSoon,
        None => UploadState::Pending,
    }
}

/// How late a recording is: how far `stored_at_or_now` (when it was stored, or now if
/// it is not stored yet) is past the deadline; zero when it is not late.
pub fn lateness(deadline: Millis, stored_at_or_now: Millis) -> Millis {
    stored_at_or_now.saturating_sub(deadline).max(0)
}

/// True when a device has not synced for more than `silent_device_hours` and may be
/// holding recordings (DOMAIN R2), so the equipment manager should chase it.
///
/// Silence is counted from the later of the device's last sync and its enrollment:
/// a device enrolled an hour ago and never seen is not yet suspicious, but one
/// enrolled a week ago and never seen is. Like the deadline, the boundary instant
/// itself is not yet silent. The caller decides which devices to ask about (in
/// practice, those in service).
pub fn is_silent(
    last_seen: Option<Millis>,
    enrolled_at: Millis,
    now: Millis,
    policy: &DeadlinePolicy,
) -> bool {
    let quiet_since = last_seen.map_or(enrolled_at, |seen| seen.max(enrolled_at));
    now > quiet_since.saturating_add(hours(policy.silent_device_hours))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: Millis = MILLIS_PER_HOUR;
    /// 2024-05-01T08:00:00Z, an arbitrary working morning.
    const T0: Millis = 1_714_550_400_000;

    fn policy() -> DeadlinePolicy {
        DeadlinePolicy::default()
    }

    #[test]
    fn defaults_are_the_national_rule_and_valid() {
        let p = policy();
        assert_eq!(
            (
                p.upload_deadline_hours,
                p.due_soon_hours,
                p.silent_device_hours
            ),
            (24, 4, 24)
        );
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn missing_config_keys_take_the_defaults() {
        use serde::de::{IntoDeserializer, value::Error};
        let map = std::collections::BTreeMap::from([("upload_deadline_hours", 48u32)]);
        let p: Result<DeadlinePolicy, Error> = DeadlinePolicy::deserialize(map.into_deserializer());
        assert_eq!(
            p.unwrap(),
            DeadlinePolicy {
                upload_deadline_hours: 48,
                ..policy()
            }
        );
        let typo = std::collections::BTreeMap::from([("upload_deadline_hour", 48u32)]);
        let r: Result<DeadlinePolicy, Error> =
            DeadlinePolicy::deserialize(typo.into_deserializer());
        assert!(r.is_err(), "a misspelt key must not be ignored");
    }

    #[test]
    fn validation_rejects_zero_and_a_window_as_long_as_the_deadline() {
        let zero = DeadlinePolicy {
            silent_device_hours: 0,
            ..policy()
        };
        assert_eq!(
            zero.validate(),
            Err(DeadlinePolicyError::ZeroHours {
                field: "silent_device_hours"
            })
        );
        let wide = DeadlinePolicy {
            due_soon_hours: 24,
            ..policy()
        };
        assert!(matches!(
            wide.validate(),
            Err(DeadlinePolicyError::DueSoonNotBeforeDeadline { .. })
        ));
        assert!(
            DeadlinePolicy {
                due_soon_hours: 23,
                ..policy()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn deadline_is_end_plus_24_hours() {
        assert_eq!(upload_deadline(T0, ClockSkew::ZERO, &policy()), T0 + 24 * H);
        let p48 = DeadlinePolicy {
            upload_deadline_hours: 48,
            ..policy()
        };
        assert_eq!(upload_deadline(T0, ClockSkew::ZERO, &p48), T0 + 48 * H);
    }

    #[test]
    fn a_device_clock_two_hours_fast_does_not_move_the_deadline() {
        let true_end = T0;
        let device_says_end = true_end + 2 * H;
        // At hello the gateway reads T0 + 5h while the fast device reads T0 + 7h.
        let skew = ClockSkew::measure(T0 + 5 * H, T0 + 7 * H);
        assert_eq!(skew.as_millis(), -2 * H);
        assert_eq!(skew.to_gateway_time(device_says_end), true_end);
        assert_eq!(
            upload_deadline(device_says_end, skew, &policy()),
            upload_deadline(true_end, ClockSkew::ZERO, &policy())
        );
    }

    #[test]
    fn a_slow_device_clock_is_corrected_too() {
        let skew = ClockSkew::measure(T0, T0 - 3 * H);
        assert_eq!(upload_deadline(T0 - 3 * H, skew, &policy()), T0 + 24 * H);
    }

    #[test]
    fn ended_25_hours_ago_and_unstored_is_overdue_then_late_once_stored() {
        let now = T0;
        let deadline = upload_deadline(now - 25 * H, ClockSkew::ZERO, &policy());
        assert_eq!(
            upload_state(deadline, None, now, &policy()),
            UploadState::Overdue
        );
        assert_eq!(lateness(deadline, now), H);
        let stored = now + 10 * 60_000;
        let later = now + 100 * H;
        assert_eq!(
            upload_state(deadline, Some(stored), later, &policy()),
            UploadState::UploadedLate
        );
        assert_eq!(lateness(deadline, stored), H + 10 * 60_000);
    }

    #[test]
    fn stored_exactly_at_the_deadline_is_on_time() {
        let d = T0 + 24 * H;
        assert_eq!(
            upload_state(d, Some(d), d + H, &policy()),
            UploadState::UploadedOnTime
        );
        assert_eq!(
            upload_state(d, Some(d + 1), d + H, &policy()),
            UploadState::UploadedLate
        );
        assert_eq!(lateness(d, d), 0);
        assert_eq!(lateness(d, d - H), 0);
    }

    #[test]
    fn due_soon_boundaries() {
        let d = T0 + 24 * H;
        let p = policy();
        assert_eq!(
            upload_state(d, None, d - 4 * H - 1, &p),
            UploadState::Pending
        );
        assert_eq!(upload_state(d, None, d - 4 * H, &p), UploadState::DueSoon);
        assert_eq!(upload_state(d, None, d, &p), UploadState::DueSoon);
        assert_eq!(upload_state(d, None, d + 1, &p), UploadState::Overdue);
    }

    #[test]
    fn state_words_are_stable() {
        let words: Vec<_> = UploadState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            words,
            [
                "pending",
                "due_soon",
                "overdue",
                "uploaded_on_time",
                "uploaded_late"
            ]
        );
        assert_eq!(UploadState::DueSoon.to_string(), "due_soon");
    }

    #[test]
    fn silent_devices() {
        let p = policy();
        let enrolled = T0 - 100 * H;
        assert!(
            !is_silent(Some(T0 - 24 * H), enrolled, T0, &p),
            "exactly 24 h is not yet"
        );
        assert!(is_silent(Some(T0 - 24 * H - 1), enrolled, T0, &p));
        assert!(
            is_silent(None, enrolled, T0, &p),
            "never seen, enrolled long ago"
        );
        assert!(
            !is_silent(None, T0 - H, T0, &p),
            "never seen, enrolled an hour ago"
        );
        // A last sync before enrollment (a skewed clock) does not make a new device silent.
        assert!(!is_silent(Some(T0 - 50 * H), T0 - H, T0, &p));
    }

    fn rank(s: UploadState) -> u8 {
        match s {
            UploadState::Pending => 0,
            UploadState::DueSoon => 1,
            UploadState::Overdue => 2,
            UploadState::UploadedOnTime | UploadState::UploadedLate => 3,
        }
    }

    fn any_policy() -> impl Strategy<Value = DeadlinePolicy> {
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| DeadlinePolicy {
            upload_deadline_hours: a,
            due_soon_hours: b,
            silent_device_hours: c,
        })
    }

    proptest! {
        #[test]
        fn unstored_state_only_moves_forward_in_time(
            deadline in any::<i64>(), t1 in any::<i64>(), t2 in any::<i64>(), p in any_policy()
        ) {
            let (early, late) = (t1.min(t2), t1.max(t2));
            let s1 = upload_state(deadline, None, early, &p);
            let s2 = upload_state(deadline, None, late, &p);
            prop_assert!(rank(s1) <= rank(s2), "{s1} at {early} then {s2} at {late}");
            prop_assert!(!s2.is_stored());
        }

        #[test]
        fn a_stored_state_never_changes_with_now(
            deadline in any::<i64>(), stored in any::<i64>(),
            t1 in any::<i64>(), t2 in any::<i64>(), p in any_policy()
        ) {
            let s1 = upload_state(deadline, Some(stored), t1, &p);
            prop_assert_eq!(s1, upload_state(deadline, Some(stored), t2, &p));
            prop_assert_eq!(s1 == UploadState::UploadedLate, lateness(deadline, stored) > 0);
        }

        #[test]
        fn skew_correction_gives_the_true_deadline(
            true_end in 0i64..4_102_444_800_000, offset in -(1i64 << 40)..(1i64 << 40),
            gateway_now in 0i64..4_102_444_800_000
        ) {
            let skew = ClockSkew::measure(gateway_now, gateway_now + offset);
            prop_assert_eq!(
                upload_deadline(true_end + offset, skew, &policy()),
                upload_deadline(true_end, ClockSkew::ZERO, &policy())
            );
        }

        #[test]
        fn no_panics_on_any_input(
            a in any::<i64>(), b in any::<i64>(), c in any::<i64>(),
            seen in any::<Option<i64>>(), p in any_policy()
        ) {
            let skew = ClockSkew::measure(a, b);
            let d = upload_deadline(c, skew, &p);
            let _ = upload_state(d, seen, a, &p);
            prop_assert!(lateness(a, b) >= 0);
            let _ = is_silent(seen, b, c, &p);
            let _ = p.validate();
        }
    }
}
