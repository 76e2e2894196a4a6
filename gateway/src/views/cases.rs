//! The case view (DOMAIN R3, 全过程记录 and 一户式集中储存): every field record and
//! recording of one case or enforcement target, in order, each record's hash and link
//! re-verified, with the tamper, two-officer, missing-audio-video and archive-overdue
//! flags that concern them. Only supervisors (legal reviewers) and admins read it.
//!
//! [`case_view`] and [`target_view`] are what the API and the dashboard both call;
//! gathering is here, the chain check and the flags are the store's. Who may read it
//! is [`crate::access::ReadCaseContent`], checked by the caller.

use std::collections::{BTreeSet, HashMap, HashSet};

use protocol::action_kind::ActionKinds;
use protocol::deadline::{DeadlinePolicy, lateness, upload_state};
use protocol::message::FieldRecord;
use protocol::{DeviceId, Millis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ViewError;
use crate::config::PolicyConfig;
use store::recordings::{CaseFlag, media_word};
use store::{RecordView, RecordingRow, Store, StoredRecord, TamperFlag, TwoOfficerFlag};

/// What a view is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// One case number.
    Case,
    /// One enforcement target, across its cases.
    Target,
}

/// A two-officer rule breach on a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TwoOfficerBreach {
    /// Distinct certified officers present.
    pub certified: u32,
    /// Certified officers required.
    pub required: u32,
    /// Listed numbers that did not count, with why (`ZF-9 (withdrawn)`).
    pub not_counted: Vec<String>,
    /// When the gateway flagged it.
    pub flagged_at: Millis,
}

/// One stored field record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordEntry {
    /// The device whose chain holds it.
    pub device_id: String,
    /// Its sequence number in that chain.
    pub sequence: u64,
    /// Its hash (hex).
    pub hash: String,
    /// The hash of the record before it (hex).
    pub previous_hash: String,
    /// The case.
    pub case_number: String,
    /// The enforcement target.
    pub target: String,
    /// `initiation`, `investigation`, `review_decision`, `service_execution`, `archive`.
    pub stage: String,
    /// What was done.
    pub action_kind: String,
    /// The text record.
    pub text: String,
    /// Certificate numbers of the officers present.
    pub officers: Vec<String>,
    /// Where, as written.
    pub location: Option<String>,
    /// Latitude in microdegrees.
    pub lat_e6: Option<i32>,
    /// Longitude in microdegrees.
    pub lon_e6: Option<i32>,
    /// When, on the device's clock.
    pub made_at: Millis,
    /// When, on gateway time (corrected by the device's measured skew, or when it
    /// arrived if the device's clock could not be trusted).
    pub made_at_gateway: Millis,
    /// The device's clock could not be trusted for its time (DOMAIN R2).
    pub clock_implausible: bool,
    /// When the gateway stored it.
    pub received_at: Millis,
    /// Recordings it links to.
    pub recordings: Vec<String>,
    /// The sequence number it corrects, if it is a correction.
    pub corrects: Option<u64>,
    /// The record it corrects (`<device>/<sequence>`), if it is a correction.
    pub correction_of: Option<String>,
    /// The records that correct it (`<device>/<sequence>`), oldest first: the latest
    /// restates it, and its two-officer flag is judged on that (DOMAIN R3: corrections
    /// are new records).
    pub corrected_by: Vec<String>,
    /// `None` when its hash and link verify; otherwise what is wrong.
    pub chain_break: Option<String>,
    /// True when its action kind must be recorded on audio-video for the whole process.
    pub needs_audio_video: bool,
    /// The two-officer flag on it, if any.
    pub two_officer: Option<TwoOfficerBreach>,
}

/// One recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordingEntry {
    /// The recording id.
    pub id: String,
    /// The device that announced it.
    pub device_id: String,
    /// The officer, as announced.
    pub officer: Option<String>,
    /// The case, as announced.
    pub case_number: Option<String>,
    /// `audio` or `video`.
    pub media: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex), verified before it was stored.
    pub sha256: String,
    /// Start, gateway time.
    pub started_at: Millis,
    /// End, gateway time.
    pub ended_at: Millis,
    /// Upload deadline, gateway time.
    pub deadline: Millis,
    /// Its state at the view's time (`pending`, `due_soon`, `overdue`,
    /// `uploaded_on_time`, `uploaded_late`).
    pub state: String,
    /// When it became durable, if it did.
    pub stored_at: Option<Millis>,
    /// How far past the deadline it was stored, or is now (0 when in time).
    pub late_by_ms: Millis,
    /// The device's clock could not be trusted: its end and deadline count from its
    /// announcement (DOMAIN R2).
    pub clock_implausible: bool,
    /// Not stored, and its device is marked lost: the bytes may never arrive.
    pub at_risk: bool,
    /// Records that link to it (`<device>/<sequence>`).
    pub linked_from: Vec<String>,
}

