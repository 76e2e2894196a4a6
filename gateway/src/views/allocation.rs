//! The allocation report (DOMAIN R1): per agency and in total, its class, certified
//! officers, devices in service by kind, the devices required, the shortfall and
//! whether it complies; as JSON and CSV. A snapshot is kept once a day so finance sees
//! the trend and the number of devices to buy.
//!
//! Building the report is pure (facts and policy in, rows out); the arithmetic is
//! `protocol::allocation`. The store gathers the facts ([`AllocationSource`]), the API
//! and the pages serve the result, and the job `jobs::allocation_snapshots` keeps the
//! history.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use protocol::Millis;
use protocol::allocation::{self, AllocationPolicy, Assessment};
use protocol::domain::AgencyClass;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sheet::Sheet;
use crate::config::AllocationReportConfig;
use clock::{DAY, SharedClock};
use store::{AgencyAllocationFacts, AllocationFacts, AllocationSnapshotRow, Store, StoreError};

/// One agency's row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AllocationRow {
    /// The agency.
    pub agency: String,
    /// `a`, `b` or `c`.
    #[schema(value_type = String)]
    pub class: AgencyClass,
    /// Class C: the target number of devices.
    pub class_c_target: Option<u32>,
    /// Officers with a valid certificate who are not auxiliary staff.
    pub certified_officers: u32,
    /// Recorders in service.
    pub recorders: u32,
    /// Terminals in service.
    pub terminals: u32,
    /// Recorders and terminals in service.
    pub in_service: u32,
    /// Devices required; absent when the agency cannot be assessed.
    pub required: Option<u32>,
    /// Devices missing (to buy); absent when it cannot be assessed.
    pub shortfall: Option<u32>,
    /// Compliant; absent when it cannot be assessed.
    pub compliant: Option<bool>,
    /// Why the agency cannot be assessed (a class-C agency without a target).
    pub problem: Option<String>,
}

/// In-service devices assigned to no agency: their own row, so that the total counts
/// every device in service and finance sees devices that could fill a gap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnassignedRow {
    /// Recorders in service with no agency.
    pub recorders: u32,
    /// Terminals in service with no agency.
    pub terminals: u32,
    /// Both.
    pub in_service: u32,
}

/// The "in total" row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AllocationTotal {
    /// Certified officers, all agencies.
    pub certified_officers: u32,
    /// Recorders in service (unassigned ones included).
    pub recorders: u32,
    /// Terminals in service (unassigned ones included).
    pub terminals: u32,
    /// Devices in service (unassigned ones included).
    pub in_service: u32,
    /// Devices required by the agencies that could be assessed.
    pub required: u32,
    /// The sum of the agencies' shortfalls: the number of devices to buy. One
    /// agency's spare devices do not fill another's gap.
    pub shortfall: u32,
    /// True when every agency is assessed and compliant.
    pub compliant: bool,
    /// Agencies that could not be assessed.
    pub unassessed: u32,
}

/// The ratios the report used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RatiosUsed {
    /// Officers per device, class A.
    pub ratio_a: u32,
    /// Officers per device, class B.
    pub ratio_b: u32,
}

/// The allocation report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AllocationReport {
    /// When it was made (ms since the Unix epoch, gateway time).
    pub generated_at: Millis,
    /// The configured ratios.
    pub ratios: RatiosUsed,
    /// One row per agency, by name.
    pub agencies: Vec<AllocationRow>,
    /// In-service devices assigned to no agency.
    pub unassigned: UnassignedRow,
    /// All agencies together, with the unassigned devices in the device counts.
    pub total: AllocationTotal,
}

