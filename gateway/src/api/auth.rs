//! The admin API's extractor that authenticates the bearer token and checks the role
//! on every request, by the authorization table of [`crate::access`] (which the pages
//! use too).
//!
//! Each handler names its permission in its type, `Authorized<ManageDevices>`, and
//! the extractor runs before the body is read, so a wrong role gets 403 even for a
//! malformed request and nothing is parsed or changed. The OpenAPI document lists the
//! same permission as the operation's security scope; a test checks that the two
//! agree for every route and every role.
//!
//! Tokens travel only in the `Authorization: Bearer` header, never in a URL, and are
//! never logged: only their SHA-256 is looked up, on every request, so a revoked token
//! fails on its very next request.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
pub use crate::access::{
    Guard, Identify, ManageAgencies, ManageDevices, ManageOfficers, ManageTokens, Permission,
    ReadAudit, ReadCaseContent, ReadRegistry, ReadReports, TakeSnapshots, actor,
};
use crate::state::GatewayState;
use store::OperatorToken;

/// An authenticated operator whose role holds `G`'s permission.
#[derive(Debug)]
pub struct Authorized<G: Guard> {
    /// The token's record (name, role).
    pub operator: OperatorToken,
    _guard: PhantomData<G>,
}

impl<G: Guard> Authorized<G> {
    /// The audit actor for changes made with this token.
    pub fn actor(&self) -> String {
        actor(&self.operator)
    }
}

/// The bearer token of a request, if the header is present and well formed.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer header"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized(
            "the Authorization scheme must be Bearer",
        ));
    }
    Ok(token.trim())
}

impl<G: Guard> FromRequestParts<Arc<GatewayState>> for Authorized<G> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<GatewayState>,
    ) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let unknown = || ApiError::unauthorized("unknown or revoked token");
        if !pki::is_well_formed_token(token) {
            return Err(unknown());
        }
        let hash = pki::token_hash(token);
        let operator = state
            .store
            .operator_by_token_hash(&hash)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(unknown)?;
        if !G::PERMISSION.allows(operator.role) {
            return Err(ApiError::forbidden(format!(
                "the {} role may not {} (permission {})",
                operator.role,
                describe(G::PERMISSION),
                G::PERMISSION.as_str()
            )));
        }
        Ok(Authorized {
            operator,
            _guard: PhantomData,
        })
    }
}

/// What a permission allows, for a 403 message.
fn describe(p: Permission) -> &'static str {
    match p {
        Permission::Identify => "identify itself",
        Permission::ManageTokens => "manage operator tokens",
        Permission::ReadRegistry => "read the registry",
        Permission::ManageAgencies => "change agencies",
        Permission::ManageOfficers => "change officers or their certificates",
        Permission::ManageDevices => "enroll or change devices",
        Permission::ReadReports => "read reports",
        Permission::TakeSnapshots => "take allocation snapshots",
        Permission::ReadAudit => "read the audit log",
        Permission::ReadCaseContent => "read case content",
    }
}
