//! Flags raised by the recording rules: devices that went silent and may hold
//! recordings (DOMAIN R2), and cases that break the full-process rules (DOMAIN R3).
//!
//! A flag is raised once and cleared (never deleted) when its rule no longer holds,
//! so the history of who was flagged, when, stays readable. The rules themselves are
//! pure (the gateway's `deadlines`); this module only stores their verdicts.

use protocol::{DeviceId, Millis};

use super::super::{Store, StoreError};

/// The device flag for a device silent for `silent_device_hours` or more.
pub const SILENT: &str = "silent";

/// The device flag for a device whose clock cannot be trusted: a skew beyond
/// `policy.clock.max_skew_secs`, or a time after the gateway heard of it (DOMAIN R2).
pub const CLOCK_IMPLAUSIBLE: &str = "clock_implausible";

/// An open (or cleared) flag on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceFlag {
    /// The device.
    pub device_id: DeviceId,
    /// The rule (`silent`).
    pub flag: String,
    /// Since when the rule holds (for `silent`: the last sync, or the enrollment).
    pub since: Millis,
    /// When the gateway raised it.
    pub raised_at: Millis,
    /// When it was cleared, if it was.
    pub cleared_at: Option<Millis>,
}

/// What the silence rule needs to know about a device in service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilentDevice {
    /// The device.
    pub device_id: DeviceId,
    /// Its last hello, on gateway time.
    pub last_seen: Option<Millis>,
    /// When it was enrolled.
    pub enrolled_at: Millis,
}

/// The full-process rules' flags on a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaseFlagKind {
    /// A record of a full-process action kind has no linked recording covering it.
    MissingAudioVideo,
    /// Execution ended more than `archive_days` ago and the case is not archived.
    ArchiveOverdue,
}

impl CaseFlagKind {
    /// The stable spelling in the store and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseFlagKind::MissingAudioVideo => "missing_audio_video",
            CaseFlagKind::ArchiveOverdue => "archive_overdue",
        }
    }

    fn parse(word: &str) -> Result<Self, StoreError> {
        match word {
            "missing_audio_video" => Ok(CaseFlagKind::MissingAudioVideo),
            "archive_overdue" => Ok(CaseFlagKind::ArchiveOverdue),
            other => Err(StoreError::corrupt("case flag", format!("{other:?}"))),
        }
    }
}

/// A flag to raise on a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCaseFlag {
    /// The case.
    pub case_number: String,
    /// The rule.
    pub kind: CaseFlagKind,
    /// What it is about: `<device>/<sequence>` of the record, or the case number.
    pub subject: String,
    /// When the rule's deadline passed (gateway time).
    pub due_at: Millis,
    /// For people: what is missing.
    pub detail: String,
}

/// A flag on a case, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseFlag {
    /// The case.
    pub case_number: String,
    /// The rule.
    pub kind: CaseFlagKind,
    /// What it is about.
    pub subject: String,
    /// When the rule's deadline passed.
    pub due_at: Millis,
    /// When the gateway raised it.
    pub raised_at: Millis,
    /// When it was resolved, if it was.
    pub cleared_at: Option<Millis>,
    /// For people.
    pub detail: String,
}

type RawCaseFlag = (String, String, String, i64, i64, Option<i64>, String);

fn case_flag(r: RawCaseFlag) -> Result<CaseFlag, StoreError> {
    Ok(CaseFlag {
        case_number: r.0,
        kind: CaseFlagKind::parse(&r.1)?,
        subject: r.2,
        due_at: r.3,
        raised_at: r.4,
        cleared_at: r.5,
        detail: r.6,
    })
}

const CASE_FLAG_COLUMNS: &str = "case_number, flag, subject, due_at, raised_at, cleared_at, detail";

