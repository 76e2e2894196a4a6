//! The two-officer rule (DOMAIN R4, 003): penalties and compulsory measures need at
//! least two officers present who hold a valid enforcement certificate at that time.
//!
//! The caller looks each certificate number up in the roster as it stood at the time
//! of the action (online, or the terminal's synced copy) and passes what it found;
//! this module decides whether the action was lawfully staffed and, if not, says which
//! listed numbers did not count and why, so a legal reviewer can act on the answer.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::Standing;

/// The legal floor of the rule: configuration may ask for more officers, never fewer.
pub const LEGAL_MIN_OFFICERS: u32 = 2;

/// The two-officer rule as deployment configuration. Which action kinds it applies to
/// is the action-kind vocabulary's `two_officers` column ([`crate::action_kind`]), so
/// one list says everything about a kind. Unknown keys are rejected so that a misspelt
/// key is a startup error, not a silently weaker rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwoOfficerPolicy {
    /// Certified officers required (default and minimum: [`LEGAL_MIN_OFFICERS`]).
    pub min_officers: u32,
}

impl Default for TwoOfficerPolicy {
    fn default() -> Self {
        TwoOfficerPolicy {
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
}

impl TwoOfficerPolicy {
    /// Checks the policy before the service starts.
    pub fn validate(&self) -> Result<(), TwoOfficerPolicyError> {
        if self.min_officers < LEGAL_MIN_OFFICERS {
            let min_officers = self.min_officers;
            return Err(TwoOfficerPolicyError::TooFewOfficers { min_officers });
        }
        Ok(())
    }
}

/// One officer listed as present at an action, with what the roster said about the
/// certificate at the time of the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerPresence {
    /// The certificate number shown (亮证); surrounding whitespace is ignored.
    pub certificate_number: String,
    /// What the certificate was worth at the time of the action, or `None` when the
    /// roster has no such number.
    pub standing: Option<Standing>,
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
    /// The certificate had expired.
    Expired,
    /// The holder is auxiliary staff, not an enforcement officer.
    Auxiliary,
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
            NotCountedReason::Expired => "expired",
            NotCountedReason::Auxiliary => "auxiliary",
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
    match officer.standing {
        _ if officer.certificate_number.trim().is_empty() => {
            Some(NotCountedReason::UnknownCertificate)
        }
        None => Some(NotCountedReason::UnknownCertificate),
        Some(Standing::Certified) => None,
        Some(Standing::Withdrawn) => Some(NotCountedReason::Withdrawn),
        Some(Standing::Revoked) => Some(NotCountedReason::Revoked),
        Some(Standing::Expired) => Some(NotCountedReason::Expired),
        Some(Standing::Auxiliary) => Some(NotCountedReason::Auxiliary),
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

/// Applies the two-officer rule to one action with the officers listed in `present`;
/// `required` says whether its kind needs two officers (the vocabulary's
/// `two_officers`, looked up by the caller in the normalised form).
///
/// A number listed twice counts once; a certificate withdrawn, revoked or expired at
/// the time, an auxiliary member of staff, or a number the roster does not know, does
/// not count.
pub fn check(
    required: bool,
    present: &[OfficerPresence],
    policy: &TwoOfficerPolicy,
) -> TwoOfficerOutcome {
    if !required {
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
    use Standing::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn at(number: &str, standing: Option<Standing>) -> OfficerPresence {
        OfficerPresence {
            certificate_number: number.to_owned(),
            standing,
        }
    }

    fn kinds() -> crate::action_kind::ActionKinds {
        crate::action_kind::ActionKinds::default()
    }

    fn not_counted(number: &str, reason: NotCountedReason) -> NotCounted {
        NotCounted {
            certificate_number: number.to_owned(),
            reason,
        }
    }

    fn check_default(kind: &str, present: &[OfficerPresence]) -> TwoOfficerOutcome {
        check(
            kinds().needs_two_officers(kind),
            present,
            &TwoOfficerPolicy::default(),
        )
    }

    #[test]
    fn other_actions_do_not_need_two_officers() {
        let one = [at("A1", Some(Certified))];
        assert_eq!(
            check_default("inspection", &one),
            TwoOfficerOutcome::NotRequired
        );
        assert_eq!(check_default("", &[]), TwoOfficerOutcome::NotRequired);
    }

    #[test]
    fn two_valid_certificates_satisfy_a_seizure() {
        let two = [at("A1", Some(Certified)), at("A2", Some(Certified))];
        assert_eq!(
            check_default("seizure", &two),
            TwoOfficerOutcome::Satisfied { certified: 2 }
        );
        // The kind is matched like every domain word: trimmed, any case.
        assert!(check_default(" Seizure ", &two[..1]).is_violated());
    }

    #[test]
    fn one_officer_alone_violates_a_penalty_decision() {
        let outcome = check_default("penalty_decision", &[at("A1", Some(Certified))]);
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
        let twice = [at("A1", Some(Certified)), at(" A1 ", Some(Certified))];
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
            at("A1", Some(Certified)),
            at("ZZ9", None),
            at("  ", Some(Certified)),
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
            at("A1", Some(Certified)),
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
            at("A1", Some(Certified)),
            at("A2", Some(Certified)),
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
        let present = [
            at("A1", Some(Certified)),
            at("A2", Some(Certified)),
            at("X", None),
        ];
        assert_eq!(
            check_default("freezing", &present),
            TwoOfficerOutcome::Satisfied { certified: 2 }
        );
    }

    #[test]
    fn a_stricter_policy_needs_three() {
        let p = TwoOfficerPolicy { min_officers: 3 };
        let two = [at("A1", Some(Certified)), at("A2", Some(Certified))];
        assert!(check(true, &two, &p).is_violated());
    }

    #[test]
    fn validation() {
        let default = TwoOfficerPolicy::default();
        assert_eq!(default.validate(), Ok(()));
        let weaker = TwoOfficerPolicy { min_officers: 1 };
        assert_eq!(
            weaker.validate(),
            Err(TwoOfficerPolicyError::TooFewOfficers { min_officers: 1 })
        );
    }

    #[test]
    fn missing_config_keys_take_the_defaults() {
        use serde::de::{IntoDeserializer, value::Error};
        let map = BTreeMap::from([("min_officers", 3u32)]);
        let p: Result<TwoOfficerPolicy, Error> =
            TwoOfficerPolicy::deserialize(map.into_deserializer());
        assert_eq!(p.unwrap().min_officers, 3);
        let old = BTreeMap::from([("action_kinds", 3u32)]);
        let p: Result<TwoOfficerPolicy, Error> =
            TwoOfficerPolicy::deserialize(old.into_deserializer());
        assert!(p.is_err(), "the kinds live in the vocabulary now");
    }

    #[test]
    fn expired_and_auxiliary_never_count() {
        let present = [
            at("A1", Some(Certified)),
            at("A2", Some(Expired)),
            at("FZ1", Some(Auxiliary)),
        ];
        let expected = TwoOfficerOutcome::Violated {
            certified: 1,
            required: 2,
            not_counted: vec![
                not_counted("A2", NotCountedReason::Expired),
                not_counted("FZ1", NotCountedReason::Auxiliary),
            ],
        };
        assert_eq!(check_default("seizure", &present), expected);
    }

    fn any_presence() -> impl Strategy<Value = OfficerPresence> {
        let all = [Certified, Withdrawn, Revoked, Expired, Auxiliary];
        let status = prop::option::of(prop::sample::select(all.to_vec()));
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
            let p = TwoOfficerPolicy { min_officers: 99 };
            let base = certified(&check(true, &present, &p));
            let mut rotated = present.clone();
            if !rotated.is_empty() {
                let n = rotated.len();
                rotated.rotate_left((seed % n as u64) as usize);
            }
            let mut doubled = present.clone();
            doubled.extend(present.iter().cloned());
            prop_assert_eq!(certified(&check(true, &rotated, &p)), base);
            prop_assert_eq!(certified(&check(true, &doubled, &p)), base);
            let valid: BTreeSet<_> = present
                .iter()
                .filter(|o| o.standing == Some(Certified))
                .map(|o| o.certificate_number.as_str())
                .collect();
            prop_assert!(base as usize <= valid.len());
        }
    }
}
