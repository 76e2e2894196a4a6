//! The two-officer rule (DOMAIN R4, 003): penalties and compulsory measures need at
//! least two officers present who hold a valid enforcement certificate at that time.
//!
//! The caller looks each certificate number up in the roster as it stood at the time
//! of the action (online, or the terminal's synced copy) and passes what it found;
//! this module decides whether the action was lawfully staffed and, if not, says which
//! listed numbers did not count and why, so a legal reviewer can act on the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::CertificateStatus;

/// The legal floor of the rule: configuration may ask for more officers, never fewer.
pub const LEGAL_MIN_OFFICERS: u32 = 2;

/// The action kinds that need two officers by default, as stable snake_case words.
///
/// | word | meaning | source |
/// |---|---|---|
/// | `penalty_decision` | an administrative penalty decision (行政处罚决定) | 行政处罚法 art. 42 |
/// | `restriction_of_personal_liberty` | 限制公民人身自由 | 行政强制法 arts. 9, 18 |
/// | `sealing` | sealing premises, facilities or property (查封) | 行政强制法 arts. 9, 18 |
/// | `seizure` | seizing property (扣押财物) | 行政强制法 arts. 9, 18 |
/// | `freezing` | freezing deposits or remittances (冻结存款、汇款) | 行政强制法 arts. 9, 18 |
/// | `forced_demolition` | 强制拆除 | 行政强制法 art. 12 |
/// | `compulsory_execution` | any other compulsory execution (行政强制执行) | 行政强制法 art. 12 |
///
/// Seizure covers "detention of property": one word per act, so a report never splits
/// the same act across two spellings.
pub const DEFAULT_ACTION_KINDS: &[&str] = &[
    "penalty_decision",
    "restriction_of_personal_liberty",
    "sealing",
    "seizure",
    "freezing",
    "forced_demolition",
    "compulsory_execution",
];

/// The two-officer rule as deployment configuration.
///
/// Which action kinds are penalties or compulsory measures is a local vocabulary, so it
/// is configurable; an omitted key takes the default. Unknown keys are rejected so that
/// a misspelt key is a startup error, not a silently weaker rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwoOfficerPolicy {
    /// Action kinds that need `min_officers` certified officers present (default:
    /// [`DEFAULT_ACTION_KINDS`]).
    pub action_kinds: BTreeSet<String>,
    /// Certified officers required (default and minimum: [`LEGAL_MIN_OFFICERS`]).
    pub min_officers: u32,
}

impl Default for TwoOfficerPolicy {
    fn default() -> Self {
        TwoOfficerPolicy {
            action_kinds: DEFAULT_ACTION_KINDS.iter().map(|w| w.to_string()).collect(),
            min_officers: LEGAL_MIN_OFFICERS,
        }
    }
}

/// Why a [`TwoOfficerPolicy`] read from configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwoOfficerPolicyError {
    /// Fewer officers than the law requires; the rule can be made stricter, not weaker.
    #[error("min_officers is {min_officers}; the law requires at least {LEGAL_MIN_OFFICERS}")]
    TooFewOfficers {
        /// The configured figure.
        min_officers: u32,
    },
    /// An explicitly empty list would switch the rule off for every action.
    #[error("action_kinds is empty; penalties and compulsory measures must be listed")]
    NoActionKinds,
    /// A word that no action kind can match (action kinds are lowercase snake_case),
    /// so the rule would silently never apply to it.
    #[error("action kind {word:?} must be lowercase letters, digits and '_'")]
    BadActionKind {
        /// The rejected word.
        word: String,
    },
}

fn is_action_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl TwoOfficerPolicy {
    /// Checks the policy before the service starts.
    pub fn validate(&self) -> Result<(), TwoOfficerPolicyError> {
        if self.min_officers < LEGAL_MIN_OFFICERS {
            let min_officers = self.min_officers;
            return Err(TwoOfficerPolicyError::TooFewOfficers { min_officers });
        }
        if self.action_kinds.is_empty() {
            return Err(TwoOfficerPolicyError::NoActionKinds);
        }
        match self.action_kinds.iter().find(|w| !is_action_word(w)) {
            Some(word) => Err(TwoOfficerPolicyError::BadActionKind { word: word.clone() }),
            None => Ok(()),
        }
    }

    /// True when an action of this kind needs the rule. The kind is trimmed and
    /// lowercased first, as the domain words are, so "Seizure " is not let through.
    pub fn applies_to(&self, action_kind: &str) -> bool {
        self.action_kinds
            .contains(action_kind.trim().to_ascii_lowercase().as_str())
    }
}

