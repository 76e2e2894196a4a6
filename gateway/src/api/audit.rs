//! The audit log over the API, read page by page: who did what, when and why (each
//! entry as [`crate::views::audit`] shows it, on the audit page too).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Params;
use super::auth::{Authorized, ReadAudit};
use super::error::{ApiError, ErrorBody};
use crate::state::GatewayState;
use crate::views::audit::AuditEntryView;

/// Largest page.
pub const MAX_PAGE: u32 = 1000;

/// Which entries to read.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Entries after this seq (0: from the start).
    #[serde(default)]
    pub after: i64,
    /// At most this many (default and maximum 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of the audit log, oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    security(("bearer" = ["read_audit"])),
    responses((status = 200, body = Vec<AuditEntryView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_audit(
    _auth: Authorized<ReadAudit>,
    State(state): State<Arc<GatewayState>>,
    Params(query): Params<AuditQuery>,
) -> Result<Json<Vec<AuditEntryView>>, ApiError> {
    let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let entries = state.store.audit_entries(query.after, limit).await?;
    Ok(Json(
        entries.into_iter().map(AuditEntryView::from).collect(),
    ))
}
