//! Agencies and their allocation class (DOMAIN R1): list, create, set the class (and
//! a class-C agency's target), and import many from a CSV file's rows.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::domain::AgencyClass;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Authorized, ManageAgencies, ReadRegistry};
use super::error::{ApiError, ErrorBody, require_reason};
use super::{Body, ImportReport, audit_import, checked_only};
use crate::state::GatewayState;
use store::{AgencyRow, NewAgency, RowError};

/// An agency as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgencyView {
    /// Unique name.
    pub name: String,
    /// `a`, `b` or `c`.
    #[schema(value_type = String)]
    pub class: AgencyClass,
    /// Class C only: the target number of devices set by need.
    pub class_c_target: Option<u32>,
    /// When it was created (ms since the Unix epoch).
    pub created_at: i64,
}

impl From<AgencyRow> for AgencyView {
    fn from(a: AgencyRow) -> Self {
        AgencyView {
            name: a.name,
            class: a.class,
            class_c_target: a.class_c_target,
            created_at: a.created_at,
        }
    }
}

/// A new agency.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct NewAgencyRequest {
    /// Unique name.
    pub name: String,
    /// `a`, `b` or `c`.
    pub class: String,
    /// Required for class C, absent for A and B.
    #[serde(default)]
    pub class_c_target: Option<u32>,
    /// Why (audited).
    pub reason: String,
}

/// A class change.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct SetClassRequest {
    /// `a`, `b` or `c`.
    pub class: String,
    /// Required for class C, absent for A and B.
    #[serde(default)]
    pub class_c_target: Option<u32>,
    /// Why (audited).
    pub reason: String,
}

/// One row of an agency file, as text, with its line number.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct AgencyImportRow {
    /// Line in the operator's file.
    pub line: u64,
    /// Name.
    pub name: String,
    /// `a`, `b` or `c`.
    pub class: String,
    /// Target number of devices (class C), or empty.
    #[serde(default)]
    pub class_c_target: String,
}

/// Agencies to import.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct AgencyImport {
    /// The rows.
    pub rows: Vec<AgencyImportRow>,
    /// Apply the good rows even if some are bad.
    #[serde(default)]
    pub partial: bool,
    /// Check every row and apply nothing.
    #[serde(default)]
    pub check_only: bool,
    /// Why (audited).
    pub reason: String,
}

fn parse_class(class: &str) -> Result<AgencyClass, ApiError> {
    class
        .parse()
        .map_err(|e: protocol::domain::UnknownWord| ApiError::invalid(e.to_string()))
}

/// Checks one agency row: class, target, and the class/target rule.
fn parse_row(row: &AgencyImportRow) -> Result<NewAgency, String> {
    let name = row.name.trim();
    if name.is_empty() {
        return Err("name is empty".into());
    }
    let class: AgencyClass = row.class.parse().map_err(|e| format!("class: {e}"))?;
    let target = match row.class_c_target.trim() {
        "" => None,
        t => Some(
            t.parse::<u32>()
                .map_err(|_| format!("class_c_target {t:?} is not a whole number"))?,
        ),
    };
    match (class, target) {
        (AgencyClass::C, None) => Err("class c needs a class_c_target".into()),
        (AgencyClass::A | AgencyClass::B, Some(_)) => {
            Err(format!("class {class} takes no class_c_target"))
        }
        _ => Ok(NewAgency {
            name: name.to_owned(),
            class,
            class_c_target: target,
        }),
    }
}

