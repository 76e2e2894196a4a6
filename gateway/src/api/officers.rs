//! Officers and their enforcement certificates (DOMAIN R4): the roster import, and
//! withdrawing, revoking or restoring one certificate with a reason.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use protocol::Millis;
use protocol::domain::CertificateStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Authorized, ManageOfficers, ReadRegistry};
use super::error::{ApiError, ErrorBody, require_reason};
use super::{Body, ImportReport, audit_import, checked_only};
use crate::state::GatewayState;
use store::{OfficerChange, OfficerRecord, OfficerRow, RowError};

/// An officer as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfficerView {
    /// Certificate number (行政执法证件号).
    pub certificate_number: String,
    /// Name.
    pub name: String,
    /// Issuing unit.
    pub unit: String,
    /// Post.
    pub post: String,
    /// Enforcement category.
    pub category: String,
    /// `valid`, `withdrawn` or `revoked`.
    #[schema(value_type = String)]
    pub certificate_status: CertificateStatus,
    /// Auxiliary staff: never counted as certified officers.
    pub auxiliary: bool,
    /// The agency's name, if any.
    pub agency: Option<String>,
}

fn view(o: OfficerRow, names: &HashMap<i64, String>) -> OfficerView {
    OfficerView {
        agency: o.agency_id.and_then(|id| names.get(&id).cloned()),
        certificate_number: o.certificate_number,
        name: o.name,
        unit: o.unit,
        post: o.post,
        category: o.category,
        certificate_status: o.certificate_status,
        auxiliary: o.auxiliary,
    }
}

async fn agency_names(state: &GatewayState) -> Result<HashMap<i64, String>, ApiError> {
    Ok(state
        .store
        .list_agencies()
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect())
}

/// One roster row, as text, with its line number.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct OfficerImportRow {
    /// Line in the operator's file.
    pub line: u64,
    /// Certificate number.
    pub certificate_number: String,
    /// Name.
    pub name: String,
    /// Issuing unit.
    #[serde(default)]
    pub unit: String,
    /// Post.
    #[serde(default)]
    pub post: String,
    /// Enforcement category.
    #[serde(default)]
    pub category: String,
    /// `valid`, `withdrawn` or `revoked`.
    pub certificate_status: String,
    /// `true`/`false` (also `yes`/`no`, `1`/`0`).
    pub auxiliary: String,
    /// The agency's name, or empty.
    #[serde(default)]
    pub agency: String,
    /// When the certificate expires: a date (valid through that day, in the agencies'
    /// time zone) or an RFC 3339 instant; empty when it has no expiry date.
    #[serde(default)]
    pub valid_until: String,
}

/// A roster to import.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct OfficerImport {
    /// The rows.
    pub rows: Vec<OfficerImportRow>,
    /// Apply the good rows even if some are bad.
    #[serde(default)]
    pub partial: bool,
    /// Check every row and apply nothing.
    #[serde(default)]
    pub check_only: bool,
    /// Why (audited).
    pub reason: String,
}

/// A certificate status change.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct CertificateChange {
    /// `withdrawn` (retirement, transfer, resignation), `revoked` (dismissal, criminal
    /// penalty) or `valid` (restored).
    pub status: String,
    /// When the change took effect (RFC 3339), if before now: a withdrawal counts from
    /// when it took effect, not from when it is typed in.
    #[serde(default)]
    pub effective_at: Option<String>,
    /// Why (audited).
    pub reason: String,
}

/// Parses an instant (RFC 3339) or a date (`YYYY-MM-DD`: the instant the day after it
/// starts in `zone`, so a certificate "valid until 2027-12-31" is valid all that day).
pub fn parse_instant_or_day(text: &str, zone: &jiff::tz::TimeZone) -> Result<Millis, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    let day: jiff::civil::Date = text
        .parse()
        .map_err(|_| format!("{text:?} is neither a date (2027-12-31) nor an RFC 3339 time"))?;
    day.tomorrow()
        .and_then(|d| d.to_zoned_datetime(zone.clone()))
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| format!("{text:?}: {e}"))
}

fn parse_flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" | "是" => Ok(true),
        "false" | "no" | "0" | "n" | "否" | "" => Ok(false),
        other => Err(format!("auxiliary {other:?} is not true or false")),
    }
}

/// Checks one roster row against the vocabulary and the known agencies. Public for the
/// roster fuzz target, which feeds it the rows the provisioning CLI reads from CSV.
pub fn parse_row(
    row: &OfficerImportRow,
    agencies: &HashSet<String>,
    zone: &jiff::tz::TimeZone,
) -> Result<OfficerRecord, String> {
    let number = row.certificate_number.trim();
    if number.is_empty() {
        return Err("certificate_number is empty".into());
    }
    if row.name.trim().is_empty() {
        return Err("name is empty".into());
    }
    let certificate_status = row
        .certificate_status
        .parse()
        .map_err(|e| format!("certificate_status: {e}"))?;
    let auxiliary = parse_flag(&row.auxiliary)?;
    if auxiliary && certificate_status == CertificateStatus::Valid {
        return Err(
            "auxiliary staff may not hold a valid enforcement certificate (003): list the row \
             as withdrawn, or not as auxiliary"
                .into(),
        );
    }
    let valid_until = match row.valid_until.trim() {
        "" => None,
        text => Some(parse_instant_or_day(text, zone).map_err(|e| format!("valid_until: {e}"))?),
    };
    let agency = match row.agency.trim() {
        "" => None,
        name if agencies.contains(name) => Some(name.to_owned()),
        name => return Err(format!("no agency is named {name:?}")),
    };
    Ok(OfficerRecord {
        certificate_number: number.to_owned(),
        name: row.name.trim().to_owned(),
        unit: row.unit.trim().to_owned(),
        post: row.post.trim().to_owned(),
        category: row.category.trim().to_owned(),
        certificate_status,
        auxiliary,
        agency,
        valid_until,
        effective_at: None,
    })
}