impl Store {
    /// Devices in service, with what the silence rule needs.
    pub async fn devices_for_silence(&self) -> Result<Vec<SilentDevice>, StoreError> {
        let rows: Vec<(String, Option<i64>, i64)> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT id, last_seen, enrolled_at FROM devices \
                 WHERE status = 'in_service' ORDER BY id",
            )
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(id, last_seen, enrolled_at)| {
                Ok(SilentDevice {
                    device_id: DeviceId::new(id)
                        .map_err(|e| StoreError::corrupt("device id", e))?,
                    last_seen,
                    enrolled_at,
                })
            })
            .collect()
    }

    /// Open flags of one rule on devices.
    pub async fn open_device_flags(&self, flag: &str) -> Result<Vec<DeviceFlag>, StoreError> {
        let rows: Vec<(String, String, i64, i64, Option<i64>)> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT device_id, flag, since, raised_at, cleared_at FROM device_flags \
                 WHERE flag = $1 AND cleared_at IS NULL ORDER BY device_id",
            )
            .bind(flag)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(id, flag, since, raised_at, cleared_at)| {
                Ok(DeviceFlag {
                    device_id: DeviceId::new(id)
                        .map_err(|e| StoreError::corrupt("device id", e))?,
                    flag,
                    since,
                    raised_at,
                    cleared_at,
                })
            })
            .collect()
    }

    /// Raises a flag on a device unless one is open already. Returns whether it was
    /// raised now.
    pub async fn raise_device_flag(
        &self,
        device: &DeviceId,
        flag: &str,
        since: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self.db(), p => {
            sqlx::query(
                "INSERT INTO device_flags (device_id, flag, since, raised_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (device_id, flag) WHERE cleared_at IS NULL DO NOTHING",
            )
            .bind(device.as_str())
            .bind(flag)
            .bind(since)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Clears a device's open flag of one rule. Returns whether one was open.
    pub async fn clear_device_flag(
        &self,
        device: &DeviceId,
        flag: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self.db(), p => {
            sqlx::query(
                "UPDATE device_flags SET cleared_at = $1 \
                 WHERE device_id = $2 AND flag = $3 AND cleared_at IS NULL",
            )
            .bind(now)
            .bind(device.as_str())
            .bind(flag)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Raises a flag on a case unless the same flag on the same subject is open.
    /// Returns whether it was raised now.
    pub async fn raise_case_flag(
        &self,
        flag: &NewCaseFlag,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self.db(), p => {
            sqlx::query(
                "INSERT INTO case_flags (case_number, flag, subject, due_at, raised_at, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (flag, subject) WHERE cleared_at IS NULL DO NOTHING",
            )
            .bind(&flag.case_number)
            .bind(flag.kind.as_str())
            .bind(&flag.subject)
            .bind(flag.due_at)
            .bind(now)
            .bind(&flag.detail)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Clears an open case flag. Returns whether one was open.
    pub async fn clear_case_flag(
        &self,
        kind: CaseFlagKind,
        subject: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self.db(), p => {
            sqlx::query(
                "UPDATE case_flags SET cleared_at = $1 \
                 WHERE flag = $2 AND subject = $3 AND cleared_at IS NULL",
            )
            .bind(now)
            .bind(kind.as_str())
            .bind(subject)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Every flag (open and cleared) of one case, oldest first: shown with the case.
    pub async fn case_flags(&self, case_number: &str) -> Result<Vec<CaseFlag>, StoreError> {
        let sql = format!(
            "SELECT {CASE_FLAG_COLUMNS} FROM case_flags WHERE case_number = $1 ORDER BY id"
        );
        let rows: Vec<RawCaseFlag> = on_pool!(self.db(), p => {
            sqlx::query_as(&sql).bind(case_number).fetch_all(p).await?
        });
        rows.into_iter().map(case_flag).collect()
    }

    /// Every open flag of one rule, on any case.
    pub async fn open_case_flags(&self, kind: CaseFlagKind) -> Result<Vec<CaseFlag>, StoreError> {
        let sql = format!(
            "SELECT {CASE_FLAG_COLUMNS} FROM case_flags \
             WHERE flag = $1 AND cleared_at IS NULL ORDER BY id"
        );
        let rows: Vec<RawCaseFlag> = on_pool!(self.db(), p => {
            sqlx::query_as(&sql).bind(kind.as_str()).fetch_all(p).await?
        });
        rows.into_iter().map(case_flag).collect()
    }
}

/// A field record of a full-process action kind, as the missing-audio-video rule
/// reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullProcessRecord {
    /// The device whose chain holds it.
    pub device_id: String,
    /// Its sequence number.
    pub sequence: i64,
    /// The case.
    pub case_number: String,
    /// The action kind.
    pub action_kind: String,
    /// When it was made, gateway time.
    pub made_at: Millis,
}

impl FullProcessRecord {
    /// The flag subject naming this record: `<device>/<sequence>`.
    pub fn subject(&self) -> String {
        format!("{}/{}", self.device_id, self.sequence)
    }
}

impl Store {
    /// Field records whose action code (the normalised kind) is one of `action_codes`,
    /// made (gateway time) before `before`, that carry no missing-audio-video flag yet
    /// (open or cleared).
    pub async fn unflagged_full_process_records(
        &self,
        action_kinds: &[String],
        before: Millis,
    ) -> Result<Vec<FullProcessRecord>, StoreError> {
        if action_kinds.is_empty() {
            return Ok(Vec::new());
        }
        let kinds: Vec<String> = (0..action_kinds.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let sql = format!(
            "SELECT f.device_id, f.sequence, f.case_number, f.action_kind, f.made_at_gateway \
             FROM field_records f \
             WHERE f.made_at_gateway < $1 AND f.action_code IN ({}) \
               AND NOT EXISTS (SELECT 1 FROM case_flags c WHERE c.flag = 'missing_audio_video' \
                   AND c.subject = f.device_id || '/' || CAST(f.sequence AS TEXT)) \
             ORDER BY f.made_at_gateway, f.device_id, f.sequence",
            kinds.join(", ")
        );
        let rows: Vec<(String, i64, String, String, i64)> = on_pool!(self.db(), p => {
            let mut q = sqlx::query_as(&sql).bind(before);
            for kind in action_kinds {
                q = q.bind(kind.trim());
            }
            q.fetch_all(p).await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(device_id, sequence, case_number, action_kind, made_at)| FullProcessRecord {
                    device_id,
                    sequence,
                    case_number,
                    action_kind,
                    made_at,
                },
            )
            .collect())
    }

    /// The announced recordings a field record links to, as (start, end, stored) on
    /// gateway time. Linked ids the gateway has not heard of are left out.
    pub async fn linked_recording_spans(
        &self,
        device_id: &str,
        sequence: i64,
    ) -> Result<Vec<(Millis, Millis, bool)>, StoreError> {
        let rows: Vec<(i64, i64, Option<i64>)> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT r.started_at, r.ended_at, r.stored_at FROM field_record_recordings l \
                 JOIN recordings r ON r.id = l.recording_id \
                 WHERE l.device_id = $1 AND l.sequence = $2",
            )
            .bind(device_id)
            .bind(sequence)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(start, end, stored)| (start, end, stored.is_some()))
            .collect())
    }

    /// Each case closed by a record whose action code is one of `closing_codes` (the
    /// kinds that close a case), with the time (gateway time) of its last such record,
    /// for cases with no archive-stage record.
    pub async fn unarchived_closed_cases(
        &self,
        closing_codes: &[String],
    ) -> Result<Vec<(String, Millis)>, StoreError> {
        if closing_codes.is_empty() {
            return Ok(Vec::new());
        }
        let codes: Vec<String> = (0..closing_codes.len())
            .map(|i| format!("${}", i + 1))
            .collect();
        let sql = format!(
            "SELECT f.case_number, MAX(f.made_at_gateway) FROM field_records f \
             WHERE f.action_code IN ({}) \
               AND NOT EXISTS (SELECT 1 FROM field_records a \
                   WHERE a.case_number = f.case_number AND a.stage = 'archive') \
             GROUP BY f.case_number ORDER BY f.case_number",
            codes.join(", ")
        );
        let rows: Vec<(String, i64)> = on_pool!(self.db(), p => {
            let mut q = sqlx::query_as(&sql);
            for code in closing_codes {
                q = q.bind(code.as_str());
            }
            q.fetch_all(p).await?
        });
        Ok(rows)
    }

    /// True when the case has an archive-stage record.
    pub async fn case_is_archived(&self, case_number: &str) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self.db(), p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM field_records WHERE case_number = $1 AND stage = 'archive'",
            )
            .bind(case_number)
            .fetch_one(p)
            .await?
        });
        Ok(n > 0)
    }
}
