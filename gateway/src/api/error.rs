//! The admin API's error reply: a status and a JSON body that names the problem,
//! `{"error": "<kind>", "message": "...", "rows": [...]}`, with `rows` only for bulk
//! imports (every bad row with its line number).
//!
//! Store errors map by whose fault they are: the request names something unknown
//! (404), conflicts with the registry (409), is malformed (422); a store failure is a
//! 500 whose details go to the log, not to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::WWW_AUTHENTICATE;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use store::{OperatorTokenError, RowError, StoreError};

/// The JSON body of every error reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable word: `unauthorized`, `forbidden`, `not_found`, `conflict`, `invalid`,
    /// `bad_rows`, `unavailable`, `internal`.
    pub error: String,
    /// What is wrong, for a person.
    pub message: String,
    /// For bulk imports: every bad row with its line number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<RowErrorSchema>)]
    pub rows: Vec<RowError>,
}

/// A bad row of an imported file (schema of [`RowError`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RowErrorSchema {
    /// 1-based line in the file (the header is line 1).
    line: u64,
    /// What is wrong with it.
    reason: String,
}

/// An error reply.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: error.to_owned(),
                message: message.into(),
                rows: Vec::new(),
            },
        }
    }

    /// 401: no token, or not a live one.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the token's role lacks the permission.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the request conflicts with the registry.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422: the request is well-formed JSON but its values are not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 503: this gateway cannot do it (for example, it does not hold the CA key).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500, logged here with its cause; the client gets no internals.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "admin API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the gateway failed; see its log",
        )
    }

    /// 422 with every bad row of an import; nothing was applied.
    pub fn bad_rows(rows: Vec<RowError>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_rows",
            format!(
                "{} row(s) are invalid; nothing was applied (use partial to apply the good rows)",
                rows.len()
            ),
        );
        e.body.rows = rows;
        e
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// Checks the reason every change must carry (the "why" of the audit log).
pub fn require_reason(reason: &str) -> Result<&str, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() {
        Err(ApiError::invalid(
            "a reason is required for every change (it goes into the audit log)",
        ))
    } else {
        Ok(reason)
    }
}

impl From<crate::views::ViewError> for ApiError {
    fn from(e: crate::views::ViewError) -> Self {
        use crate::views::ViewError;
        match e {
            ViewError::Invalid(message) => ApiError::invalid(message),
            ViewError::NotFound(message) => ApiError::not_found(message),
            ViewError::Store(e) => ApiError::from(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StoreError::*;
        match &e {
            UnknownAgency(_) | UnknownDevice(_) | UnknownOfficer(_) => {
                ApiError::not_found(e.to_string())
            }
            DuplicateAgency(_)
            | DeviceIdTaken(_)
            | DuplicateSerial(_)
            | DuplicateFingerprint(_)
            | StatusChange(_)
            | OfficerNotCertified { .. }
            | CertificateUnchanged { .. } => ApiError::conflict(e.to_string()),
            ClassTarget { .. }
            | BadFingerprint(_)
            | EmptyField(_)
            | BadEnrollmentRow { .. }
            | AuxiliaryCertified(_)
            | EffectiveInFuture { .. } => ApiError::invalid(e.to_string()),
            _ => ApiError::internal(&e),
        }
    }
}

impl From<OperatorTokenError> for ApiError {
    fn from(e: OperatorTokenError) -> Self {
        match e {
            OperatorTokenError::DuplicateName(_) | OperatorTokenError::DuplicateToken => {
                ApiError::conflict(e.to_string())
            }
            OperatorTokenError::UnknownName(_) => ApiError::not_found(e.to_string()),
            OperatorTokenError::AlreadyRevoked(_) => ApiError::conflict(e.to_string()),
            OperatorTokenError::BadHash => ApiError::invalid(e.to_string()),
            OperatorTokenError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, "Bearer".parse().expect("static header"));
        }
        response
    }
}
