//! The flags supervisors act on, across every case: records refused as possible
//! tampering (with the refused record's content, decoded from the evidence), records
//! that broke the two-officer rule, and the open full-process flags
//! (missing audio-video, archive overdue). They show case content, so they need
//! [`ReadCaseContent`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use protocol::DeviceId;
use protocol::Millis;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Params;
use super::auth::Authorized;
use super::cases::{CaseFlagEntry, ReadCaseContent, TamperEntry};
use super::error::{ApiError, ErrorBody};
use crate::state::GatewayState;
use store::TwoOfficerFlag;
use store::recordings::CaseFlagKind;

/// Which tamper flags to read.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
pub struct TamperQuery {
    /// Only this device's.
    #[serde(default)]
    pub device: Option<String>,
}

/// Every tamper flag (optionally of one device), oldest first.
pub async fn tamper_flags(
    state: &GatewayState,
    device: Option<&str>,
) -> Result<Vec<TamperEntry>, ApiError> {
    let device = device
        .map(|d| DeviceId::new(d.trim()).map_err(|e| ApiError::invalid(e.to_string())))
        .transpose()?;
    Ok(state
        .store
        .tamper_flags(device.as_ref())
        .await?
        .iter()
        .map(TamperEntry::of)
        .collect())
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
    Ok(Json(tamper_flags(&state, query.device.as_deref()).await?))
}

/// A stored record whose officers did not satisfy the two-officer rule at its time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TwoOfficerEntry {
    /// The device.
    pub device_id: String,
    /// The record's sequence number.
    pub sequence: u64,
    /// The record's action kind.
    pub action_kind: String,
    /// Distinct certified officers present.
    pub certified: u32,
    /// Certified officers required.
    pub required: u32,
    /// Listed numbers that did not count, with why.
    pub not_counted: Vec<String>,
    /// When the gateway flagged it.
    pub flagged_at: Millis,
}

impl From<&TwoOfficerFlag> for TwoOfficerEntry {
    fn from(f: &TwoOfficerFlag) -> Self {
        TwoOfficerEntry {
            device_id: f.device.as_str().to_owned(),
            sequence: f.sequence,
            action_kind: f.action_kind.clone(),
            certified: f.certified,
            required: f.required,
            not_counted: f.not_counted.iter().map(ToString::to_string).collect(),
            flagged_at: f.flagged_at,
        }
    }
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

/// Every open full-process flag on any case: missing audio-video, then archive overdue.
pub async fn open_case_flags(state: &GatewayState) -> Result<Vec<CaseFlagEntry>, ApiError> {
    let mut out = Vec::new();
    for kind in [
        CaseFlagKind::MissingAudioVideo,
        CaseFlagKind::ArchiveOverdue,
    ] {
        out.extend(
            state
                .store
                .open_case_flags(kind)
                .await?
                .into_iter()
                .map(CaseFlagEntry::from),
        );
    }
    Ok(out)
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
    Ok(Json(open_case_flags(&state).await?))
}
