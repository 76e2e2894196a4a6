//! The flags supervisors act on, over the API: tamper, two-officer and the open
//! full-process flags across every case. The entries are [`crate::views::flags`]'s,
//! which the dashboard shows too; they show case content, so every route needs
//! [`ReadCaseContent`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Params;
use super::auth::{Authorized, ReadCaseContent};
use super::error::{ApiError, ErrorBody};
use crate::state::GatewayState;
use crate::views::cases::{CaseFlagEntry, TamperEntry};
use crate::views::flags::{
    TamperCountEntry, TwoOfficerEntry, open_case_flags, tamper_counts, tamper_flags,
};

/// Which tamper flags to read.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
pub struct TamperQuery {
    /// Only this device's.
    #[serde(default)]
    pub device: Option<String>,
}

/// Records refused as possible tampering (fork, gap, altered, broken link), oldest
/// first, each with the refused record's case, target, stage and text.
#[utoipa::path(get, path = "/api/v1/flags/tamper", tag = "flags", params(TamperQuery),
    security(("bearer" = ["read_case_content"])),
    responses((status = 200, body = Vec<TamperEntry>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_tamper(
    _auth: Authorized<ReadCaseContent>,
    State(state): State<Arc<GatewayState>>,
    Params(query): Params<TamperQuery>,
) -> Result<Json<Vec<TamperEntry>>, ApiError> {
    Ok(Json(
        tamper_flags(&state.store, query.device.as_deref()).await?,
    ))
}

/// Devices whose chain breaks passed their cap of tamper flags: how many more were
/// refused (not kept one by one), first and last time.
#[utoipa::path(get, path = "/api/v1/flags/tamper-counts", tag = "flags",
    security(("bearer" = ["read_case_content"])),
    responses((status = 200, body = Vec<TamperCountEntry>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_tamper_counts(
    _auth: Authorized<ReadCaseContent>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<Vec<TamperCountEntry>>, ApiError> {
    Ok(Json(tamper_counts(&state.store).await?))
}

/// Every two-officer flag, oldest first.
#[utoipa::path(get, path = "/api/v1/flags/two-officer", tag = "flags",
    security(("bearer" = ["read_case_content"])),
    responses((status = 200, body = Vec<TwoOfficerEntry>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_two_officer(
    _auth: Authorized<ReadCaseContent>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<Vec<TwoOfficerEntry>>, ApiError> {
    let flags = state.store.two_officer_flags().await?;
    Ok(Json(flags.iter().map(TwoOfficerEntry::from).collect()))
}

/// Open full-process flags on any case (missing audio-video, archive overdue).
#[utoipa::path(get, path = "/api/v1/flags/cases", tag = "flags",
    security(("bearer" = ["read_case_content"])),
    responses((status = 200, body = Vec<CaseFlagEntry>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_case_flags(
    _auth: Authorized<ReadCaseContent>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<Vec<CaseFlagEntry>>, ApiError> {
    Ok(Json(open_case_flags(&state.store).await?))
}