/// Every officer, by certificate number.
#[utoipa::path(get, path = "/api/v1/officers", tag = "officers",
    security(("bearer" = ["read_registry"])),
    responses((status = 200, body = Vec<OfficerView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_officers(
    _auth: Authorized<ReadRegistry>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<Vec<OfficerView>>, ApiError> {
    let names = agency_names(&state).await?;
    let officers = state.store.list_officers().await?;
    Ok(Json(
        officers.into_iter().map(|o| view(o, &names)).collect(),
    ))
}

/// Imports a roster: every row is checked first; bad rows are reported by line and
/// nothing is applied unless all are good (or `partial`). Identical rows change
/// nothing.
#[utoipa::path(post, path = "/api/v1/officers/import", tag = "officers",
    request_body = OfficerImport,
    security(("bearer" = ["manage_officers"])),
    responses((status = 200, body = ImportReport), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import_officers(
    auth: Authorized<ManageOfficers>,
    State(state): State<Arc<GatewayState>>,
    Body(req): Body<OfficerImport>,
) -> Result<Json<ImportReport>, ApiError> {
    let reason = require_reason(&req.reason)?;
    let agencies: HashSet<String> = agency_names(&state).await?.into_values().collect();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    for row in &req.rows {
        let checked = parse_row(row, &agencies, &state.config.zone()).and_then(|record| match seen
            .insert(record.certificate_number.clone(), row.line)
        {
            Some(first) => Err(format!(
                "certificate number {:?} is also on line {first}",
                record.certificate_number
            )),
            None => Ok(record),
        });
        match checked {
            Ok(record) => good.push(record),
            Err(reason) => rejected.push(RowError {
                line: row.line,
                reason,
            }),
        }
    }
    if req.check_only {
        return checked_only(rejected);
    }
    if !rejected.is_empty() && !req.partial {
        return Err(ApiError::bad_rows(rejected));
    }
    let actor = auth.actor();
    let now = state.clock.now();
    let mut report = ImportReport {
        rejected,
        ..ImportReport::default()
    };
    let changes = state
        .store
        .import_officers(&good, &actor, Some(reason), now)
        .await?;
    for change in &changes {
        match change {
            OfficerChange::Unchanged(_) => report.unchanged += 1,
            _ => report.applied += 1,
        }
    }
    audit_import(
        &state,
        &actor,
        "roster_imported",
        &report,
        req.partial,
        reason,
    )
    .await?;
    Ok(Json(report))
}

/// Withdraws, revokes or restores an officer's certificate; terminals learn of it at
/// their next roster sync.
#[utoipa::path(post, path = "/api/v1/officers/{number}/certificate", tag = "officers",
    request_body = CertificateChange,
    params(("number" = String, Path, description = "the certificate number")),
    security(("bearer" = ["manage_officers"])),
    responses((status = 200, body = OfficerView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_certificate(
    auth: Authorized<ManageOfficers>,
    State(state): State<Arc<GatewayState>>,
    Path(number): Path<String>,
    Body(req): Body<CertificateChange>,
) -> Result<Json<OfficerView>, ApiError> {
    let reason = require_reason(&req.reason)?;
    let status: CertificateStatus = req
        .status
        .parse()
        .map_err(|e: protocol::domain::UnknownWord| ApiError::invalid(e.to_string()))?;
    let effective_at = req
        .effective_at
        .as_deref()
        .map(|t| {
            t.trim()
                .parse::<jiff::Timestamp>()
                .map(|t| t.as_millisecond())
        })
        .transpose()
        .map_err(|e| ApiError::invalid(format!("effective_at: {e}")))?;
    let officer = state
        .store
        .set_certificate_status(
            &number,
            status,
            effective_at,
            &auth.actor(),
            reason,
            state.clock.now(),
        )
        .await?;
    let names = agency_names(&state).await?;
    Ok(Json(view(officer, &names)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> OfficerImportRow {
        OfficerImportRow {
            line: 7,
            certificate_number: " 440100-0001 ".into(),
            name: "王伟".into(),
            certificate_status: "valid".into(),
            auxiliary: "no".into(),
            agency: "城管一队".into(),
            ..OfficerImportRow::default()
        }
    }

    #[test]
    fn a_good_row_is_trimmed_and_typed() {
        let agencies = HashSet::from(["城管一队".to_owned()]);
        let r = parse_row(&row(), &agencies, &jiff::tz::TimeZone::UTC).unwrap();
        assert_eq!(r.certificate_number, "440100-0001");
        assert!(!r.auxiliary);
        assert_eq!(r.agency.as_deref(), Some("城管一队"));
    }

    #[test]
    fn bad_rows_say_why() {
        let agencies = HashSet::new();
        assert!(
            parse_row(&row(), &agencies, &jiff::tz::TimeZone::UTC)
                .unwrap_err()
                .contains("no agency")
        );
        let agencies = HashSet::from(["城管一队".to_owned()]);
        let bad_status = OfficerImportRow {
            certificate_status: "expired".into(),
            ..row()
        };
        assert!(
            parse_row(&bad_status, &agencies, &jiff::tz::TimeZone::UTC)
                .unwrap_err()
                .starts_with("certificate_status")
        );
        let bad_flag = OfficerImportRow {
            auxiliary: "maybe".into(),
            ..row()
        };
        assert!(
            parse_row(&bad_flag, &agencies, &jiff::tz::TimeZone::UTC)
                .unwrap_err()
                .contains("auxiliary")
        );
    }
}