/// Builds the report from the registry's facts (pure).
pub fn build(facts: &AllocationFacts, policy: &AllocationPolicy, now: Millis) -> AllocationReport {
    let agencies: Vec<AllocationRow> = facts
        .agencies
        .iter()
        .map(|f| assess_agency(f, policy))
        .collect();
    let counts = allocation::count_in_service(&facts.unassigned);
    let unassigned = UnassignedRow {
        recorders: counts.recorders,
        terminals: counts.terminals,
        in_service: counts.total,
    };
    let mut total = total_of(&agencies);
    total.recorders = total.recorders.saturating_add(unassigned.recorders);
    total.terminals = total.terminals.saturating_add(unassigned.terminals);
    total.in_service = total.in_service.saturating_add(unassigned.in_service);
    AllocationReport {
        generated_at: now,
        ratios: RatiosUsed {
            ratio_a: policy.ratio_a,
            ratio_b: policy.ratio_b,
        },
        total,
        unassigned,
        agencies,
    }
}

fn assess_agency(f: &AgencyAllocationFacts, policy: &AllocationPolicy) -> AllocationRow {
    let certified = allocation::count_certified(&f.officers);
    let devices = allocation::count_in_service(&f.devices);
    let assessed = allocation::assess(
        f.agency.class,
        f.agency.class_c_target,
        certified,
        devices.total,
        policy,
    );
    let (required, shortfall, compliant, problem) = match assessed {
        Ok(Assessment {
            required,
            shortfall,
            compliant,
            ..
        }) => (Some(required), Some(shortfall), Some(compliant), None),
        Err(e) => (None, None, None, Some(e.to_string())),
    };
    AllocationRow {
        agency: f.agency.name.clone(),
        class: f.agency.class,
        class_c_target: f.agency.class_c_target,
        certified_officers: certified,
        recorders: devices.recorders,
        terminals: devices.terminals,
        in_service: devices.total,
        required,
        shortfall,
        compliant,
        problem,
    }
}

/// The total row of a set of agency rows (the protocol's rule for assessed rows; an
/// unassessed agency makes the total non-compliant).
pub fn total_of(rows: &[AllocationRow]) -> AllocationTotal {
    let assessed: Vec<Assessment> = rows
        .iter()
        .filter_map(|r| {
            Some(Assessment {
                certified_officers: r.certified_officers,
                in_service: r.in_service,
                required: r.required?,
                shortfall: r.shortfall?,
                compliant: r.compliant?,
            })
        })
        .collect();
    let sum = allocation::total(&assessed);
    let unassessed = u32::try_from(rows.len() - assessed.len()).unwrap_or(u32::MAX);
    let add =
        |f: fn(&AllocationRow) -> u32| rows.iter().map(f).fold(0u32, |a, b| a.saturating_add(b));
    AllocationTotal {
        certified_officers: add(|r| r.certified_officers),
        recorders: add(|r| r.recorders),
        terminals: add(|r| r.terminals),
        in_service: add(|r| r.in_service),
        required: sum.required,
        shortfall: sum.shortfall,
        compliant: sum.compliant && unassessed == 0,
        unassessed,
    }
}

/// The CSV header of the report.
pub const CSV_HEADER: [&str; 11] = [
    "agency",
    "class",
    "class_c_target",
    "certified_officers",
    "recorders",
    "terminals",
    "in_service",
    "required",
    "shortfall",
    "compliant",
    "problem",
];

/// The agency column of the unassigned row (in CSV and on the page).
pub const UNASSIGNED_LABEL: &str = "未分配 (unassigned)";

