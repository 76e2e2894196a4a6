//! The admin HTTP API under `/api/v1`, on the operator listener: JSON in and out, a
//! bearer token with one role on every request (see [`auth`]), every change audited
//! with who, when, what and why.
//!
//! The routes are listed once, in [`api_routes`], with utoipa-axum: the same list
//! builds the axum router and the OpenAPI document served at
//! `/api/v1/openapi.json`, so the document cannot drift from what is served.

pub mod agencies;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod cases;
pub mod devices;
pub mod error;
pub mod flags;
pub mod fleet;
pub mod officers;
pub mod reports;
pub mod tokens;
pub mod uploads;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::GatewayState;
use error::ApiError;
use store::RowError;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// Largest request body: a bulk import of tens of thousands of rows.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// The document's frame; the paths come from [`api_routes`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fieldsync admin API",
        description = "Agencies, officers, devices, operator tokens, reports and the audit \
                       log of a fieldsync gateway. Every operation needs a bearer token whose \
                       role holds the permission named as the operation's security scope."
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "tokens", description = "operator tokens and roles"),
        (name = "agencies", description = "agencies and their allocation class"),
        (name = "officers", description = "the roster and enforcement certificates"),
        (name = "devices", description = "enrollment, assignment and status of devices"),
        (name = "reports", description = "the allocation report and its daily snapshots"),
        (name = "audit", description = "the hash-chained audit log"),
        (name = "cases", description = "the case view: every record and recording of a case or target"),
        (name = "flags", description = "tamper, two-officer and full-process flags"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every route of the API, once: the router and the document both come from here.
pub fn api_routes() -> OpenApiRouter<Arc<GatewayState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tokens::whoami))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(agencies::list_agencies, agencies::create_agency))
        .routes(routes!(agencies::set_class))
        .routes(routes!(agencies::import_agencies))
        .routes(routes!(officers::list_officers))
        .routes(routes!(officers::import_officers))
        .routes(routes!(officers::set_certificate))
        .routes(routes!(devices::list_devices))
        .routes(routes!(devices::get_device))
        .routes(routes!(devices::enroll_csr))
        .routes(routes!(devices::enroll_bundle))
        .routes(routes!(devices::import_devices))
        .routes(routes!(devices::assign_device))
        .routes(routes!(devices::set_status))
        .routes(routes!(reports::allocation_json))
        .routes(routes!(reports::allocation_csv))
        .routes(routes!(reports::allocation_trend, reports::take_snapshot))
        .routes(routes!(audit::list_audit))
        .routes(routes!(uploads::uploads_json))
        .routes(routes!(uploads::uploads_csv))
        .routes(routes!(cases::get_case))
        .routes(routes!(cases::get_target))
        .routes(routes!(flags::list_tamper))
        .routes(routes!(flags::list_tamper_counts))
        .routes(routes!(flags::list_two_officer))
        .routes(routes!(flags::list_case_flags))
        .routes(routes!(fleet::get_fleet))
}

/// The OpenAPI document of [`api_routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// The API router with its state, plus the document at [`OPENAPI_PATH`] (readable
/// without a token: it describes the API, not the fleet).
pub fn router(state: Arc<GatewayState>) -> Router {
    let (router, document) = api_routes().split_for_parts();
    let document = Arc::new(document);
    router
        .route(
            OPENAPI_PATH,
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A JSON request body whose rejection is an [`ApiError`] (JSON, naming the problem)
/// rather than axum's plain-text one.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// Query parameters whose rejection is an [`ApiError`] (JSON), like [`Body`].
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// The body of a change that needs only a reason.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct Reason {
    /// Why (audited).
    pub reason: String,
}

/// What a bulk import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Rows applied (new or changed).
    pub applied: usize,
    /// Rows identical to what the registry holds: nothing to do.
    pub unchanged: usize,
    /// Bad rows, with their line numbers (only with `partial`; otherwise a bad row
    /// fails the whole request with 422).
    #[schema(value_type = Vec<error::RowErrorSchema>)]
    pub rejected: Vec<RowError>,
}

/// The answer to a check-only import (`check_only`, which the CLI sends when its own
/// shape checks found bad lines): every bad row the gateway finds (422), else an
/// empty report. Nothing is applied either way.
pub(crate) fn checked_only(rejected: Vec<RowError>) -> Result<Json<ImportReport>, ApiError> {
    if rejected.is_empty() {
        Ok(Json(ImportReport::default()))
    } else {
        Err(ApiError::bad_rows(rejected))
    }
}

/// Records a bulk import's summary: who, how many, which lines were refused, and why.
pub(crate) async fn audit_import(
    state: &GatewayState,
    actor: &str,
    action: &str,
    report: &ImportReport,
    partial: bool,
    reason: &str,
) -> Result<(), ApiError> {
    if report.applied == 0 {
        return Ok(());
    }
    let detail = serde_json::json!({
        "applied": report.applied,
        "unchanged": report.unchanged,
        "rejected_lines": report.rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
        "partial": partial,
        "reason": reason,
    });
    state
        .store
        .append_audit(
            actor,
            action,
            "admin api",
            &detail.to_string(),
            state.clock.now(),
        )
        .await?;
    Ok(())
}