/// Every agency, by name.
#[utoipa::path(get, path = "/api/v1/agencies", tag = "agencies",
    security(("bearer" = ["read_registry"])),
    responses((status = 200, body = Vec<AgencyView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_agencies(
    _auth: Authorized<ReadRegistry>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<Vec<AgencyView>>, ApiError> {
    let agencies = state.store.list_agencies().await?;
    Ok(Json(agencies.into_iter().map(AgencyView::from).collect()))
}

/// Creates an agency.
#[utoipa::path(post, path = "/api/v1/agencies", tag = "agencies", request_body = NewAgencyRequest,
    security(("bearer" = ["manage_agencies"])),
    responses((status = 201, body = AgencyView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_agency(
    auth: Authorized<ManageAgencies>,
    State(state): State<Arc<GatewayState>>,
    Body(req): Body<NewAgencyRequest>,
) -> Result<(StatusCode, Json<AgencyView>), ApiError> {
    let reason = require_reason(&req.reason)?;
    let new = NewAgency {
        name: req.name.trim().to_owned(),
        class: parse_class(&req.class)?,
        class_c_target: req.class_c_target,
    };
    let actor = auth.actor();
    let now = state.clock.now();
    let agency = state.store.create_agency(&new, &actor, reason, now).await?;
    Ok((StatusCode::CREATED, Json(agency.into())))
}

/// Sets an agency's class (and a class-C agency's target number of devices).
#[utoipa::path(put, path = "/api/v1/agencies/{name}/class", tag = "agencies",
    request_body = SetClassRequest,
    params(("name" = String, Path, description = "the agency's name")),
    security(("bearer" = ["manage_agencies"])),
    responses((status = 200, body = AgencyView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn set_class(
    auth: Authorized<ManageAgencies>,
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
    Body(req): Body<SetClassRequest>,
) -> Result<Json<AgencyView>, ApiError> {
    let reason = require_reason(&req.reason)?;
    let class = parse_class(&req.class)?;
    let actor = auth.actor();
    let agency = state
        .store
        .set_agency_class(
            &name,
            class,
            req.class_c_target,
            &actor,
            reason,
            state.clock.now(),
        )
        .await?;
    Ok(Json(agency.into()))
}

/// Imports agencies from a file's rows: every row is checked first; bad rows are
/// reported by line and nothing is applied unless all are good (or `partial`).
/// An agency that exists with the same class and target is left unchanged.
#[utoipa::path(post, path = "/api/v1/agencies/import", tag = "agencies",
    request_body = AgencyImport,
    security(("bearer" = ["manage_agencies"])),
    responses((status = 200, body = ImportReport), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import_agencies(
    auth: Authorized<ManageAgencies>,
    State(state): State<Arc<GatewayState>>,
    Body(req): Body<AgencyImport>,
) -> Result<Json<ImportReport>, ApiError> {
    let reason = require_reason(&req.reason)?;
    let existing: HashMap<String, AgencyRow> = state
        .store
        .list_agencies()
        .await?
        .into_iter()
        .map(|a| (a.name.clone(), a))
        .collect();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    let mut unchanged = 0;
    for row in &req.rows {
        let checked = parse_row(row).and_then(|new| {
            if let Some(first) = seen.insert(new.name.clone(), row.line) {
                return Err(format!("agency {:?} is also on line {first}", new.name));
            }
            Ok(new)
        });
        match checked {
            Err(reason) => rejected.push(RowError {
                line: row.line,
                reason,
            }),
            Ok(new) => match existing.get(&new.name) {
                Some(a) if a.class == new.class && a.class_c_target == new.class_c_target => {
                    unchanged += 1
                }
                Some(a) => rejected.push(RowError {
                    line: row.line,
                    reason: format!(
                        "agency {:?} exists already with class {} (set its class instead)",
                        a.name, a.class
                    ),
                }),
                None => good.push(new),
            },
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
    state
        .store
        .create_agencies(&good, &actor, reason, now)
        .await?;
    let report = ImportReport {
        applied: good.len(),
        unchanged,
        rejected,
    };
    audit_import(
        &state,
        &actor,
        "agencies_imported",
        &report,
        req.partial,
        reason,
    )
    .await?;
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(class: &str, target: &str) -> AgencyImportRow {
        AgencyImportRow {
            line: 2,
            name: "城管".into(),
            class: class.into(),
            class_c_target: target.into(),
        }
    }

    #[test]
    fn rows_follow_the_class_target_rule() {
        assert!(parse_row(&row("a", "")).is_ok());
        assert_eq!(parse_row(&row("C", "4")).unwrap().class_c_target, Some(4));
        assert!(parse_row(&row("c", "")).unwrap_err().contains("needs"));
        assert!(parse_row(&row("b", "3")).unwrap_err().contains("takes no"));
        assert!(parse_row(&row("d", "")).unwrap_err().starts_with("class:"));
        assert!(
            parse_row(&row("c", "-1"))
                .unwrap_err()
                .contains("whole number")
        );
    }
}