/// A full-process flag on a case (`missing_audio_video`, `archive_overdue`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseFlagEntry {
    /// The case.
    pub case_number: String,
    /// The rule.
    pub kind: String,
    /// What it is about: `<device>/<sequence>` of a record, or the case number.
    pub subject: String,
    /// When the rule's deadline passed.
    pub due_at: Millis,
    /// When the gateway raised it.
    pub raised_at: Millis,
    /// When it was resolved, if it was.
    pub cleared_at: Option<Millis>,
    /// What is missing.
    pub detail: String,
}

impl From<CaseFlag> for CaseFlagEntry {
    fn from(f: CaseFlag) -> Self {
        CaseFlagEntry {
            case_number: f.case_number,
            kind: f.kind.as_str().to_owned(),
            subject: f.subject,
            due_at: f.due_at,
            raised_at: f.raised_at,
            cleared_at: f.cleared_at,
            detail: f.detail,
        }
    }
}

/// A record refused as possible tampering, decoded from its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TamperEntry {
    /// Store id of the flag.
    pub id: i64,
    /// The device that sent it.
    pub device_id: String,
    /// Its sequence number.
    pub sequence: u64,
    /// `fork`, `gap`, `altered` or `broken_link`.
    pub reason: String,
    /// For a gap: the sequence number the chain expected.
    pub expected_sequence: Option<u64>,
    /// The hash it carried.
    pub record_hash: String,
    /// When the gateway flagged it.
    pub flagged_at: Millis,
    /// The refused record's case (absent when its evidence cannot be decoded).
    pub case_number: Option<String>,
    /// Its target.
    pub target: Option<String>,
    /// Its stage.
    pub stage: Option<String>,
    /// Its text.
    pub text: Option<String>,
}

impl TamperEntry {
    /// The entry of a flag; the refused record's content when its evidence decodes.
    pub fn of(flag: &TamperFlag) -> Self {
        let record: Option<FieldRecord> = flag.record().ok();
        let content = record.as_ref().map(|r| &r.content);
        TamperEntry {
            id: flag.id,
            device_id: flag.device.as_str().to_owned(),
            sequence: flag.sequence,
            reason: flag.reason.clone(),
            expected_sequence: flag.expected_sequence,
            record_hash: flag.record_hash.clone(),
            flagged_at: flag.flagged_at,
            case_number: content.map(|c| c.case_number.clone()),
            target: content.map(|c| c.target.clone()),
            stage: content.map(|c| c.stage.as_str().to_owned()),
            text: content.map(|c| c.text.clone()),
        }
    }
}

/// How much the view holds and how much of it is flagged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseSummary {
    /// Field records.
    pub records: u64,
    /// Recordings.
    pub recordings: u64,
    /// Stored records whose hash or link no longer verifies.
    pub chain_breaks: u64,
    /// Records refused as possible tampering.
    pub tamper_flags: u64,
    /// Records that broke the two-officer rule.
    pub two_officer_flags: u64,
    /// Open missing-audio-video flags.
    pub missing_audio_video: u64,
    /// Open archive-overdue flags.
    pub archive_overdue: u64,
    /// Recordings overdue now.
    pub overdue_recordings: u64,
    /// Recordings at risk: not stored, on a device marked lost.
    pub at_risk_recordings: u64,
    /// Records and recordings whose device clock could not be trusted.
    pub clock_implausible: u64,
}

/// Everything about one case or enforcement target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseView {
    /// Gateway time the view was read at.
    pub at: Millis,
    /// What the view is of.
    pub kind: SubjectKind,
    /// The case number or target asked for.
    pub subject: String,
    /// The case numbers in the view.
    pub cases: Vec<String>,
    /// True when every stored record's hash and link verified.
    pub chain_verified: bool,
    /// The counts.
    pub summary: CaseSummary,
    /// Every record, in gateway-time order (then device, then sequence).
    pub records: Vec<RecordEntry>,
    /// Every recording, by start time.
    pub recordings: Vec<RecordingEntry>,
    /// Full-process flags (open and cleared), oldest first.
    pub case_flags: Vec<CaseFlagEntry>,
    /// Refused records that belong to the view, oldest first.
    pub tamper_flags: Vec<TamperEntry>,
}

