//! What the allocation report (DOMAIN R1) reads from the registry, and the daily
//! snapshots it keeps so that finance sees the trend.
//!
//! The store only gathers facts (each agency, its officers' certificate standing, its
//! devices' kind and status) in one read snapshot; who counts and how the ratio
//! rounds is `protocol::allocation`'s job, so the rule has one definition.

use protocol::Millis;
use protocol::allocation::{DeviceStanding, OfficerStanding};
use protocol::domain::{AgencyClass, Standing};

use super::rows::{AgencyRow, RawAgency, convert_all};
use super::tx::ReadTx;
use super::{Store, StoreError};

/// One agency and the standing of its officers and devices, as of one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgencyAllocationFacts {
    /// The agency (class, class-C target).
    pub agency: AgencyRow,
    /// Every officer assigned to it.
    pub officers: Vec<OfficerStanding>,
    /// Every device assigned to it.
    pub devices: Vec<DeviceStanding>,
}

/// What the allocation report reads, as of one snapshot: every agency with its
/// officers and devices, and the devices assigned to no agency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocationFacts {
    /// Every agency, by name.
    pub agencies: Vec<AgencyAllocationFacts>,
    /// Devices with no agency: they count for nobody's requirement, but finance sees
    /// them (an unassigned device in service is one not to buy).
    pub unassigned: Vec<DeviceStanding>,
}

/// One agency's row of a daily allocation snapshot, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AllocationSnapshotRow {
    /// The day, `YYYY-MM-DD` in the configured local time.
    pub day: String,
    /// The agency's id.
    pub agency_id: i64,
    /// The agency's name on that day.
    pub agency_name: String,
    /// Its class on that day.
    pub class: AgencyClass,
    /// Certified officers counted.
    pub certified_officers: u32,
    /// Recorders in service.
    pub recorders: u32,
    /// Terminals in service.
    pub terminals: u32,
    /// Devices required; `None` for a class-C agency without a target.
    pub required: Option<u32>,
    /// Devices missing; `None` when it could not be assessed.
    pub shortfall: Option<u32>,
    /// Compliant; `None` when it could not be assessed.
    pub compliant: Option<bool>,
    /// When the snapshot was taken (gateway time).
    pub taken_at: Millis,
}

#[derive(sqlx::FromRow)]
struct RawOfficerStanding {
    agency_id: i64,
    certificate_status: String,
    auxiliary: bool,
    valid_until: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct RawDeviceStanding {
    agency_id: Option<i64>,
    kind: String,
    status: String,
}

#[derive(sqlx::FromRow)]
struct RawSnapshot {
    day: String,
    agency_id: i64,
    agency_name: String,
    class: String,
    certified_officers: i64,
    recorders: i64,
    terminals: i64,
    required: Option<i64>,
    shortfall: Option<i64>,
    compliant: Option<bool>,
    taken_at: i64,
}

fn count(what: &'static str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|e| StoreError::corrupt(what, e))
}

impl TryFrom<RawSnapshot> for AllocationSnapshotRow {
    type Error = StoreError;
    fn try_from(r: RawSnapshot) -> Result<Self, StoreError> {
        let opt = |what, n: Option<i64>| n.map(|n| count(what, n)).transpose();
        Ok(AllocationSnapshotRow {
            class: r
                .class
                .parse()
                .map_err(|e| StoreError::corrupt("snapshot class", e))?,
            certified_officers: count("snapshot officers", r.certified_officers)?,
            recorders: count("snapshot recorders", r.recorders)?,
            terminals: count("snapshot terminals", r.terminals)?,
            required: opt("snapshot required", r.required)?,
            shortfall: opt("snapshot shortfall", r.shortfall)?,
            compliant: r.compliant,
            day: r.day,
            agency_id: r.agency_id,
            agency_name: r.agency_name,
            taken_at: r.taken_at,
        })
    }
}

impl Store {
    /// Every agency with its officers' standing at `at` (an expired certificate does
    /// not count) and its devices' status, and the devices of no agency, read in one
    /// snapshot so that a report never mixes before and after of one change.
    pub async fn allocation_facts(&self, at: Millis) -> Result<AllocationFacts, StoreError> {
        let mut tx = ReadTx::begin(self.db()).await?;
        let (agencies, officers, devices): (
            Vec<RawAgency>,
            Vec<RawOfficerStanding>,
            Vec<RawDeviceStanding>,
        ) = on_tx!(tx, c => {
            let agencies = sqlx::query_as(
                "SELECT id, name, class, class_c_target, created_at FROM agencies ORDER BY name",
            )
            .fetch_all(&mut *c)
            .await?;
            let officers = sqlx::query_as(
                "SELECT agency_id, certificate_status, auxiliary, valid_until FROM officers \
                 WHERE agency_id IS NOT NULL",
            )
            .fetch_all(&mut *c)
            .await?;
            let devices = sqlx::query_as("SELECT agency_id, kind, status FROM devices")
            .fetch_all(&mut *c)
            .await?;
            (agencies, officers, devices)
        });
        tx.finish().await?;
        let agencies: Vec<AgencyRow> = convert_all(agencies)?;
        let mut facts: Vec<AgencyAllocationFacts> = agencies
            .into_iter()
            .map(|agency| AgencyAllocationFacts {
                agency,
                officers: Vec::new(),
                devices: Vec::new(),
            })
            .collect();
        let index: std::collections::HashMap<i64, usize> = facts
            .iter()
            .enumerate()
            .map(|(i, f)| (f.agency.id, i))
            .collect();
        for o in officers {
            let status = o
                .certificate_status
                .parse()
                .map_err(|e| StoreError::corrupt("certificate status", e))?;
            let standing = OfficerStanding {
                standing: Standing::at(status, o.auxiliary, o.valid_until, at),
            };
            if let Some(&i) = index.get(&o.agency_id) {
                facts[i].officers.push(standing);
            }
        }
        let mut unassigned = Vec::new();
        for d in devices {
            let standing = DeviceStanding {
                kind: d
                    .kind
                    .parse()
                    .map_err(|e| StoreError::corrupt("device kind", e))?,
                status: d
                    .status
                    .parse()
                    .map_err(|e| StoreError::corrupt("device status", e))?,
            };
            match d.agency_id.and_then(|id| index.get(&id)) {
                Some(&i) => facts[i].devices.push(standing),
                None => unassigned.push(standing),
            }
        }
        Ok(AllocationFacts {
            agencies: facts,
            unassigned,
        })
    }

