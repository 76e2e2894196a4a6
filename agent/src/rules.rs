//! What the terminal checks before it seals a record, offline as well as online, and
//! every message about it in one place (a later catalogue turns them into Chinese and
//! English): an unknown action kind is refused listing the known ones (DOMAIN R3), a
//! time beyond the clock tolerance is refused (R2), and the officer is warned when the
//! synced roster says the two-officer rule is not met (R4) or an action that needs
//! whole-process audio-video has no recording linked (R3).

use protocol::Millis;
use protocol::action_kind::{ActionKind, UnknownActionKind};
use protocol::clock::beyond_tolerance;
use protocol::message::RecordContent;
use protocol::two_officer::{self, OfficerPresence, TwoOfficerOutcome, TwoOfficerPolicy};

use crate::agent::Agent;
use crate::outbox::StoreError;
use crate::outbox::records::{QueuedRecord, RecordError};

/// Why the terminal refuses a record before sealing it.
#[derive(Debug, thiserror::Error)]
pub enum RuleRefusal {
    /// The action kind is not in the vocabulary the gateway sent.
    #[error(transparent)]
    UnknownKind(#[from] UnknownActionKind),
    /// `--at` lies further in the future than the gateway tolerates.
    #[error(
        "the record's time is {ahead_s} s ahead of this device's clock; the gateway accepts at most {tolerance_s} s (a time in the future would be flagged as an implausible clock)"
    )]
    Future {
        /// How far ahead, in seconds.
        ahead_s: i64,
        /// The tolerance, in seconds.
        tolerance_s: i64,
    },
}

/// A warning for the officer: the record is kept, but a rule is not met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The roster says too few certified officers are listed.
    TooFewOfficers {
        /// The kind.
        kind: String,
        /// Certified officers counted.
        certified: u32,
        /// Required.
        required: u32,
        /// Listed numbers that did not count, with why.
        not_counted: Vec<String>,
    },
    /// The kind needs two officers and the roster was never synced, so the terminal
    /// cannot tell whether the listed numbers count.
    RosterNeverSynced {
        /// The kind.
        kind: String,
    },
    /// The kind needs whole-process audio-video and no recording is linked.
    NoAudioVideo {
        /// The kind.
        kind: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::TooFewOfficers {
                kind,
                certified,
                required,
                not_counted,
            } => {
                write!(
                    f,
                    "{kind} needs {required} certified officers; the roster counts {certified}"
                )?;
                if !not_counted.is_empty() {
                    write!(f, " (not counted: {})", not_counted.join(", "))?;
                }
                Ok(())
            }
            Warning::RosterNeverSynced { kind } => write!(
                f,
                "{kind} needs two certified officers; the roster was never synced, so the certificates could not be checked"
            ),
            Warning::NoAudioVideo { kind } => write!(
                f,
                "{kind} must be recorded on audio-video for the whole process; link the recording with --recording"
            ),
        }
    }
}

/// A record queued, with the warnings the officer must see.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The sealed record.
    pub queued: QueuedRecord,
    /// Rules the record does not meet, as far as the terminal can tell.
    pub warnings: Vec<Warning>,
}

/// The warnings for a record of `kind` whose officers have the given standings (none:
/// the roster was never synced), with `min_officers` certified officers required.
pub fn warnings(
    kind: &ActionKind,
    content: &RecordContent,
    present: Option<&[OfficerPresence]>,
    min_officers: u32,
) -> Vec<Warning> {
    let mut out = Vec::new();
    let policy = TwoOfficerPolicy { min_officers };
    match present {
        None if kind.two_officers => out.push(Warning::RosterNeverSynced {
            kind: kind.code.clone(),
        }),
        None => {}
        Some(present) => {
            if let TwoOfficerOutcome::Violated {
                certified,
                required,
                not_counted,
            } = two_officer::check(kind.two_officers, present, &policy)
            {
                out.push(Warning::TooFewOfficers {
                    kind: kind.code.clone(),
                    certified,
                    required,
                    not_counted: not_counted.iter().map(ToString::to_string).collect(),
                });
            }
        }
    }
    if kind.audio_video && content.recordings.is_empty() {
        out.push(Warning::NoAudioVideo {
            kind: kind.code.clone(),
        });
    }
    out
}

impl Agent {
    /// Checks a record against the vocabulary and the clock, seals it with its kind's
    /// code (the normalised form), and says which rules the roster says it breaks.
    pub async fn record_checked(
        &self,
        mut content: RecordContent,
    ) -> Result<Recorded, RecordError> {
        let rules = self.outbox().rules_in_force().await?;
        let kind = rules
            .action_kinds
            .lookup(&content.action_kind)
            .map_err(RuleRefusal::from)?
            .clone();
        let now = self.now();
        if beyond_tolerance(content.made_at, now, rules.clock_tolerance_ms) {
            return Err(RuleRefusal::Future {
                ahead_s: (content.made_at - now) / 1000,
                tolerance_s: rules.clock_tolerance_ms / 1000,
            }
            .into());
        }
        content.action_kind = kind.code.clone();
        let present = self.presence(&content.officers, content.made_at).await?;
        let warnings = warnings(&kind, &content, present.as_deref(), rules.min_officers);
        let queued = self.record(content).await?;
        Ok(Recorded { queued, warnings })
    }

    /// The listed officers' standings at `at` from the synced roster (none: the roster
    /// was never synced).
    async fn presence(
        &self,
        officers: &[String],
        at: Millis,
    ) -> Result<Option<Vec<OfficerPresence>>, StoreError> {
        if self.outbox().roster_version().await? == 0 {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(officers.len());
        for number in officers {
            let entry = self.outbox().roster_entry(number).await?;
            out.push(OfficerPresence {
                certificate_number: number.clone(),
                standing: entry.map(|e| e.standing_at(at)),
            });
        }
        Ok(Some(out))
    }
}
