//! The upload report (DOMAIN R2): per agency, officer and device, how many recordings
//! are pending, due soon, overdue, uploaded on time and uploaded late; every overdue
//! recording with how late it is; the devices silent long enough to be holding
//! recordings; the devices, and recordings, whose clocks could not be trusted
//! (their deadlines count from when the gateway heard of them); and the recordings at
//! risk: announced by a device since marked lost, and not stored.
//!
//! States are computed at the report's time from each recording's deadline and
//! storage time (`protocol::deadline::upload_state`), not read from the last watcher
//! pass, so the report is exact at `now`. Building it is pure ([`build`]); [`upload_report`]
//! gathers the facts from the store.

use std::collections::{BTreeMap, HashSet};

use protocol::deadline::{DeadlinePolicy, UploadState, lateness, upload_state};
use protocol::{DeviceId, Millis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use store::recordings::{CLOCK_IMPLAUSIBLE, DeviceFlag, ReportRecording, SILENT};
use store::{Store, StoreError};

/// How many recordings are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadCounts {
    /// Not stored, deadline more than `due_soon_hours` away.
    pub pending: u64,
    /// Not stored, deadline within `due_soon_hours`.
    pub due_soon: u64,
    /// Not stored, deadline passed.
    pub overdue: u64,
    /// Stored at or before the deadline.
    pub uploaded_on_time: u64,
    /// Stored after the deadline.
    pub uploaded_late: u64,
}

impl UploadCounts {
    fn add(&mut self, state: UploadState) {
        match state {
            UploadState::Pending => self.pending += 1,
            UploadState::DueSoon => self.due_soon += 1,
            UploadState::Overdue => self.overdue += 1,
            UploadState::UploadedOnTime => self.uploaded_on_time += 1,
            UploadState::UploadedLate => self.uploaded_late += 1,
        }
    }

    /// Every recording counted.
    pub fn total(&self) -> u64 {
        self.pending + self.due_soon + self.overdue + self.uploaded_on_time + self.uploaded_late
    }
}

/// One agency's row (`agency: None` = devices not assigned to an agency).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgencyUploads {
    /// The agency's name.
    pub agency: Option<String>,
    /// Its recordings by state.
    pub counts: UploadCounts,
}

/// One officer's row (`officer: None` = neither the recording nor its device names one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfficerUploads {
    /// Certificate number.
    pub officer: Option<String>,
    /// Their recordings by state.
    pub counts: UploadCounts,
}

/// One device's row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceUploads {
    /// The device id.
    pub device_id: String,
    /// Its agency.
    pub agency: Option<String>,
    /// Its recordings by state.
    pub counts: UploadCounts,
    /// Since when it has been silent, if it is flagged as possibly holding recordings.
    pub silent_since: Option<Millis>,
    /// Since when its clock has been implausible, if it is flagged so.
    pub clock_implausible_since: Option<Millis>,
}

/// A recording not stored: past its deadline (the overdue list), or on a device
/// marked lost (the at-risk list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OverdueRecording {
    /// The recording.
    pub recording_id: String,
    /// The device holding it.
    pub device_id: String,
    /// The device's agency.
    pub agency: Option<String>,
    /// The officer.
    pub officer: Option<String>,
    /// The case.
    pub case_number: Option<String>,
    /// End of the recording (gateway time).
    pub ended_at: Millis,
    /// The deadline (gateway time).
    pub deadline: Millis,
    /// How late it is at the report's time, in milliseconds (0 before its deadline).
    pub late_by_ms: Millis,
    /// The device's clock could not be trusted: its end and deadline count from when
    /// the gateway heard of it.
    pub clock_implausible: bool,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadReport {
    /// Gateway time the states were computed at.
    pub at: Millis,
    /// Every recording.
    pub total: UploadCounts,
    /// Per agency, by name (unassigned first).
    pub agencies: Vec<AgencyUploads>,
    /// Per officer, by certificate number (none first).
    pub officers: Vec<OfficerUploads>,
    /// Per device, by id: every device with recordings, and every silent device.
    pub devices: Vec<DeviceUploads>,
    /// Overdue recordings, the latest first.
    pub overdue: Vec<OverdueRecording>,
    /// Recordings announced by a device marked lost and not stored: their bytes may
    /// never arrive. By deadline.
    pub at_risk: Vec<OverdueRecording>,
    /// Recordings whose device clock could not be trusted (counted in `total` too).
    pub clock_implausible: u64,
}