/// One officer listed as present at an action, with what the roster said about the
/// certificate at the time of the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerPresence {
    /// The certificate number shown (亮证); surrounding whitespace is ignored.
    pub certificate_number: String,
    /// The certificate's status at the time of the action, or `None` when the roster
    /// has no such number.
    pub status_at_time: Option<CertificateStatus>,
}

/// Why a listed certificate number did not count (or counted only once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotCountedReason {
    /// The roster has no such number (or the number is blank).
    UnknownCertificate,
    /// The certificate had been withdrawn (retirement, transfer, resignation).
    Withdrawn,
    /// The certificate had been revoked (dismissal, criminal penalty).
    Revoked,
    /// The number was listed more than once; one officer counts once.
    ListedMoreThanOnce,
}

impl NotCountedReason {
    /// The stable spelling used on the wire, in the store and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            NotCountedReason::UnknownCertificate => "unknown_certificate",
            NotCountedReason::Withdrawn => "withdrawn",
            NotCountedReason::Revoked => "revoked",
            NotCountedReason::ListedMoreThanOnce => "listed_more_than_once",
        }
    }
}

impl fmt::Display for NotCountedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A listed certificate number that did not count, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotCounted {
    /// The number as listed (trimmed).
    pub certificate_number: String,
    /// Why it did not count.
    pub reason: NotCountedReason,
}

impl fmt::Display for NotCounted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.certificate_number, self.reason)
    }
}

/// The result of the two-officer rule for one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TwoOfficerOutcome {
    /// The action kind is not a penalty or compulsory measure.
    NotRequired,
    /// Enough distinct certified officers were present.
    Satisfied {
        /// Distinct certified officers present.
        certified: u32,
    },
    /// Too few distinct certified officers were present: the action was not lawfully
    /// staffed.
    Violated {
        /// Distinct certified officers present.
        certified: u32,
        /// Certified officers the policy requires.
        required: u32,
        /// Each listed number that did not count, or counted once though listed more
        /// than once, in the order first listed.
        not_counted: Vec<NotCounted>,
    },
}

impl TwoOfficerOutcome {
    /// True when the rule applied and was broken.
    pub fn is_violated(&self) -> bool {
        matches!(self, TwoOfficerOutcome::Violated { .. })
    }
}

fn reason_not_counted(officer: &OfficerPresence) -> Option<NotCountedReason> {
    match officer.status_at_time {
        _ if officer.certificate_number.trim().is_empty() => {
            Some(NotCountedReason::UnknownCertificate)
        }
        None => Some(NotCountedReason::UnknownCertificate),
        Some(CertificateStatus::Valid) => None,
        Some(CertificateStatus::Withdrawn) => Some(NotCountedReason::Withdrawn),
        Some(CertificateStatus::Revoked) => Some(NotCountedReason::Revoked),
    }
}

/// One distinct certificate number among those listed.
struct Listing<'a> {
    number: &'a str,
    reason: Option<NotCountedReason>,
    times: u32,
}

/// Merges the listings of each number, in the order first listed. Listings of one
/// number that disagree are resolved against the officer: it counts only if every
/// listing says its certificate was valid.
fn merge_listings(present: &[OfficerPresence]) -> Vec<Listing<'_>> {
    let mut listings: Vec<Listing<'_>> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for officer in present {
        let number = officer.certificate_number.trim();
        let reason = reason_not_counted(officer);
        if let Some(&i) = index.get(number) {
            let listing = &mut listings[i];
            listing.times = listing.times.saturating_add(1);
            listing.reason = listing.reason.or(reason);
        } else {
            index.insert(number, listings.len());
            listings.push(Listing {
                number,
                reason,
                times: 1,
            });
        }
    }
    listings
}

