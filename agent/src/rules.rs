//! What the terminal checks before it seals a record, offline as well as online, and
//! every message about it in one place (a later catalogue turns them into Chinese and
//! English): an unknown action kind is refused listing the known ones (DOMAIN R3), a
//! time beyond the clock tolerance is refused (R2), and the officer is warned when the
//! synced roster says the two-officer rule is not met (R4) or an action that needs
//! whole-process audio-video has no recording linked (R3).

use protocol::action_kind::{ActionKind, ActionKinds, UnknownActionKind};
use protocol::message::FlagChange;
use protocol::message::RecordContent;
use protocol::two_officer::NotCountedReason;
use protocol::two_officer::{self, OfficerPresence, TwoOfficerOutcome, TwoOfficerPolicy};

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

/// Why a listed number did not count, in Chinese and English.
fn reason_words(reason: NotCountedReason) -> (&'static str, &'static str) {
    match reason {
        NotCountedReason::UnknownCertificate => ("无此证件", "unknown certificate"),
        NotCountedReason::Withdrawn => ("证件已收回", "withdrawn"),
        NotCountedReason::Revoked => ("证件已吊销", "revoked"),
        NotCountedReason::Expired => ("证件已过期", "expired"),
        NotCountedReason::Auxiliary => (
            "辅助人员，非执法人员",
            "auxiliary, not an enforcement officer",
        ),
        NotCountedReason::ListedMoreThanOnce => ("重复列出", "listed more than once"),
    }
}

/// What judged the record, in Chinese and English.
fn cause_words(change: &FlagChange) -> (String, String) {
    let reference = change.cause_ref.as_deref().unwrap_or("?");
    match change.cause.as_str() {
        "ingest" => ("上传时判定".into(), "judged when it was stored".into()),
        "registry" => (
            format!("执法证件 {reference} 变更后复核"),
            format!("reviewed after certificate {reference} changed"),
        ),
        "correction" => (
            format!("更正记录 {reference} 到达后复核"),
            format!("reviewed after correction {reference} arrived"),
        ),
        "upgrade" => ("系统升级后复核".into(), "reviewed on upgrade".into()),
        other => (format!("复核（{other}）"), format!("reviewed ({other})")),
    }
}

/// One flag change on this device's records in words for the officer, Chinese first
/// and English second, with the kind's names from the vocabulary the gateway sent.
pub fn flag_notice(change: &FlagChange, kinds: &ActionKinds) -> String {
    let (kind_zh, kind_en) = kinds.get(&change.action_kind).map_or(
        (change.action_kind.as_str(), change.action_kind.as_str()),
        |k| (k.name_zh.as_str(), k.name_en.as_str()),
    );
    let (cause_zh, cause_en) = cause_words(change);
    let sequence = change.sequence;
    let certified = change.certified;
    let required = change.required;
    if !change.raised {
        return format!(
            "两人执法标记已解除：记录 #{sequence}（{kind_zh}）持证执法人员 {certified} 名；{cause_zh}。 / \
             two-officer flag cleared: record #{sequence} ({kind_en}), certified officers present: {certified}; {cause_en}."
        );
    }
    let mut zh = format!(
        "两人执法标记：记录 #{sequence}（{kind_zh}）持证执法人员 {certified} 名，需 {required} 名"
    );
    let mut en = format!(
        "two-officer flag raised: record #{sequence} ({kind_en}), certified officers present: {certified} of {required} required"
    );
    if !change.not_counted.is_empty() {
        let (zh_list, en_list): (Vec<String>, Vec<String>) = change
            .not_counted
            .iter()
            .map(|n| {
                let (z, e) = reason_words(n.reason);
                (
                    format!("{}（{z}）", n.certificate_number),
                    format!("{} ({e})", n.certificate_number),
                )
            })
            .unzip();
        zh.push_str(&format!("；未计入：{}", zh_list.join("，")));
        en.push_str(&format!("; not counted: {}", en_list.join(", ")));
    }
    format!("{zh}；{cause_zh}。 / {en}; {cause_en}.")
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
