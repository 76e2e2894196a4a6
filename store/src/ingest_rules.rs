//! The rules a group commit applies, in a module of their own because both the group
//! commit (`records`) and the reviews of two-officer flags (`flag_reviews`) judge by
//! them, and neither may import the other.

use protocol::action_kind::ActionKinds;
use protocol::clock::ClockPolicy;
use protocol::two_officer::TwoOfficerPolicy;

/// The rules a group commit applies to the records it stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestRules {
    /// How many certified officers a two-officer action needs.
    pub two_officer: TwoOfficerPolicy,
    /// Which kinds need two officers (looked up in the normalised form).
    pub action_kinds: ActionKinds,
    /// How far device clocks are trusted.
    pub clock: ClockPolicy,
    /// Tamper flags kept per device; chain breaks beyond are counted in one row per
    /// device (see the `tamper` module).
    pub tamper_flags_per_device: u64,
}

impl IngestRules {
    /// The default of [`IngestRules::tamper_flags_per_device`]: far more chain breaks
    /// than an honest device ever makes (a restore from backup forks a few records),
    /// and at the protocol's largest record (16 KiB of text) about 20 MiB of evidence.
    pub const DEFAULT_TAMPER_FLAGS_PER_DEVICE: u64 = 1000;
}

impl Default for IngestRules {
    fn default() -> Self {
        Self {
            two_officer: TwoOfficerPolicy::default(),
            action_kinds: ActionKinds::default(),
            clock: ClockPolicy::default(),
            tamper_flags_per_device: Self::DEFAULT_TAMPER_FLAGS_PER_DEVICE,
        }
    }
}
