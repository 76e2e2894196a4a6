//! Full-process recording (DOMAIN R3): which action kinds must be recorded on
//! audio-video for the whole process, how long a case may wait for its archive record,
//! and the pure rules that decide which records and cases to flag.

use serde::{Deserialize, Serialize};

use protocol::Millis;

/// The full-process figures, read from `[policy.full_process]`. Which action kinds need
/// whole-process audio-video, and which close a case, is the action-kind vocabulary's
/// to say (`policy.action_kinds`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FullProcessPolicy {
    /// Calendar days (in the agencies' time zone) after the day of the action that
    /// closes a case by which it must have an archive-stage record (default 30, 000).
    pub archive_days: u32,
}

impl Default for FullProcessPolicy {
    fn default() -> Self {
        Self { archive_days: 30 }
    }
}

/// Why a [`FullProcessPolicy`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FullProcessPolicyError {
    /// Zero days would flag every case the moment it is closed.
    #[error("archive_days must be at least 1")]
    ZeroArchiveDays,
}

impl FullProcessPolicy {
    /// Checks the figures at startup.
    pub fn validate(&self) -> Result<(), FullProcessPolicyError> {
        if self.archive_days == 0 {
            return Err(FullProcessPolicyError::ZeroArchiveDays);
        }
        Ok(())
    }

    /// The first instant at which a case closed at `closed_at` (gateway time) is
    /// overdue for its archive record: see [`protocol::archive`].
    pub fn archive_due(&self, closed_at: Millis, zone: &jiff::tz::TimeZone) -> Millis {
        protocol::archive::archive_due(closed_at, self.archive_days, zone)
    }
}

/// A recording linked from a field record, as the rule needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkedRecording {
    /// Start, gateway time.
    pub started_at: Millis,
    /// End, gateway time.
    pub ended_at: Millis,
    /// The gateway holds it (every byte, verified, durable).
    pub stored: bool,
}

/// True when one of the record's linked recordings is stored and covers the record's
/// time (gateway time, both ends inclusive). A recording announced but never uploaded
/// covers nothing: the audio-video must exist, not only be promised.
pub fn covered(made_at: Millis, linked: &[LinkedRecording]) -> bool {
    linked
        .iter()
        .any(|r| r.stored && r.started_at <= made_at && made_at <= r.ended_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_days_are_refused() {
        assert_eq!(FullProcessPolicy::default().validate(), Ok(()));
        let zero = FullProcessPolicy { archive_days: 0 };
        assert_eq!(
            zero.validate(),
            Err(FullProcessPolicyError::ZeroArchiveDays)
        );
    }

    #[test]
    fn coverage_is_inclusive_and_needs_a_stored_linked_recording() {
        let r = LinkedRecording {
            started_at: 100,
            ended_at: 200,
            stored: true,
        };
        assert!(covered(100, &[r]));
        assert!(covered(200, &[r]));
        assert!(!covered(201, &[r]));
        assert!(!covered(150, &[]));
        let announced_only = LinkedRecording { stored: false, ..r };
        assert!(!covered(150, &[announced_only]));
    }
}