/// The report as CSV, safe to open in a spreadsheet (`reports::sheet`): one line per
/// agency, the unassigned devices, then a `TOTAL` line.
pub fn to_csv(report: &AllocationReport) -> String {
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map(|v| v.to_string()).unwrap_or_default()
    }
    let mut out = Sheet::default();
    out.row(CSV_HEADER);
    for r in &report.agencies {
        out.row([
            r.agency.clone(),
            r.class.to_string(),
            opt(r.class_c_target),
            r.certified_officers.to_string(),
            r.recorders.to_string(),
            r.terminals.to_string(),
            r.in_service.to_string(),
            opt(r.required),
            opt(r.shortfall),
            opt(r.compliant),
            r.problem.clone().unwrap_or_default(),
        ]);
    }
    let u = &report.unassigned;
    out.row([
        UNASSIGNED_LABEL.to_owned(),
        String::new(),
        String::new(),
        String::new(),
        u.recorders.to_string(),
        u.terminals.to_string(),
        u.in_service.to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let t = &report.total;
    out.row([
        "TOTAL".to_owned(),
        String::new(),
        String::new(),
        t.certified_officers.to_string(),
        t.recorders.to_string(),
        t.terminals.to_string(),
        t.in_service.to_string(),
        t.required.to_string(),
        t.shortfall.to_string(),
        t.compliant.to_string(),
        if t.unassessed > 0 {
            format!("{} agencies not assessed", t.unassessed)
        } else {
            String::new()
        },
    ]);
    out.finish()
}

/// The local day (`YYYY-MM-DD`) and hour of `now`.
pub fn local_day(now: Millis, zone: &TimeZone) -> (String, u8) {
    let at = Timestamp::from_millisecond(now)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(zone.clone());
    let hour = u8::try_from(at.hour()).unwrap_or(0);
    (at.date().to_string(), hour)
}

/// The day whose snapshot is due at `now`, if one is: from the configured local hour
/// on, when the day has none yet (pure; the caller asks the store).
pub fn snapshot_due(
    now: Millis,
    config: &AllocationReportConfig,
    zone: &TimeZone,
    taken_today: impl FnOnce(&str) -> bool,
) -> Option<String> {
    let (day, hour) = local_day(now, zone);
    (hour >= config.snapshot_hour && !taken_today(&day)).then_some(day)
}

/// A report's agency rows as snapshot rows of `day`.
pub fn snapshot_rows(
    report: &AllocationReport,
    facts: &AllocationFacts,
    day: &str,
) -> Vec<AllocationSnapshotRow> {
    report
        .agencies
        .iter()
        .zip(&facts.agencies)
        .map(|(r, f)| AllocationSnapshotRow {
            day: day.to_owned(),
            agency_id: f.agency.id,
            agency_name: r.agency.clone(),
            class: r.class,
            certified_officers: r.certified_officers,
            recorders: r.recorders,
            terminals: r.terminals,
            required: r.required,
            shortfall: r.shortfall,
            compliant: r.compliant,
            taken_at: report.generated_at,
        })
        .collect()
}

/// One day of the trend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrendDay {
    /// The local day.
    pub day: String,
    /// True for today before its snapshot is taken: the live figures, which the
    /// snapshot will replace.
    #[serde(default)]
    pub live: bool,
    /// The agencies as they were.
    pub agencies: Vec<AllocationRow>,
    /// All agencies together; `total.shortfall` is the number of devices to buy.
    pub total: AllocationTotal,
}

/// Groups snapshot rows into `days` (every day with a snapshot, oldest first, some
/// perhaps with no agencies) with their totals.
pub fn trend(days: Vec<String>, rows: Vec<AllocationSnapshotRow>) -> Vec<TrendDay> {
    let mut days: Vec<TrendDay> = days
        .into_iter()
        .map(|day| TrendDay {
            day,
            live: false,
            agencies: Vec::new(),
            total: AllocationTotal::default(),
        })
        .collect();
    let index: std::collections::HashMap<String, usize> = days
        .iter()
        .enumerate()
        .map(|(i, d)| (d.day.clone(), i))
        .collect();
    for r in rows {
        let row = AllocationRow {
            agency: r.agency_name,
            class: r.class,
            class_c_target: None,
            certified_officers: r.certified_officers,
            recorders: r.recorders,
            terminals: r.terminals,
            in_service: r.recorders.saturating_add(r.terminals),
            required: r.required,
            shortfall: r.shortfall,
            compliant: r.compliant,
            problem: r
                .required
                .is_none()
                .then(|| "not assessed (class C agency without a target)".to_owned()),
        };
        if let Some(&i) = index.get(&r.day) {
            days[i].agencies.push(row);
        }
    }
    for d in &mut days {
        d.total = total_of(&d.agencies);
    }
    days
}

