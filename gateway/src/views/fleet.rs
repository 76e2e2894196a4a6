//! The fleet at a glance: devices by status and kind, when each was last seen, which
//! are connected to this gateway now (from the live table), and which are flagged
//! silent (DOMAIN R2: a device that has not synced may be holding recordings).
//!
//! [`summary`] is what the API and the dashboard both call.

use std::collections::{HashMap, HashSet};

use protocol::Millis;
use protocol::domain::{DeviceKind, DeviceStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::live::LiveConnections;
use store::recordings::SILENT;
use store::{DeviceRow, Store, StoreError};

/// How many devices have one status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusCount {
    /// `in_service`, `suspended`, `lost`, `revoked` or `retired`.
    pub status: String,
    /// Recorders with it.
    pub recorders: u64,
    /// Terminals with it.
    pub terminals: u64,
    /// Both.
    pub total: u64,
}

/// One device as the fleet view shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FleetDevice {
    /// Device id.
    pub id: String,
    /// `recorder` or `terminal`.
    pub kind: String,
    /// Hardware serial.
    pub serial: String,
    /// Owning agency.
    pub agency: Option<String>,
    /// Officer it is issued to.
    pub officer: Option<String>,
    /// Fleet status.
    pub status: String,
    /// Last accepted hello, gateway time.
    pub last_seen: Option<Millis>,
    /// Live connections to this gateway now.
    pub connections: u64,
    /// Silent since (the later of last sync and enrollment), when flagged.
    pub silent_since: Option<Millis>,
}

/// The fleet summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FleetSummary {
    /// Gateway time it was read at.
    pub at: Millis,
    /// Every status, in lifecycle order, with its counts (zeros included).
    pub by_status: Vec<StatusCount>,
    /// Devices in the registry.
    pub total: u64,
    /// Live device connections to this gateway.
    pub live_connections: u64,
    /// Distinct devices connected to this gateway.
    pub connected_devices: u64,
    /// Devices flagged silent now.
    pub silent_devices: u64,
    /// Every device, by id.
    pub devices: Vec<FleetDevice>,
}

/// Counts per status and kind (pure).
pub fn count_by_status(devices: &[DeviceRow]) -> Vec<StatusCount> {
    DeviceStatus::ALL
        .iter()
        .map(|status| {
            let of = |kind| {
                devices
                    .iter()
                    .filter(|d| d.status == *status && d.kind == kind)
                    .count() as u64
            };
            let (recorders, terminals) = (of(DeviceKind::Recorder), of(DeviceKind::Terminal));
            StatusCount {
                status: status.as_str().to_owned(),
                recorders,
                terminals,
                total: recorders + terminals,
            }
        })
        .collect()
}

/// The fleet at gateway time `now`, with this gateway's live connections.
pub async fn summary(
    store: &Store,
    live: &LiveConnections,
    now: Millis,
) -> Result<FleetSummary, StoreError> {
    let rows = store.list_devices().await?;
    let agencies: HashMap<i64, String> = store
        .list_agencies()
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let live = live.snapshot();
    let mut connections: HashMap<String, u64> = HashMap::new();
    for c in &live {
        *connections
            .entry(c.device_id.as_str().to_owned())
            .or_default() += 1;
    }
    let silent: HashMap<String, Millis> = store
        .open_device_flags(SILENT)
        .await?
        .into_iter()
        .filter(|f| f.cleared_at.is_none())
        .map(|f| (f.device_id.as_str().to_owned(), f.since))
        .collect();
    let devices: Vec<FleetDevice> = rows
        .iter()
        .map(|d| FleetDevice {
            id: d.id.as_str().to_owned(),
            kind: d.kind.as_str().to_owned(),
            serial: d.serial.clone(),
            agency: d.agency_id.and_then(|id| agencies.get(&id).cloned()),
            officer: d.assigned_officer.clone(),
            status: d.status.as_str().to_owned(),
            last_seen: d.last_seen,
            connections: connections.get(d.id.as_str()).copied().unwrap_or(0),
            silent_since: silent.get(d.id.as_str()).copied(),
        })
        .collect();
    let connected: HashSet<&str> = live.iter().map(|c| c.device_id.as_str()).collect();
    Ok(FleetSummary {
        at: now,
        by_status: count_by_status(&rows),
        total: rows.len() as u64,
        live_connections: live.len() as u64,
        connected_devices: connected.len() as u64,
        silent_devices: devices.iter().filter(|d| d.silent_since.is_some()).count() as u64,
        devices,
    })
}
