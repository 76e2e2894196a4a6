//! Action kinds (DOMAIN R3, R4): a fixed, configured vocabulary. Each kind has a code,
//! a Chinese and an English name, and says whether it needs two certified officers,
//! whole-process audio-video, and whether it closes the case (the archive period runs
//! from it).
//!
//! A code is compared in one normalised form everywhere ([`normalize`]: trimmed, ASCII
//! lower case), so "Seizure " and "seizure" are one kind; a word that is no code is
//! refused ([`UnknownActionKind`]), never silently exempt from the rules.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One action kind of the vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionKind {
    /// The code devices send (lowercase letters, digits and `_`).
    pub code: String,
    /// The Chinese name officers read.
    pub name_zh: String,
    /// The English name.
    pub name_en: String,
    /// Needs at least two certified officers present (003; 行政处罚法 art. 42,
    /// 行政强制法 art. 18).
    #[serde(default)]
    pub two_officers: bool,
    /// Must be recorded on audio-video for the whole process (000, 003).
    #[serde(default)]
    pub audio_video: bool,
    /// Ends the case (an execution, or a decision that ends it without penalty): the
    /// 30-day archive period runs from it (000: 终结之日起30日内).
    #[serde(default)]
    pub closes_case: bool,
}

/// The normalised form of an action-kind word: surrounding whitespace removed, ASCII
/// letters lowercased. The one comparison every crate uses.
pub fn normalize(word: &str) -> String {
    word.trim().to_ascii_lowercase()
}

/// A word that is not a code of the vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("action kind {kind:?} is not known; known kinds: {}", known.join(", "))]
pub struct UnknownActionKind {
    /// The word as given.
    pub kind: String,
    /// The codes of the vocabulary.
    pub known: Vec<String>,
}

/// Why a vocabulary from configuration cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VocabularyError {
    /// No kinds at all.
    #[error("the action-kind list is empty")]
    Empty,
    /// A code that [`normalize`] would change or that has other characters.
    #[error("action kind code {code:?} must be lowercase letters, digits and '_'")]
    BadCode {
        /// The code.
        code: String,
    },
    /// A code listed twice.
    #[error("action kind code {code:?} is listed twice")]
    Duplicate {
        /// The code.
        code: String,
    },
    /// A kind without a name.
    #[error("action kind {code:?} needs both name_zh and name_en")]
    NoName {
        /// The code.
        code: String,
    },
    /// No kind needs two officers: the rule of 003 would be switched off.
    #[error("no action kind needs two officers; penalties and compulsory measures must")]
    NoTwoOfficerKind,
    /// No kind needs audio-video: the whole-process rule would be switched off.
    #[error("no action kind needs whole-process audio-video; coercive measures must")]
    NoAudioVideoKind,
    /// No kind closes a case: no case would ever be due for archiving.
    #[error("no action kind closes a case; the archive rule needs at least one")]
    NoClosingKind,
}

/// The vocabulary: every action kind devices may record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionKinds(pub Vec<ActionKind>);

