//! The audit log, read page by page: who did what, when and why.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Params;
use super::auth::{Authorized, ReadAudit};
use super::error::{ApiError, ErrorBody};
use crate::state::GatewayState;
use store::AuditEntry;

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

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the log (1, 2, 3, … with no gaps).
    pub seq: i64,
    /// When (ms since the Unix epoch, gateway time).
    pub at: i64,
    /// Who (`operator:<name>`, `gateway`, …).
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// The particulars (including the reason), as JSON.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// This entry's chain hash.
    pub hash: String,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        AuditEntryView {
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail)),
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            hash: e.hash,
        }
    }
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
