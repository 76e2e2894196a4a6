//! The fleet page: devices by status and kind, live connections to this gateway, and
//! every device with when it was last seen (from `views::fleet::summary`, as the API).

use std::sync::Arc;

use axum::extract::State;
use maud::{Markup, html};
use protocol::domain::DeviceStatus;

use super::layout::{Page, PageError, maybe_time, page, time};
use super::session::Signed;
use crate::access::ReadRegistry;
use crate::state::GatewayState;
use crate::views::fleet::{FleetDevice, FleetSummary, summary};

/// Lifecycle position of a status word, for sorting (unknown words last).
fn status_rank(status: &str) -> usize {
    DeviceStatus::ALL
        .iter()
        .position(|s| s.as_str() == status)
        .unwrap_or(usize::MAX)
}

fn fleet_body(fleet: &FleetSummary, offset: i32) -> Markup {
    let mut devices: Vec<&FleetDevice> = fleet.devices.iter().collect();
    devices.sort_by(|a, b| {
        status_rank(&a.status)
            .cmp(&status_rank(&b.status))
            .then_with(|| a.id.cmp(&b.id))
    });
    html! {
        p.hint { "As of " (time(fleet.at, offset)) "." }
        div.cards {
            div.card { "Devices" b #fleet-total { (fleet.total) } }
            div.card { "Live connections" b #live-connections { (fleet.live_connections) } }
            div.card { "Connected devices" b #connected-devices { (fleet.connected_devices) } }
            div.card { "Silent" b #silent-devices { (fleet.silent_devices) } }
        }
        h2 { "By status" }
        table #status-table {
            thead { tr { th { "status" } th.n { "recorders" } th.n { "terminals" } th.n { "total" } } }
            tbody {
                @for s in &fleet.by_status {
                    tr data-status=(s.status) {
                        td { (s.status) }
                        td.n data-field="recorders" { (s.recorders) }
                        td.n data-field="terminals" { (s.terminals) }
                        td.n data-field="total" { (s.total) }
                    }
                }
            }
        }
        h2 { "Devices" }
        table #device-table {
            thead { tr {
                th { "device" } th { "kind" } th { "serial" } th { "agency" } th { "officer" }
                th { "status" } th { "last seen" } th.n { "connections" } th { "silent since" }
            } }
            tbody {
                @for d in devices {
                    tr data-device=(d.id) class=[d.silent_since.map(|_| "warn")] {
                        td { (d.id) }
                        td { (d.kind) }
                        td { (d.serial) }
                        td { (d.agency.as_deref().unwrap_or("—")) }
                        td { (d.officer.as_deref().unwrap_or("—")) }
                        td data-field="status" { (d.status) }
                        td data-field="last_seen" data-ms=[d.last_seen] { (maybe_time(d.last_seen, offset)) }
                        td.n data-field="connections" { (d.connections) }
                        td { (maybe_time(d.silent_since, offset)) }
                    }
                }
            }
        }
    }
}

/// The fleet page.
pub async fn fleet_page(
    signed: Signed<ReadRegistry>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Markup, PageError> {
    let fleet = summary(&state.store, &state.live, state.clock.now()).await?;
    let offset = state.config.utc_offset_minutes(state.clock.now());
    Ok(page(
        &Page {
            operator: &signed.operator,
            banners: &signed.banners,
            title: "Fleet",
            current: "/fleet",
        },
        fleet_body(&fleet, offset),
    ))
}
