//! The allocation report (DOMAIN R1) as JSON and CSV, its daily snapshots (the trend
//! finance reads), and taking today's snapshot on demand.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Params;
use super::auth::{Authorized, ReadReports, TakeSnapshots};
use super::error::{ApiError, ErrorBody};
use crate::state::GatewayState;
use crate::views::allocation::{self, AllocationReport, TrendDay};

/// The allocation report, per agency and in total.
#[utoipa::path(get, path = "/api/v1/reports/allocation", tag = "reports",
    security(("bearer" = ["read_reports"])),
    responses((status = 200, body = AllocationReport), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn allocation_json(
    _auth: Authorized<ReadReports>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<AllocationReport>, ApiError> {
    Ok(Json(state.allocation().current().await?))
}

/// The allocation report as CSV (one line per agency, then `TOTAL`).
#[utoipa::path(get, path = "/api/v1/reports/allocation.csv", tag = "reports",
    security(("bearer" = ["read_reports"])),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn allocation_csv(
    _auth: Authorized<ReadReports>,
    State(state): State<Arc<GatewayState>>,
) -> Result<impl IntoResponse, ApiError> {
    let report = state.allocation().current().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"allocation.csv\"",
            ),
        ],
        allocation::to_csv(&report),
    ))
}

/// Which days of the trend to read.
#[derive(Clone, Debug, Deserialize, IntoParams)]
pub struct TrendQuery {
    /// First day, `YYYY-MM-DD` (default: the earliest).
    #[serde(default)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: the latest).
    #[serde(default)]
    pub to: Option<String>,
}

/// The daily snapshots, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AllocationTrend {
    /// One entry per day with a snapshot, and today's live figures (`live`) until
    /// today's snapshot is taken.
    pub days: Vec<TrendDay>,
}

fn check_day(day: &str) -> Result<(), ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, &format)
        .map(drop)
        .map_err(|_| ApiError::invalid(format!("{day:?} is not a day (YYYY-MM-DD)")))
}

/// The trend: every daily snapshot in the range, with its totals, and today's live
/// figures while today has no snapshot.
#[utoipa::path(get, path = "/api/v1/reports/allocation/snapshots", tag = "reports",
    params(TrendQuery),
    security(("bearer" = ["read_reports"])),
    responses((status = 200, body = AllocationTrend), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn allocation_trend(
    _auth: Authorized<ReadReports>,
    State(state): State<Arc<GatewayState>>,
    Params(query): Params<TrendQuery>,
) -> Result<Json<AllocationTrend>, ApiError> {
    let from = query.from.unwrap_or_else(|| "0000-01-01".into());
    let to = query.to.unwrap_or_else(|| "9999-12-31".into());
    check_day(&from)?;
    check_day(&to)?;
    Ok(Json(AllocationTrend {
        days: state.allocation().trend_between(&from, &to).await?,
    }))
}

/// The result of asking for today's snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotTaken {
    /// The local day.
    pub day: String,
    /// False when the day already had its snapshot (the first one stands).
    pub taken: bool,
}

/// Takes today's snapshot now (if today has none yet).
#[utoipa::path(post, path = "/api/v1/reports/allocation/snapshots", tag = "reports",
    security(("bearer" = ["take_snapshots"])),
    responses((status = 200, body = SnapshotTaken), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn take_snapshot(
    auth: Authorized<TakeSnapshots>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<SnapshotTaken>, ApiError> {
    let allocation = state.allocation();
    let day = allocation.today();
    let taken = allocation.take_snapshot(&day).await?;
    if taken {
        let detail = serde_json::json!({ "day": day, "reason": "taken on request" });
        state
            .store
            .append_audit(
                &auth.actor(),
                "allocation_snapshot_taken",
                &day,
                &detail.to_string(),
                state.clock.now(),
            )
            .await?;
    }
    Ok(Json(SnapshotTaken { day, taken }))
}