/// Applies the two-officer rule to one action of `action_kind` with the officers
/// listed in `present`.
///
/// A number listed twice counts once; a certificate withdrawn or revoked at the time,
/// or a number the roster does not know, does not count.
pub fn check(
    action_kind: &str,
    present: &[OfficerPresence],
    policy: &TwoOfficerPolicy,
) -> TwoOfficerOutcome {
    if !policy.applies_to(action_kind) {
        return TwoOfficerOutcome::NotRequired;
    }
    let listings = merge_listings(present);
    let valid = listings.iter().filter(|l| l.reason.is_none()).count();
    let certified = u32::try_from(valid).unwrap_or(u32::MAX);
    if certified >= policy.min_officers {
        return TwoOfficerOutcome::Satisfied { certified };
    }
    let not_counted = listings
        .iter()
        .filter_map(|l| {
            let reason = l
                .reason
                .or((l.times > 1).then_some(NotCountedReason::ListedMoreThanOnce))?;
            Some(NotCounted {
                certificate_number: l.number.to_owned(),
                reason,
            })
        })
        .collect();
    TwoOfficerOutcome::Violated {
        certified,
        required: policy.min_officers,
        not_counted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertificateStatus::*;
    use proptest::prelude::*;

    fn at(number: &str, status: Option<CertificateStatus>) -> OfficerPresence {
        OfficerPresence {
            certificate_number: number.to_owned(),
            status_at_time: status,
        }
    }

    fn not_counted(number: &str, reason: NotCountedReason) -> NotCounted {
        NotCounted {
            certificate_number: number.to_owned(),
            reason,
        }
    }

    fn check_default(kind: &str, present: &[OfficerPresence]) -> TwoOfficerOutcome {
        check(kind, present, &TwoOfficerPolicy::default())
    }

    #[test]
    fn other_actions_do_not_need_two_officers() {
        let one = [at("A1", Some(Valid))];
        assert_eq!(
            check_default("inspection", &one),
            TwoOfficerOutcome::NotRequired
        );
        assert_eq!(check_default("", &[]), TwoOfficerOutcome::NotRequired);
    }

    #[test]
    fn two_valid_certificates_satisfy_a_seizure() {
        let two = [at("A1", Some(Valid)), at("A2", Some(Valid))];
        assert_eq!(
            check_default("seizure", &two),
            TwoOfficerOutcome::Satisfied { certified: 2 }
        );
        // The kind is matched like every domain word: trimmed, any case.
        assert!(check_default(" Seizure ", &two[..1]).is_violated());
    }

    #[test]
    fn one_officer_alone_violates_a_penalty_decision() {
        let outcome = check_default("penalty_decision", &[at("A1", Some(Valid))]);
        let expected = TwoOfficerOutcome::Violated {
            certified: 1,
            required: 2,
            not_counted: vec![],
        };
        assert_eq!(outcome, expected);
        assert!(outcome.is_violated());
    }

    #[test]
    fn the_same_number_listed_twice_counts_once() {
        let twice = [at("A1", Some(Valid)), at(" A1 ", Some(Valid))];
        let expected = TwoOfficerOutcome::Violated {
            certified: 1,
            required: 2,
            not_counted: vec![not_counted("A1", NotCountedReason::ListedMoreThanOnce)],
        };
        assert_eq!(check_default("sealing", &twice), expected);
    }

    #[test]
    fn unknown_and_blank_numbers_do_not_count() {
        let present = [
            at("A1", Some(Valid)),
            at("ZZ9", None),
            at("  ", Some(Valid)),
        ];
        let expected = TwoOfficerOutcome::Violated {
            certified: 1,
            required: 2,
            not_counted: vec![
                not_counted("ZZ9", NotCountedReason::UnknownCertificate),
                not_counted("", NotCountedReason::UnknownCertificate),
            ],
        };
        assert_eq!(check_default("forced_demolition", &present), expected);
    }

    #[test]
    fn a_certificate_revoked_or_withdrawn_at_the_time_does_not_count() {
        let present = [
            at("A1", Some(Valid)),
            at("A2", Some(Revoked)),
            at("A3", Some(Withdrawn)),
        ];
        let TwoOfficerOutcome::Violated {
            certified,
            not_counted: nc,
            ..
        } = check_default("seizure", &present)
        else {
            panic!("a revoked certificate must not make up the second officer");
        };
        assert_eq!(certified, 1);
        assert_eq!(
            nc,
            [
                not_counted("A2", NotCountedReason::Revoked),
                not_counted("A3", NotCountedReason::Withdrawn)
            ]
        );
        assert_eq!(nc[0].to_string(), "A2 (revoked)");
    }

    #[test]
    fn conflicting_listings_of_one_number_go_against_the_officer() {
        let present = [
            at("A1", Some(Valid)),
            at("A2", Some(Valid)),
            at("A2", Some(Revoked)),
        ];
        let outcome = check_default("seizure", &present);
        let expected = TwoOfficerOutcome::Violated {
            certified: 1,
            required: 2,
            not_counted: vec![not_counted("A2", NotCountedReason::Revoked)],
        };
        assert_eq!(outcome, expected);
    }

    #[test]
    fn a_third_uncertified_officer_does_not_spoil_two_certified_ones() {
        let present = [at("A1", Some(Valid)), at("A2", Some(Valid)), at("X", None)];
        assert_eq!(
            check_default("freezing", &present),
            TwoOfficerOutcome::Satisfied { certified: 2 }
        );
    }

    #[test]
    fn a_stricter_policy_needs_three() {
        let p = TwoOfficerPolicy {
            min_officers: 3,
            ..TwoOfficerPolicy::default()
        };
        let two = [at("A1", Some(Valid)), at("A2", Some(Valid))];
        assert!(check("seizure", &two, &p).is_violated());
    }

    #[test]
    fn validation() {
        let default = TwoOfficerPolicy::default();
        assert_eq!(default.validate(), Ok(()));
        assert_eq!(default.action_kinds.len(), DEFAULT_ACTION_KINDS.len());
        let weaker = TwoOfficerPolicy {
            min_officers: 1,
            ..default.clone()
        };
        assert_eq!(
            weaker.validate(),
            Err(TwoOfficerPolicyError::TooFewOfficers { min_officers: 1 })
        );
        let off = TwoOfficerPolicy {
            action_kinds: BTreeSet::new(),
            ..default.clone()
        };
        assert_eq!(off.validate(), Err(TwoOfficerPolicyError::NoActionKinds));
        let bad = TwoOfficerPolicy {
            action_kinds: BTreeSet::from(["Seizure".to_owned()]),
            ..default
        };
        assert!(matches!(
            bad.validate(),
            Err(TwoOfficerPolicyError::BadActionKind { .. })
        ));
    }

    #[test]
    fn missing_config_keys_take_the_defaults() {
        use serde::de::{IntoDeserializer, value::Error};
        let map = BTreeMap::from([("min_officers", 3u32)]);
        let p: Result<TwoOfficerPolicy, Error> =
            TwoOfficerPolicy::deserialize(map.into_deserializer());
        let p = p.unwrap();
        assert_eq!(p.min_officers, 3);
        assert_eq!(p.action_kinds, TwoOfficerPolicy::default().action_kinds);
    }

    fn any_presence() -> impl Strategy<Value = OfficerPresence> {
        let status = prop::option::of(prop::sample::select(CertificateStatus::ALL));
        ("[A-C][0-3]", status).prop_map(|(n, s)| at(&n, s))
    }

    proptest! {
        #[test]
        fn order_and_repetition_do_not_change_the_count(
            present in prop::collection::vec(any_presence(), 0..8), seed in any::<u64>()
        ) {
            let certified = |o: &TwoOfficerOutcome| match o {
                TwoOfficerOutcome::Satisfied { certified } => *certified,
                TwoOfficerOutcome::Violated { certified, .. } => *certified,
                TwoOfficerOutcome::NotRequired => unreachable!(),
            };
            let p = TwoOfficerPolicy { min_officers: 99, ..TwoOfficerPolicy::default() };
            let base = certified(&check("seizure", &present, &p));
            let mut rotated = present.clone();
            if !rotated.is_empty() {
                let n = rotated.len();
                rotated.rotate_left((seed % n as u64) as usize);
            }
            let mut doubled = present.clone();
            doubled.extend(present.iter().cloned());
            prop_assert_eq!(certified(&check("seizure", &rotated, &p)), base);
            prop_assert_eq!(certified(&check("seizure", &doubled, &p)), base);
            let valid: BTreeSet<_> = present
                .iter()
                .filter(|o| o.status_at_time == Some(Valid))
                .map(|o| o.certificate_number.as_str())
                .collect();
            prop_assert!(base as usize <= valid.len());
        }
    }
}