/// Adds today's live figures to `days` when today lies in `from..=to` and has no
/// snapshot yet (pure): finance sees today's shortfall before the snapshot hour, not
/// a missing day. The live day counts agencies only, as snapshots do.
pub fn with_live_today(
    mut days: Vec<TrendDay>,
    today: &str,
    (from, to): (&str, &str),
    live: &AllocationReport,
) -> Vec<TrendDay> {
    let in_range = from <= today && today <= to;
    if in_range && !days.iter().any(|d| d.day == today) {
        days.push(TrendDay {
            day: today.to_owned(),
            live: true,
            total: total_of(&live.agencies),
            agencies: live.agencies.clone(),
        });
        days.sort_by(|a, b| a.day.cmp(&b.day));
    }
    days
}

/// What the allocation report is made from: the store's facts and snapshots, the
/// gateway's clock, the allocation policy and the agencies' time zone. The API, the
/// pages and the daily snapshot job each take one; none needs the gateway's state.
#[derive(Clone)]
pub struct AllocationSource {
    /// Facts (agencies, officers, devices) and the kept snapshots.
    pub store: Store,
    /// Gateway time.
    pub clock: SharedClock,
    /// The ratios and class rules.
    pub policy: AllocationPolicy,
    /// Days of the trend are this zone's days.
    pub zone: TimeZone,
}

impl AllocationSource {
    /// Builds the current report from the store.
    pub async fn current(&self) -> Result<AllocationReport, StoreError> {
        let now = self.clock.now();
        let facts = self.store.allocation_facts(now).await?;
        Ok(build(&facts, &self.policy, now))
    }

    /// The trend of `from..=to` (`YYYY-MM-DD`): every snapshot day, and today's live
    /// figures when today has no snapshot yet.
    pub async fn trend_between(&self, from: &str, to: &str) -> Result<Vec<TrendDay>, StoreError> {
        let (today, _) = local_day(self.clock.now(), &self.zone);
        let day_list = self.store.allocation_snapshot_days(from, to).await?;
        let rows = self.store.allocation_snapshots(from, to).await?;
        let days = trend(day_list, rows);
        if days.iter().any(|d| d.day == today) || !(from <= today.as_str() && today.as_str() <= to)
        {
            return Ok(days);
        }
        let live = self.current().await?;
        Ok(with_live_today(days, &today, (from, to), &live))
    }

    /// The trend of the last `days` local days (today included), oldest first: what the
    /// allocation page shows under the current report.
    pub async fn recent_trend(&self, days: i64) -> Result<Vec<TrendDay>, StoreError> {
        let now = self.clock.now();
        let (to, _) = local_day(now, &self.zone);
        let (from, _) = local_day(now.saturating_sub((days - 1).max(0) * DAY), &self.zone);
        self.trend_between(&from, &to).await
    }

    /// Today, in the agencies' time zone (`YYYY-MM-DD`).
    pub fn today(&self) -> String {
        local_day(self.clock.now(), &self.zone).0
    }

    /// Takes `day`'s snapshot now unless one exists; returns whether it was taken. A
    /// registry with no agency yet (a first start) is not a day's figures: nothing is
    /// kept, so the day's snapshot is taken once there is something to count.
    pub async fn take_snapshot(&self, day: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let facts = self.store.allocation_facts(now).await?;
        if facts.agencies.is_empty() {
            return Ok(false);
        }
        let report = build(&facts, &self.policy, now);
        self.store
            .save_allocation_snapshot(
                day,
                &snapshot_rows(&report, &facts, day),
                report.generated_at,
            )
            .await
    }

    /// Takes today's snapshot if it is due by `config`; returns the day taken.
    pub async fn snapshot_if_due(
        &self,
        config: &AllocationReportConfig,
    ) -> Result<Option<String>, StoreError> {
        let day = self.today();
        let taken = self.store.has_allocation_snapshot(&day).await?;
        let Some(day) = snapshot_due(self.clock.now(), config, &self.zone, |_| taken) else {
            return Ok(None);
        };
        Ok(self.take_snapshot(&day).await?.then_some(day))
    }
}