/// (code, 中文, English, two officers, audio-video, closes the case).
type Row = (&'static str, &'static str, &'static str, bool, bool, bool);

/// DOMAIN's defaults. Two officers: penalty decisions and compulsory measures
/// (行政处罚法 art. 42; 行政强制法 arts. 9, 12, 18; 003). Whole-process audio-video:
/// actions that directly affect personal liberty or major property (000, 003: 查封扣押
/// 财产、强制拆除). Closing the case: an execution, or a decision that ends the case
/// without penalty (DOMAIN R3). `case_filing` (立案) and `archive` (归档) are the first
/// and last acts of a case; an archive-stage record is what ends the archive period.
const DEFAULTS: &[Row] = &[
    ("case_filing", "立案", "Case filing", false, false, false),
    (
        "inspection",
        "现场检查",
        "On-site inspection",
        false,
        false,
        false,
    ),
    (
        "evidence_taking",
        "调查取证",
        "Evidence taking",
        false,
        false,
        false,
    ),
    ("hearing", "听证", "Hearing", false, false, false),
    (
        "service",
        "送达",
        "Service of documents",
        false,
        false,
        false,
    ),
    (
        "penalty_decision",
        "行政处罚决定",
        "Penalty decision",
        true,
        false,
        false,
    ),
    (
        "no_penalty_decision",
        "不予行政处罚决定",
        "Decision not to penalise",
        false,
        false,
        true,
    ),
    (
        "case_termination",
        "终止调查",
        "Termination of the case",
        false,
        false,
        true,
    ),
    (
        "restriction_of_personal_liberty",
        "限制人身自由",
        "Restriction of personal liberty",
        true,
        true,
        false,
    ),
    ("sealing", "查封", "Sealing", true, true, false),
    ("seizure", "扣押", "Seizure", true, true, false),
    (
        "freezing",
        "冻结",
        "Freezing of deposits",
        true,
        true,
        false,
    ),
    (
        "penalty_execution",
        "处罚决定执行",
        "Execution of a penalty",
        false,
        false,
        true,
    ),
    (
        "forced_demolition",
        "强制拆除",
        "Forced demolition",
        true,
        true,
        true,
    ),
    (
        "compulsory_execution",
        "强制执行",
        "Compulsory execution",
        true,
        true,
        true,
    ),
    (
        "archive",
        "归档",
        "Archiving the case file",
        false,
        false,
        false,
    ),
];

impl Default for ActionKinds {
    fn default() -> Self {
        ActionKinds(
            DEFAULTS
                .iter()
                .map(|&(code, zh, en, two, av, closes)| ActionKind {
                    code: code.to_owned(),
                    name_zh: zh.to_owned(),
                    name_en: en.to_owned(),
                    two_officers: two,
                    audio_video: av,
                    closes_case: closes,
                })
                .collect(),
        )
    }
}

impl ActionKinds {
    /// Checks a vocabulary before the service starts.
    pub fn validate(&self) -> Result<(), VocabularyError> {
        if self.0.is_empty() {
            return Err(VocabularyError::Empty);
        }
        let mut seen = BTreeSet::new();
        for kind in &self.0 {
            let code = &kind.code;
            let well_formed = !code.is_empty()
                && code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !well_formed {
                return Err(VocabularyError::BadCode { code: code.clone() });
            }
            if !seen.insert(code.as_str()) {
                return Err(VocabularyError::Duplicate { code: code.clone() });
            }
            if kind.name_zh.trim().is_empty() || kind.name_en.trim().is_empty() {
                return Err(VocabularyError::NoName { code: code.clone() });
            }
        }
        if !self.0.iter().any(|k| k.two_officers) {
            return Err(VocabularyError::NoTwoOfficerKind);
        }
        if !self.0.iter().any(|k| k.audio_video) {
            return Err(VocabularyError::NoAudioVideoKind);
        }
        if !self.0.iter().any(|k| k.closes_case) {
            return Err(VocabularyError::NoClosingKind);
        }
        Ok(())
    }

    /// The kind a word names, compared in the normalised form.
    pub fn lookup(&self, word: &str) -> Result<&ActionKind, UnknownActionKind> {
        let code = normalize(word);
        self.0
            .iter()
            .find(|k| k.code == code)
            .ok_or_else(|| UnknownActionKind {
                kind: word.to_owned(),
                known: self.codes(),
            })
    }

    /// The kind a word names, if any.
    pub fn get(&self, word: &str) -> Option<&ActionKind> {
        self.lookup(word).ok()
    }

    /// Every code, in the configured order.
    pub fn codes(&self) -> Vec<String> {
        self.0.iter().map(|k| k.code.clone()).collect()
    }

    /// The codes of the kinds that satisfy `pick` (for a store query).
    pub fn codes_where(&self, pick: impl Fn(&ActionKind) -> bool) -> Vec<String> {
        self.0
            .iter()
            .filter(|k| pick(k))
            .map(|k| k.code.clone())
            .collect()
    }

    /// True when records of this word need two certified officers.
    pub fn needs_two_officers(&self, word: &str) -> bool {
        self.get(word).is_some_and(|k| k.two_officers)
    }

    /// True when records of this word need whole-process audio-video.
    pub fn needs_audio_video(&self, word: &str) -> bool {
        self.get(word).is_some_and(|k| k.audio_video)
    }

    /// True when a record of this word closes its case.
    pub fn closes_case(&self, word: &str) -> bool {
        self.get(word).is_some_and(|k| k.closes_case)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} / {})", self.code, self.name_zh, self.name_en)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_say_what_domain_says() {
        let v = ActionKinds::default();
        assert_eq!(v.validate(), Ok(()));
        assert!(v.needs_two_officers("seizure") && v.needs_audio_video("seizure"));
        assert!(v.needs_two_officers("penalty_decision"));
        assert!(!v.needs_audio_video("penalty_decision"));
        assert!(v.closes_case("compulsory_execution") && v.closes_case("no_penalty_decision"));
        assert!(!v.closes_case("seizure") && !v.needs_two_officers("inspection"));
    }

    #[test]
    fn one_normalised_comparison_for_every_rule() {
        let v = ActionKinds::default();
        for word in ["Seizure", " SEIZURE ", "seizure\t"] {
            assert_eq!(v.lookup(word).unwrap().code, "seizure");
            assert!(v.needs_two_officers(word), "{word:?}");
            assert!(v.needs_audio_video(word), "{word:?}");
        }
    }

    #[test]
    fn a_misspelt_kind_is_refused_naming_the_known_ones() {
        let v = ActionKinds::default();
        let err = v.lookup("seizzure").unwrap_err();
        assert_eq!(err.kind, "seizzure");
        let text = err.to_string();
        assert!(text.contains("\"seizzure\" is not known"), "{text}");
        assert!(
            text.contains("seizure") && text.contains("inspection"),
            "{text}"
        );
        assert!(!v.needs_two_officers("seizzure"));
    }

    #[test]
    fn bad_vocabularies_are_refused() {
        let mut v = ActionKinds::default();
        v.0[0].code = "Inspection".into();
        assert!(matches!(v.validate(), Err(VocabularyError::BadCode { .. })));
        let mut v = ActionKinds::default();
        v.0[1].code = v.0[0].code.clone();
        assert!(matches!(
            v.validate(),
            Err(VocabularyError::Duplicate { .. })
        ));
        let mut v = ActionKinds::default();
        v.0.iter_mut().for_each(|k| k.two_officers = false);
        assert_eq!(v.validate(), Err(VocabularyError::NoTwoOfficerKind));
        let mut v = ActionKinds::default();
        v.0.iter_mut().for_each(|k| k.closes_case = false);
        assert_eq!(v.validate(), Err(VocabularyError::NoClosingKind));
        assert_eq!(ActionKinds(vec![]).validate(), Err(VocabularyError::Empty));
    }
}
