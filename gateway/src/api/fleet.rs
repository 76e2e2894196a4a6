//! The fleet over the API: devices by status, last seen, live connections and silent
//! flags. The summary is [`crate::views::fleet`], which the dashboard shows too.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::auth::{Authorized, ReadRegistry};
use super::error::{ApiError, ErrorBody};
use crate::state::GatewayState;
use crate::views::fleet::{FleetSummary, summary};

/// Devices by status, last seen, live connections, silent flags.
#[utoipa::path(get, path = "/api/v1/fleet", tag = "devices",
    security(("bearer" = ["read_registry"])),
    responses((status = 200, body = FleetSummary), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn get_fleet(
    _auth: Authorized<ReadRegistry>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<FleetSummary>, ApiError> {
    Ok(Json(
        summary(&state.store, &state.live, state.clock.now()).await?,
    ))
}