fn device_row<'a>(
    devices: &'a mut BTreeMap<String, DeviceUploads>,
    device_id: &str,
    agency: Option<&String>,
) -> &'a mut DeviceUploads {
    devices
        .entry(device_id.to_owned())
        .or_insert_with(|| DeviceUploads {
            device_id: device_id.to_owned(),
            agency: agency.cloned(),
            counts: UploadCounts::default(),
            silent_since: None,
            clock_implausible_since: None,
        })
}

/// Builds the report at gateway time `now` from the recordings, the open device
/// flags (silent, clock implausible) and the devices marked lost.
pub fn build(
    recordings: &[ReportRecording],
    device_flags: &[DeviceFlag],
    lost: &HashSet<DeviceId>,
    now: Millis,
    policy: &DeadlinePolicy,
) -> UploadReport {
    let mut total = UploadCounts::default();
    let mut agencies: BTreeMap<Option<String>, UploadCounts> = BTreeMap::new();
    let mut officers: BTreeMap<Option<String>, UploadCounts> = BTreeMap::new();
    let mut devices: BTreeMap<String, DeviceUploads> = BTreeMap::new();
    let mut overdue = Vec::new();
    let mut at_risk = Vec::new();
    let mut clock_implausible = 0;
    for r in recordings {
        let state = upload_state(r.deadline, r.stored_at, now, policy);
        total.add(state);
        agencies.entry(r.agency.clone()).or_default().add(state);
        officers.entry(r.officer.clone()).or_default().add(state);
        device_row(&mut devices, r.device_id.as_str(), r.agency.as_ref())
            .counts
            .add(state);
        clock_implausible += u64::from(r.clock_implausible);
        let line = || OverdueRecording {
            recording_id: r.id.to_string(),
            device_id: r.device_id.as_str().to_owned(),
            agency: r.agency.clone(),
            officer: r.officer.clone(),
            case_number: r.case_number.clone(),
            ended_at: r.ended_at,
            deadline: r.deadline,
            late_by_ms: lateness(r.deadline, now),
            clock_implausible: r.clock_implausible,
        };
        if state == UploadState::Overdue {
            overdue.push(line());
        }
        if r.stored_at.is_none() && lost.contains(&r.device_id) {
            at_risk.push(line());
        }
    }
    for flag in device_flags.iter().filter(|f| f.cleared_at.is_none()) {
        let row = device_row(&mut devices, flag.device_id.as_str(), None);
        match flag.flag.as_str() {
            SILENT => row.silent_since = Some(flag.since),
            CLOCK_IMPLAUSIBLE => row.clock_implausible_since = Some(flag.since),
            _ => {}
        }
    }
    overdue.sort_by(|a, b| {
        b.late_by_ms
            .cmp(&a.late_by_ms)
            .then_with(|| a.recording_id.cmp(&b.recording_id))
    });
    UploadReport {
        at: now,
        total,
        agencies: agencies
            .into_iter()
            .map(|(agency, counts)| AgencyUploads { agency, counts })
            .collect(),
        officers: officers
            .into_iter()
            .map(|(officer, counts)| OfficerUploads { officer, counts })
            .collect(),
        devices: devices.into_values().collect(),
        overdue,
        at_risk,
        clock_implausible,
    }
}

