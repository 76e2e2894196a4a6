//! The `[policy.full_process]` table (DOMAIN R3): how long a closed case may wait for
//! its archive record. The rules that flag records and cases are
//! `deadlines::full_process`'s.

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
}
