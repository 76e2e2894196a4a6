//! Upload compliance (DOMAIN R2) as JSON and CSV: per agency, officer and device, how
//! many recordings are pending, due soon, overdue, uploaded on time and late, and
//! every overdue recording with how late it is.
//!
//! The report itself is [`crate::views::uploads`], which the dashboard shows too, so
//! they show the same numbers.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use protocol::Millis;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Params;
use super::auth::{Authorized, ReadReports};
use super::error::{ApiError, ErrorBody};
use crate::state::GatewayState;
use crate::views::sheet::Sheet;
use crate::views::uploads::{UploadCounts, UploadReport, upload_report};

/// Which recordings the report covers.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// Only recordings that ended at or after this time (ms since the Unix epoch,
    /// gateway time). Default: every recording.
    #[serde(default)]
    pub from: Option<Millis>,
}

/// The upload report at the gateway's current time.
async fn current(state: &GatewayState, from: Option<Millis>) -> Result<UploadReport, ApiError> {
    Ok(upload_report(
        &state.store,
        &state.config.policy.deadline,
        state.clock.now(),
        from.unwrap_or(Millis::MIN),
    )
    .await?)
}

/// The upload report: counts per agency, officer and device, and the overdue
/// recordings (the latest first).
#[utoipa::path(get, path = "/api/v1/reports/uploads", tag = "reports", params(UploadQuery),
    security(("bearer" = ["read_reports"])),
    responses((status = 200, body = UploadReport), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn uploads_json(
    _auth: Authorized<ReadReports>,
    State(state): State<Arc<GatewayState>>,
    Params(query): Params<UploadQuery>,
) -> Result<Json<UploadReport>, ApiError> {
    Ok(Json(current(&state, query.from).await?))
}

/// The upload report as CSV: one line per agency, officer and device (`scope` says
/// which), then `total`.
#[utoipa::path(get, path = "/api/v1/reports/uploads.csv", tag = "reports", params(UploadQuery),
    security(("bearer" = ["read_reports"])),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn uploads_csv(
    _auth: Authorized<ReadReports>,
    State(state): State<Arc<GatewayState>>,
    Params(query): Params<UploadQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let report = current(&state, query.from).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"uploads.csv\"",
            ),
        ],
        to_csv(&report),
    ))
}

/// The CSV columns.
pub const CSV_HEADER: [&str; 9] = [
    "scope",
    "name",
    "pending",
    "due_soon",
    "overdue",
    "uploaded_on_time",
    "uploaded_late",
    "silent_since",
    "clock_implausible_since",
];

/// The report as CSV (pure), safe to open in a spreadsheet (`reports::sheet`). An
/// unassigned agency or unknown officer has an empty name.
pub fn to_csv(report: &UploadReport) -> String {
    fn line(
        scope: &str,
        name: &str,
        c: &UploadCounts,
        silent: Option<Millis>,
        clock: Option<Millis>,
    ) -> [String; 9] {
        let when = |t: Option<Millis>| t.map(|s| s.to_string()).unwrap_or_default();
        [
            scope.to_owned(),
            name.to_owned(),
            c.pending.to_string(),
            c.due_soon.to_string(),
            c.overdue.to_string(),
            c.uploaded_on_time.to_string(),
            c.uploaded_late.to_string(),
            when(silent),
            when(clock),
        ]
    }
    let mut out = Sheet::default();
    out.row(CSV_HEADER);
    for a in &report.agencies {
        let name = a.agency.as_deref().unwrap_or_default();
        out.row(line("agency", name, &a.counts, None, None));
    }
    for o in &report.officers {
        let name = o.officer.as_deref().unwrap_or_default();
        out.row(line("officer", name, &o.counts, None, None));
    }
    for d in &report.devices {
        out.row(line(
            "device",
            &d.device_id,
            &d.counts,
            d.silent_since,
            d.clock_implausible_since,
        ));
    }
    out.row(line("total", "", &report.total, None, None));
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::uploads::{AgencyUploads, DeviceUploads};

    #[test]
    fn csv_has_a_line_per_scope_and_a_total() {
        let counts = UploadCounts {
            pending: 1,
            due_soon: 2,
            overdue: 3,
            uploaded_on_time: 4,
            uploaded_late: 5,
        };
        let report = UploadReport {
            at: 0,
            total: counts,
            agencies: vec![AgencyUploads {
                agency: Some("城管, 一队".into()),
                counts,
            }],
            officers: vec![],
            devices: vec![DeviceUploads {
                device_id: "dev-00001".into(),
                agency: None,
                counts: UploadCounts::default(),
                silent_since: Some(42),
                clock_implausible_since: Some(7),
            }],
            overdue: vec![],
            at_risk: vec![],
            clock_implausible: 0,
        };
        let csv = to_csv(&report);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert_eq!(lines[1], "agency,\"城管, 一队\",1,2,3,4,5,,");
        assert_eq!(lines[2], "device,dev-00001,0,0,0,0,0,42,7");
        assert_eq!(lines[3], "total,,1,2,3,4,5,,");
        assert_eq!(lines.len(), 4);
    }
}
