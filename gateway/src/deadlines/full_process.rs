//! Full-process recording (DOMAIN R3): the pure rules that decide which records and
//! cases to flag. Which action kinds need whole-process audio-video is the action-kind
//! vocabulary's to say; how long a case may wait for its archive record is
//! [`crate::config::FullProcessPolicy`].

use protocol::Millis;

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
