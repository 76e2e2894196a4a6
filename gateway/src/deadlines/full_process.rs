//! Full-process recording (DOMAIN R3): which action kinds must be recorded on
//! audio-video for the whole process, how long a case may wait for its archive record,
//! and the pure rules that decide which records and cases to flag.

use serde::{Deserialize, Serialize};

use protocol::Millis;

use crate::clock::DAY;

/// The full-process figures, read from `[policy.full_process]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FullProcessPolicy {
    /// Action kinds that must be recorded on audio-video for the whole process: those
    /// that directly affect personal liberty, life, health or major property (000, 001).
    pub action_kinds: Vec<String>,
    /// Days after the execution stage's last record by which the case must have an
    /// archive-stage record (default 30).
    pub archive_days: u32,
}

impl Default for FullProcessPolicy {
    fn default() -> Self {
        Self {
            action_kinds: [
                "restriction_of_personal_liberty",
                "seizure",
                "sealing",
                "freezing",
                "forced_demolition",
                "compulsory_execution",
            ]
            .map(String::from)
            .to_vec(),
            archive_days: 30,
        }
    }
}

/// Why a [`FullProcessPolicy`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FullProcessPolicyError {
    /// No action kind is listed: the rule would be switched off silently.
    #[error("action_kinds must list at least one action kind")]
    NoActionKinds,
    /// A listed kind is blank.
    #[error("action_kinds must not contain a blank entry")]
    BlankActionKind,
    /// Zero days would flag every case the moment execution ends.
    #[error("archive_days must be at least 1")]
    ZeroArchiveDays,
}

impl FullProcessPolicy {
    /// Checks the figures at startup.
    pub fn validate(&self) -> Result<(), FullProcessPolicyError> {
        if self.action_kinds.is_empty() {
            return Err(FullProcessPolicyError::NoActionKinds);
        }
        if self.action_kinds.iter().any(|k| k.trim().is_empty()) {
            return Err(FullProcessPolicyError::BlankActionKind);
        }
        if self.archive_days == 0 {
            return Err(FullProcessPolicyError::ZeroArchiveDays);
        }
        Ok(())
    }

    /// True when records of this action kind need audio-video for the whole process.
    pub fn needs_audio_video(&self, action_kind: &str) -> bool {
        let kind = action_kind.trim();
        self.action_kinds.iter().any(|k| k.trim() == kind)
    }

    /// When a case whose execution stage last had a record at `execution_ended` is
    /// overdue for its archive record (gateway time).
    pub fn archive_due(&self, execution_ended: Millis) -> Millis {
        execution_ended.saturating_add(Millis::from(self.archive_days) * DAY)
    }
}

/// A recording linked from a field record, as the rule needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkedRecording {
    /// Start, gateway time.
    pub started_at: Millis,
    /// End, gateway time.
    pub ended_at: Millis,
}

/// True when one of the record's linked recordings covers the record's time (gateway
/// time, both ends inclusive). Recordings the gateway has not heard of are not passed
/// in: an unannounced recording covers nothing yet.
pub fn covered(made_at: Millis, linked: &[LinkedRecording]) -> bool {
    linked
        .iter()
        .any(|r| r.started_at <= made_at && made_at <= r.ended_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_name_the_coercive_measures() {
        let p = FullProcessPolicy::default();
        assert_eq!(p.validate(), Ok(()));
        assert!(p.needs_audio_video("seizure"));
        assert!(p.needs_audio_video(" forced_demolition "));
        assert!(!p.needs_audio_video("inspection"));
        assert_eq!(p.archive_due(0), 30 * DAY);
    }

    #[test]
    fn bad_policies_are_refused() {
        let empty = FullProcessPolicy {
            action_kinds: vec![],
            ..FullProcessPolicy::default()
        };
        assert_eq!(empty.validate(), Err(FullProcessPolicyError::NoActionKinds));
        let blank = FullProcessPolicy {
            action_kinds: vec![" ".into()],
            ..FullProcessPolicy::default()
        };
        assert_eq!(
            blank.validate(),
            Err(FullProcessPolicyError::BlankActionKind)
        );
        let zero = FullProcessPolicy {
            archive_days: 0,
            ..FullProcessPolicy::default()
        };
        assert_eq!(
            zero.validate(),
            Err(FullProcessPolicyError::ZeroArchiveDays)
        );
    }

    #[test]
    fn coverage_is_inclusive_and_needs_a_linked_recording() {
        let r = LinkedRecording {
            started_at: 100,
            ended_at: 200,
        };
        assert!(covered(100, &[r]));
        assert!(covered(200, &[r]));
        assert!(!covered(201, &[r]));
        assert!(!covered(150, &[]));
    }
}