    /// True when a snapshot exists for `day`.
    pub async fn has_allocation_snapshot(&self, day: &str) -> Result<bool, StoreError> {
        let found: Option<String> = on_pool!(self.db(), p => {
            sqlx::query_scalar("SELECT day FROM allocation_snapshot_days WHERE day = $1")
                .bind(day)
                .fetch_optional(p)
                .await?
        });
        Ok(found.is_some())
    }

    /// Keeps one day's snapshot: every row, in one transaction. The first snapshot of
    /// a day wins: if the day already has one (another gateway took it, or this one
    /// before a restart), nothing is written and `false` is returned.
    pub async fn save_allocation_snapshot(
        &self,
        day: &str,
        rows: &[AllocationSnapshotRow],
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let exists: Option<String> = on_tx!(tx, c => {
            sqlx::query_scalar("SELECT day FROM allocation_snapshot_days WHERE day = $1")
                .bind(day)
                .fetch_optional(&mut *c)
                .await?
        });
        if exists.is_some() {
            tx.rollback().await?;
            return Ok(false);
        }
        on_tx!(tx, c => {
            sqlx::query("INSERT INTO allocation_snapshot_days (day, taken_at) VALUES ($1, $2)")
                .bind(day)
                .bind(now)
                .execute(&mut *c)
                .await?;
        });
        for row in rows {
            on_tx!(tx, c => {
                sqlx::query(
                    "INSERT INTO allocation_snapshots (day, agency_id, agency_name, class, \
                     certified_officers, recorders, terminals, required, shortfall, compliant, \
                     taken_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(day)
                .bind(row.agency_id)
                .bind(&row.agency_name)
                .bind(row.class.as_str())
                .bind(i64::from(row.certified_officers))
                .bind(i64::from(row.recorders))
                .bind(i64::from(row.terminals))
                .bind(row.required.map(i64::from))
                .bind(row.shortfall.map(i64::from))
                .bind(row.compliant)
                .bind(row.taken_at)
                .execute(&mut *c)
                .await?;
            });
        }
        self.commit(tx).await?;
        Ok(true)
    }

    /// The days in `from..=to` (`YYYY-MM-DD`) that have a snapshot, oldest first.
    pub async fn allocation_snapshot_days(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self.db(), p => {
            sqlx::query_scalar(
                "SELECT day FROM allocation_snapshot_days WHERE day >= $1 AND day <= $2 \
                 ORDER BY day",
            )
            .bind(from)
            .bind(to)
            .fetch_all(p)
            .await?
        }))
    }

    /// The snapshot rows of days `from..=to` (`YYYY-MM-DD`), oldest day first, then by
    /// agency name.
    pub async fn allocation_snapshots(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<AllocationSnapshotRow>, StoreError> {
        let raw: Vec<RawSnapshot> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT day, agency_id, agency_name, class, certified_officers, recorders, \
                 terminals, required, shortfall, compliant, taken_at FROM allocation_snapshots \
                 WHERE day >= $1 AND day <= $2 ORDER BY day, agency_name",
            )
            .bind(from)
            .bind(to)
            .fetch_all(p)
            .await?
        });
        convert_all(raw)
    }
}
