//! Applies the full-process rules (DOMAIN R3) to the stored field records: a record of
//! an action kind that needs whole-process audio-video with no stored, linked recording
//! covering its time is flagged "missing audio-video" once its upload deadline has
//! passed; a case closed (by a kind marked "closes the case") whose archive period of
//! `archive_days` calendar days in the agencies' time zone has ended without an
//! archive-stage record is flagged "archive overdue". Open flags whose rule no longer
//! holds are cleared.

use protocol::Millis;
use protocol::deadline::MILLIS_PER_HOUR;

use super::Deadlines;
use super::full_process::{LinkedRecording, covered};
use store::StoreError;
use store::recordings::{CaseFlagKind, NewCaseFlag};

/// Raises and clears case flags at gateway time `now`; returns how many were raised.
pub(super) async fn evaluate(deadlines: &Deadlines, now: Millis) -> Result<usize, StoreError> {
    let raised =
        missing_audio_video(deadlines, now).await? + archive_overdue(deadlines, now).await?;
    for kind in [
        CaseFlagKind::MissingAudioVideo,
        CaseFlagKind::ArchiveOverdue,
    ] {
        let open = deadlines.store.open_case_flags(kind).await?.len();
        deadlines
            .metrics
            .case_flags
            .with_label_values(&[kind.as_str()])
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }
    Ok(raised)
}

async fn linked(
    deadlines: &Deadlines,
    device: &str,
    seq: i64,
) -> Result<Vec<LinkedRecording>, StoreError> {
    Ok(deadlines
        .store
        .linked_recording_spans(device, seq)
        .await?
        .into_iter()
        .map(|(started_at, ended_at, stored)| LinkedRecording {
            started_at,
            ended_at,
            stored,
        })
        .collect())
}

async fn missing_audio_video(deadlines: &Deadlines, now: Millis) -> Result<usize, StoreError> {
    let store = &deadlines.store;
    let policy = &deadlines.policy;
    let window = Millis::from(policy.deadline.upload_deadline_hours) * MILLIS_PER_HOUR;
    // A record's recording is due `upload_deadline_hours` after the record; only then
    // is a missing one a breach (the deadline instant itself still counts as in time).
    let before = now.saturating_sub(window);
    let mut raised = 0;
    for record in store
        .unflagged_full_process_records(&policy.action_kinds.codes_where(|k| k.audio_video), before)
        .await?
    {
        let spans = linked(deadlines, &record.device_id, record.sequence).await?;
        if covered(record.made_at, &spans) {
            continue;
        }
        let flag = NewCaseFlag {
            case_number: record.case_number.clone(),
            kind: CaseFlagKind::MissingAudioVideo,
            subject: record.subject(),
            due_at: record.made_at.saturating_add(window),
            detail: format!(
                "{} record {} has no stored, linked recording covering its time",
                record.action_kind,
                record.subject()
            ),
        };
        if store.raise_case_flag(&flag, now).await? {
            raised += 1;
            tracing::warn!(case = %record.case_number, record = %record.subject(), "missing audio-video");
        }
    }
    for flag in store
        .open_case_flags(CaseFlagKind::MissingAudioVideo)
        .await?
    {
        let Some((device, seq)) = flag.subject.rsplit_once('/') else {
            continue;
        };
        let Ok(seq) = seq.parse::<i64>() else {
            continue;
        };
        let made_at = flag.due_at.saturating_sub(window);
        if covered(made_at, &linked(deadlines, device, seq).await?) {
            store
                .clear_case_flag(CaseFlagKind::MissingAudioVideo, &flag.subject, now)
                .await?;
        }
    }
    Ok(raised)
}

async fn archive_overdue(deadlines: &Deadlines, now: Millis) -> Result<usize, StoreError> {
    let store = &deadlines.store;
    let policy = &deadlines.policy.full_process;
    let zone = &deadlines.zone;
    let closing = deadlines.policy.action_kinds.codes_where(|k| k.closes_case);
    let mut raised = 0;
    for (case_number, closed) in store.unarchived_closed_cases(&closing).await? {
        let due = policy.archive_due(closed, zone);
        if now < due {
            continue;
        }
        let flag = NewCaseFlag {
            case_number: case_number.clone(),
            kind: CaseFlagKind::ArchiveOverdue,
            subject: case_number.clone(),
            due_at: due,
            detail: format!(
                "the case was closed more than {} days ago and has no archive record",
                policy.archive_days
            ),
        };
        if store.raise_case_flag(&flag, now).await? {
            raised += 1;
            tracing::warn!(case = %case_number, "archive overdue");
        }
    }
    for flag in store.open_case_flags(CaseFlagKind::ArchiveOverdue).await? {
        if store.case_is_archived(&flag.case_number).await? {
            store
                .clear_case_flag(CaseFlagKind::ArchiveOverdue, &flag.subject, now)
                .await?;
        }
    }
    Ok(raised)
}