/// Days of trend the allocation page shows.
pub const PAGE_TREND_DAYS: i64 = 30;

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::allocation::{DeviceStanding, OfficerStanding};
    use protocol::domain::{CertificateStatus, DeviceKind, DeviceStatus};
    use store::AgencyRow;

    fn facts(
        name: &str,
        class: AgencyClass,
        target: Option<u32>,
        officers: Vec<OfficerStanding>,
        devices: Vec<DeviceStanding>,
    ) -> AgencyAllocationFacts {
        AgencyAllocationFacts {
            agency: AgencyRow {
                id: 1,
                name: name.into(),
                class,
                class_c_target: target,
                created_at: 0,
            },
            officers,
            devices,
        }
    }

    fn only(agencies: Vec<AgencyAllocationFacts>) -> AllocationFacts {
        AllocationFacts {
            agencies,
            unassigned: Vec::new(),
        }
    }

    #[test]
    fn unassigned_devices_in_service_are_their_own_row_and_in_the_total() {
        let mut f = only(vec![facts(
            "A1",
            AgencyClass::A,
            None,
            officers(4, 0, 0),
            devices(DeviceKind::Recorder, DeviceStatus::InService, 1),
        )]);
        f.unassigned = devices(DeviceKind::Recorder, DeviceStatus::InService, 2);
        f.unassigned
            .extend(devices(DeviceKind::Terminal, DeviceStatus::Lost, 3));
        let r = build(&f, &AllocationPolicy::default(), 0);
        assert_eq!(
            r.unassigned,
            UnassignedRow {
                recorders: 2,
                terminals: 0,
                in_service: 2
            }
        );
        assert_eq!((r.total.in_service, r.total.recorders), (3, 3));
        // Unassigned devices fill no agency's gap.
        assert_eq!((r.total.required, r.total.shortfall), (2, 1));
        let csv = to_csv(&r);
        assert!(
            csv.contains(&format!("{UNASSIGNED_LABEL},,,,2,0,2,,,,")),
            "{csv}"
        );
        assert!(
            csv.lines()
                .last()
                .unwrap()
                .starts_with("TOTAL,,,4,3,0,3,2,1,false"),
            "{csv}"
        );
    }

    #[test]
    fn today_shows_live_figures_until_its_snapshot() {
        let f = only(vec![facts(
            "A1",
            AgencyClass::A,
            None,
            officers(10, 0, 0),
            vec![],
        )]);
        let live = build(&f, &AllocationPolicy::default(), 0);
        let range = ("2026-11-01", "2026-11-30");
        let days = with_live_today(Vec::new(), "2026-11-26", range, &live);
        assert_eq!(days.len(), 1);
        assert!(days[0].live);
        assert_eq!(days[0].total.shortfall, 5);
        // Outside the range asked for, nothing is added.
        let days = with_live_today(Vec::new(), "2026-12-01", range, &live);
        assert!(days.is_empty());
        // Once the day has its snapshot, the snapshot stands.
        let snap = trend(vec!["2026-11-26".into()], Vec::new());
        let days = with_live_today(snap, "2026-11-26", range, &live);
        assert_eq!(days.len(), 1);
        assert!(!days[0].live);
    }

    fn officers(valid: usize, auxiliary: usize, withdrawn: usize) -> Vec<OfficerStanding> {
        let o = |status, auxiliary| OfficerStanding {
            standing: protocol::domain::Standing::at(status, auxiliary, None, 0),
        };
        std::iter::repeat_n(o(CertificateStatus::Valid, false), valid)
            .chain(std::iter::repeat_n(
                o(CertificateStatus::Valid, true),
                auxiliary,
            ))
            .chain(std::iter::repeat_n(
                o(CertificateStatus::Withdrawn, false),
                withdrawn,
            ))
            .collect()
    }

    fn devices(kind: DeviceKind, status: DeviceStatus, n: usize) -> Vec<DeviceStanding> {
        vec![DeviceStanding { kind, status }; n]
    }

    #[test]
    fn class_a_with_41_certified_officers_needs_21() {
        let mut d = devices(DeviceKind::Recorder, DeviceStatus::InService, 10);
        d.extend(devices(DeviceKind::Terminal, DeviceStatus::InService, 5));
        d.extend(devices(DeviceKind::Recorder, DeviceStatus::Lost, 4));
        let f = only(vec![facts(
            "A1",
            AgencyClass::A,
            None,
            officers(41, 3, 2),
            d,
        )]);
        let r = build(&f, &AllocationPolicy::default(), 7);
        let row = &r.agencies[0];
        assert_eq!(row.certified_officers, 41);
        assert_eq!((row.recorders, row.terminals, row.in_service), (10, 5, 15));
        assert_eq!((row.required, row.shortfall), (Some(21), Some(6)));
        assert_eq!(r.total.shortfall, 6);
        assert!(!r.total.compliant);
    }

    #[test]
    fn a_class_c_agency_without_a_target_is_shown_not_counted_as_compliant() {
        let f = only(vec![
            facts("C1", AgencyClass::C, None, officers(3, 0, 0), vec![]),
            facts(
                "B1",
                AgencyClass::B,
                None,
                officers(3, 0, 0),
                devices(DeviceKind::Terminal, DeviceStatus::InService, 1),
            ),
        ]);
        let r = build(&f, &AllocationPolicy::default(), 0);
        assert!(r.agencies[0].problem.is_some());
        assert_eq!(r.agencies[0].required, None);
        assert_eq!(r.total.unassessed, 1);
        assert_eq!(r.total.shortfall, 0);
        assert!(!r.total.compliant);
        let csv = to_csv(&r);
        assert!(csv.starts_with("agency,class,"), "{csv}");
        assert!(
            csv.lines()
                .last()
                .unwrap()
                .starts_with("TOTAL,,,6,0,1,1,1,0,false"),
            "{csv}"
        );
    }

    #[test]
    fn days_are_local_and_the_snapshot_waits_for_its_hour() {
        // 2026-11-25T16:30:00Z is 2026-11-26 00:30 in China.
        let now = 1_795_624_200_000;
        let cst = crate::config::resolve_time_zone("Asia/Shanghai").unwrap();
        let utc = crate::config::resolve_time_zone("+00:00").unwrap();
        assert_eq!(local_day(now, &cst), ("2026-11-26".to_owned(), 0));
        assert_eq!(local_day(now, &utc), ("2026-11-25".to_owned(), 16));
        let config = AllocationReportConfig::default();
        assert_eq!(snapshot_due(now, &config, &cst, |_| false), None);
        let later = now + 3_600_000;
        assert_eq!(
            snapshot_due(later, &config, &cst, |_| false).as_deref(),
            Some("2026-11-26")
        );
        assert_eq!(snapshot_due(later, &config, &cst, |_| true), None);
    }

    #[test]
    fn the_trend_groups_days_and_totals_them() {
        let row = |day: &str, name: &str, shortfall| AllocationSnapshotRow {
            day: day.into(),
            agency_id: 1,
            agency_name: name.into(),
            class: AgencyClass::A,
            certified_officers: 4,
            recorders: 1,
            terminals: 0,
            required: Some(2),
            shortfall: Some(shortfall),
            compliant: Some(shortfall == 0),
            taken_at: 0,
        };
        let days = ["2026-11-23", "2026-11-24", "2026-11-25"].map(String::from);
        let t = trend(
            days.to_vec(),
            vec![
                row("2026-11-24", "A1", 1),
                row("2026-11-24", "A2", 1),
                row("2026-11-25", "A1", 0),
            ],
        );
        assert_eq!(t.len(), 3);
        assert!(t[0].agencies.is_empty() && t[0].total.compliant);
        let t = &t[1..];
        assert_eq!(t[0].total.shortfall, 2);
        assert_eq!(t[1].total.shortfall, 0);
        assert!(t[1].total.compliant);
    }
}