fn record_entry(
    r: &StoredRecord,
    action_kinds: &ActionKinds,
    two_officer: &HashMap<(String, u64), &TwoOfficerFlag>,
    corrections: &HashMap<(String, u64), Vec<u64>>,
) -> RecordEntry {
    let c = &r.record.content;
    let device_id = r.device.as_str().to_owned();
    let corrected_by = corrections
        .get(&(device_id.clone(), r.record.sequence))
        .map(|seqs| seqs.iter().map(|s| format!("{device_id}/{s}")).collect())
        .unwrap_or_default();
    let correction_of = c.corrects.map(|s| format!("{device_id}/{s}"));
    let breach = two_officer
        .get(&(device_id.clone(), r.record.sequence))
        .map(|f| TwoOfficerBreach {
            certified: f.certified,
            required: f.required,
            not_counted: f.not_counted.iter().map(ToString::to_string).collect(),
            flagged_at: f.flagged_at,
        });
    RecordEntry {
        device_id,
        sequence: r.record.sequence,
        hash: r.record.hash.to_hex(),
        previous_hash: r.record.previous_hash.to_hex(),
        case_number: c.case_number.clone(),
        target: c.target.clone(),
        stage: c.stage.as_str().to_owned(),
        action_kind: c.action_kind.clone(),
        text: c.text.clone(),
        officers: c.officers.clone(),
        location: c.location.clone(),
        lat_e6: c.coordinates.map(|p| p.lat_e6),
        lon_e6: c.coordinates.map(|p| p.lon_e6),
        made_at: c.made_at,
        made_at_gateway: r.made_at_gateway,
        clock_implausible: r.clock_implausible,
        received_at: r.received_at,
        recordings: c.recordings.iter().map(Uuid::to_string).collect(),
        corrects: c.corrects,
        correction_of,
        corrected_by,
        chain_break: r.chain_break.as_ref().map(ToString::to_string),
        needs_audio_video: action_kinds.needs_audio_video(&c.action_kind),
        two_officer: breach,
    }
}

fn recording_entry(
    r: &RecordingRow,
    now: Millis,
    deadline: &DeadlinePolicy,
    lost: &HashSet<DeviceId>,
    linked_from: Vec<String>,
) -> RecordingEntry {
    let upload = upload_state(r.deadline, r.stored_at, now, deadline);
    RecordingEntry {
        id: r.id.to_string(),
        device_id: r.device_id.as_str().to_owned(),
        officer: r.officer.clone(),
        case_number: r.case_number.clone(),
        media: media_word(r.media).to_owned(),
        size: r.size,
        sha256: r.sha256.to_hex(),
        started_at: r.started_at,
        ended_at: r.ended_at,
        deadline: r.deadline,
        state: upload.as_str().to_owned(),
        stored_at: r.stored_at,
        late_by_ms: lateness(r.deadline, r.stored_at.unwrap_or(now)),
        clock_implausible: r.clock_implausible,
        at_risk: r.stored_at.is_none() && lost.contains(&r.device_id),
        linked_from,
    }
}

/// Checks a case number or target typed by an operator.
fn subject(value: &str, what: &str) -> Result<String, ViewError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ViewError::Invalid(format!("the {what} is empty")));
    }
    Ok(value.to_owned())
}

/// The view of one case at gateway time `now`: its records, the recordings announced
/// for it or linked from its records, its flags, judged by `policy`.
pub async fn case_view(
    store: &Store,
    policy: &PolicyConfig,
    now: Millis,
    case_number: &str,
) -> Result<CaseView, ViewError> {
    let case_number = subject(case_number, "case number")?;
    let records = store.case_records(&case_number).await?;
    assemble(store, policy, now, SubjectKind::Case, case_number, records).await
}

/// The view of one enforcement target (一户式集中储存): the records of every case
/// about it, with those cases' recordings and flags.
pub async fn target_view(
    store: &Store,
    policy: &PolicyConfig,
    now: Millis,
    target: &str,
) -> Result<CaseView, ViewError> {
    let target = subject(target, "target")?;
    let records = store.target_records(&target).await?;
    assemble(store, policy, now, SubjectKind::Target, target, records).await
}