/// The upload report at gateway time `now`, over recordings that ended at or after
/// `from` (gateway time; pass `Millis::MIN` for all).
pub async fn upload_report(
    store: &Store,
    policy: &DeadlinePolicy,
    now: Millis,
    from: Millis,
) -> Result<UploadReport, StoreError> {
    let recordings = store.recordings_for_report(from).await?;
    let mut flags = store.open_device_flags(SILENT).await?;
    flags.extend(store.open_device_flags(CLOCK_IMPLAUSIBLE).await?);
    let lost = store.lost_devices().await?;
    Ok(build(&recordings, &flags, &lost, now, policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const H: Millis = 3_600_000;
    const T0: Millis = 1_790_000_000_000;

    fn recording(
        n: u128,
        device: &str,
        agency: &str,
        ended: Millis,
        stored: Option<Millis>,
    ) -> ReportRecording {
        ReportRecording {
            id: Uuid::from_u128(n),
            device_id: DeviceId::new(device).unwrap(),
            agency: Some(agency.into()),
            officer: Some(format!("officer-{device}")),
            case_number: None,
            ended_at: ended,
            deadline: ended + 24 * H,
            stored_at: stored,
            clock_implausible: false,
        }
    }

    #[test]
    fn counts_every_state_per_agency_officer_and_device() {
        let p = DeadlinePolicy::default();
        let rows = [
            recording(1, "dev-00001", "east", T0 - 2 * H, None), // pending
            recording(2, "dev-00001", "east", T0 - 21 * H, None), // due soon
            recording(3, "dev-00002", "east", T0 - 30 * H, None), // overdue by 6 h
            recording(4, "dev-00002", "west", T0 - 25 * H, None), // overdue by 1 h
            recording(5, "dev-00003", "west", T0 - 30 * H, Some(T0 - 29 * H)), // on time
            recording(6, "dev-00003", "west", T0 - 30 * H, Some(T0 - H)), // late
        ];
        let silent = [DeviceFlag {
            device_id: DeviceId::new("dev-00009").unwrap(),
            flag: SILENT.into(),
            since: T0 - 40 * H,
            raised_at: T0 - 16 * H,
            cleared_at: None,
        }];
        let report = build(&rows, &silent, &HashSet::new(), T0, &p);
        assert_eq!(
            report.total,
            UploadCounts {
                pending: 1,
                due_soon: 1,
                overdue: 2,
                uploaded_on_time: 1,
                uploaded_late: 1
            }
        );
        assert_eq!(report.agencies.len(), 2);
        assert_eq!(report.agencies[0].agency.as_deref(), Some("east"));
        assert_eq!(report.agencies[0].counts.total(), 3);
        assert_eq!(report.agencies[1].counts.uploaded_late, 1);
        assert_eq!(report.officers.len(), 3);
        assert_eq!(report.devices.len(), 4);
        assert_eq!(report.devices[3].device_id, "dev-00009");
        assert_eq!(report.devices[3].silent_since, Some(T0 - 40 * H));
        assert_eq!(report.devices[3].counts.total(), 0);
        let late: Vec<_> = report.overdue.iter().map(|o| o.late_by_ms).collect();
        assert_eq!(late, vec![6 * H, H], "latest first, with how late each is");
    }

    #[test]
    fn implausible_clocks_are_shown_per_device_and_per_overdue_recording() {
        let p = DeadlinePolicy::default();
        let mut reset = recording(1, "dev-00001", "east", T0 - 30 * H, None);
        reset.clock_implausible = true;
        let rows = [reset, recording(2, "dev-00002", "east", T0 - 30 * H, None)];
        let flag = |device: &str, flag: &str, cleared_at| DeviceFlag {
            device_id: DeviceId::new(device).unwrap(),
            flag: flag.into(),
            since: T0 - 31 * H,
            raised_at: T0 - 31 * H,
            cleared_at,
        };
        let flags = [
            flag("dev-00001", CLOCK_IMPLAUSIBLE, None),
            flag("dev-00002", CLOCK_IMPLAUSIBLE, Some(T0 - H)),
        ];
        let report = build(&rows, &flags, &HashSet::new(), T0, &p);
        assert_eq!(report.clock_implausible, 1);
        assert_eq!(report.devices[0].clock_implausible_since, Some(T0 - 31 * H));
        assert_eq!(report.devices[0].silent_since, None);
        assert_eq!(report.devices[1].clock_implausible_since, None, "cleared");
        let marked: Vec<bool> = report.overdue.iter().map(|o| o.clock_implausible).collect();
        assert_eq!(marked, vec![true, false]);
    }

    #[test]
    fn unstored_recordings_of_a_lost_device_are_at_risk() {
        let p = DeadlinePolicy::default();
        let rows = [
            recording(1, "dev-00001", "east", T0 - 2 * H, None), // pending, at risk
            recording(2, "dev-00001", "east", T0 - 30 * H, None), // overdue, at risk
            recording(3, "dev-00001", "east", T0 - 3 * H, Some(T0 - H)), // stored: safe
            recording(4, "dev-00002", "east", T0 - 2 * H, None), // not lost
        ];
        let lost = HashSet::from([DeviceId::new("dev-00001").unwrap()]);
        let report = build(&rows, &[], &lost, T0, &p);
        let ids: Vec<String> = report
            .at_risk
            .iter()
            .map(|r| r.recording_id.clone())
            .collect();
        assert_eq!(
            ids,
            vec![
                Uuid::from_u128(1).to_string(),
                Uuid::from_u128(2).to_string()
            ]
        );
        assert_eq!(report.overdue.len(), 1, "still counted as overdue too");
        assert_eq!(report.total.total(), 4);
    }
}
