//! Making a record on the terminal: the vocabulary and the clock checked (the pure
//! rules are in [`crate::rules`]), the record sealed in the outbox, and the warnings the
//! officer must see. Kept apart from `rules` so the rules import neither the agent nor
//! the outbox (no import circle), and stay pure.

use protocol::Millis;
use protocol::clock::beyond_tolerance;
use protocol::message::RecordContent;
use protocol::two_officer::OfficerPresence;

use crate::agent::Agent;
use crate::outbox::StoreError;
use crate::outbox::records::{QueuedRecord, RecordError};
use crate::rules::{RuleRefusal, Warning, warnings};

/// A record queued, with the warnings the officer must see.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The sealed record.
    pub queued: QueuedRecord,
    /// Rules the record does not meet, as far as the terminal can tell.
    pub warnings: Vec<Warning>,
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