async fn assemble(
    store: &Store,
    policy: &PolicyConfig,
    now: Millis,
    kind: SubjectKind,
    subject: String,
    view: RecordView,
) -> Result<CaseView, ViewError> {
    let mut cases: BTreeSet<String> = view
        .records
        .iter()
        .map(|r| r.record.content.case_number.clone())
        .collect();
    if kind == SubjectKind::Case {
        cases.insert(subject.clone());
    }

    // Recordings: those announced for the cases, then those the records link to.
    let mut recordings: Vec<RecordingRow> = Vec::new();
    for case in &cases {
        recordings.extend(store.recordings_of_case(case).await?);
    }
    let mut seen: HashSet<Uuid> = recordings.iter().map(|r| r.id).collect();
    let mut links: HashMap<Uuid, Vec<String>> = HashMap::new();
    for r in &view.records {
        for id in &r.record.content.recordings {
            links
                .entry(*id)
                .or_default()
                .push(format!("{}/{}", r.device, r.record.sequence));
            if seen.insert(*id)
                && let Some(row) = store.recording(*id).await?
            {
                recordings.push(row);
            }
        }
    }
    recordings.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));

    let two_officer_flags = store.two_officer_flags().await?;
    let two_officer: HashMap<(String, u64), &TwoOfficerFlag> = two_officer_flags
        .iter()
        .map(|f| ((f.device.as_str().to_owned(), f.sequence), f))
        .collect();

    let mut case_flags = Vec::new();
    for case in &cases {
        case_flags.extend(
            store
                .case_flags(case)
                .await?
                .into_iter()
                .map(CaseFlagEntry::from),
        );
    }
    case_flags.sort_by_key(|f| f.raised_at);

    let tamper_flags: Vec<TamperEntry> = store
        .tamper_flags(None)
        .await?
        .iter()
        .map(TamperEntry::of)
        .filter(|t| match kind {
            SubjectKind::Case => t.case_number.as_deref() == Some(subject.as_str()),
            SubjectKind::Target => t.target.as_deref() == Some(subject.as_str()),
        })
        .collect();

    // Each record's corrections, both ways, whatever case they were filed under.
    let mut corrections: HashMap<(String, u64), Vec<u64>> = HashMap::new();
    let devices: BTreeSet<&DeviceId> = view.records.iter().map(|r| &r.device).collect();
    for device in devices {
        for (correction, corrected) in store.corrections_in_chain(device).await? {
            corrections
                .entry((device.as_str().to_owned(), corrected))
                .or_default()
                .push(correction);
        }
    }
    let records: Vec<RecordEntry> = view
        .records
        .iter()
        .map(|r| record_entry(r, &policy.action_kinds, &two_officer, &corrections))
        .collect();
    let lost = store.lost_devices().await?;
    let recordings: Vec<RecordingEntry> = recordings
        .iter()
        .map(|r| {
            recording_entry(
                r,
                now,
                &policy.deadline,
                &lost,
                links.remove(&r.id).unwrap_or_default(),
            )
        })
        .collect();
    if records.is_empty()
        && recordings.is_empty()
        && case_flags.is_empty()
        && tamper_flags.is_empty()
    {
        let what = match kind {
            SubjectKind::Case => "case",
            SubjectKind::Target => "target",
        };
        return Err(ViewError::NotFound(format!(
            "no records, recordings or flags of {what} {subject:?}"
        )));
    }
    let open = |k: &str| {
        case_flags
            .iter()
            .filter(|f| f.kind == k && f.cleared_at.is_none())
            .count() as u64
    };
    let summary = CaseSummary {
        records: records.len() as u64,
        recordings: recordings.len() as u64,
        chain_breaks: records.iter().filter(|r| r.chain_break.is_some()).count() as u64,
        tamper_flags: tamper_flags.len() as u64,
        two_officer_flags: records.iter().filter(|r| r.two_officer.is_some()).count() as u64,
        missing_audio_video: open("missing_audio_video"),
        archive_overdue: open("archive_overdue"),
        overdue_recordings: recordings.iter().filter(|r| r.state == "overdue").count() as u64,
        at_risk_recordings: recordings.iter().filter(|r| r.at_risk).count() as u64,
        clock_implausible: (records.iter().filter(|r| r.clock_implausible).count()
            + recordings.iter().filter(|r| r.clock_implausible).count())
            as u64,
    };
    Ok(CaseView {
        at: now,
        kind,
        subject,
        cases: cases.into_iter().collect(),
        chain_verified: view.chain_verified(),
        summary,
        records,
        recordings,
        case_flags,
        tamper_flags,
    })
}
