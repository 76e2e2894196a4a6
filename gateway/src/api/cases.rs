//! The case view over the API: one case, or one enforcement target, for supervisors
//! and admins. The view itself is [`crate::views::cases`], which the dashboard shows
//! too.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use super::auth::{Authorized, ReadCaseContent};
use super::error::{ApiError, ErrorBody};
use crate::state::GatewayState;
use crate::views::cases::{CaseView, case_view, target_view};

/// One case: every record and recording in order, the chain verified, the flags.
#[utoipa::path(get, path = "/api/v1/cases/{number}", tag = "cases",
    params(("number" = String, Path, description = "The case number")),
    security(("bearer" = ["read_case_content"])),
    responses((status = 200, body = CaseView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn get_case(
    _auth: Authorized<ReadCaseContent>,
    State(state): State<Arc<GatewayState>>,
    Path(number): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    Ok(Json(
        case_view(
            &state.store,
            &state.config.policy,
            state.clock.now(),
            &number,
        )
        .await?,
    ))
}

/// One enforcement target: the records of every case about it, in order, with those
/// cases' recordings and flags.
#[utoipa::path(get, path = "/api/v1/targets/{name}", tag = "cases",
    params(("name" = String, Path, description = "The enforcement target, as recorded")),
    security(("bearer" = ["read_case_content"])),
    responses((status = 200, body = CaseView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn get_target(
    _auth: Authorized<ReadCaseContent>,
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    Ok(Json(
        target_view(&state.store, &state.config.policy, state.clock.now(), &name).await?,
    ))
}
