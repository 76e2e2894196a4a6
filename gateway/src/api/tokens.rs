//! Operator tokens: who holds which role. Only admins make and revoke them; every
//! token may ask who it is (`whoami`), which is how a CLI or the dashboard checks a
//! token before using it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Authorized, Identify, ManageTokens, Permission};
use super::error::{ApiError, ErrorBody, require_reason};
use super::{Body, Reason};
use crate::state::GatewayState;
use store::{OperatorRole, OperatorToken};

/// A token as the API shows it (never the secret, never its hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Unique name; the audit log's actor is `operator:<name>`.
    pub name: String,
    /// `admin`, `equipment_manager`, `finance` or `supervisor`.
    #[schema(value_type = String)]
    pub role: OperatorRole,
    /// When it was made (ms since the Unix epoch).
    pub created_at: i64,
    /// Who made it.
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl From<OperatorToken> for TokenView {
    fn from(t: OperatorToken) -> Self {
        TokenView {
            name: t.name,
            role: t.role,
            created_at: t.created_at,
            created_by: t.created_by,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new token.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct NewToken {
    /// Unique name of the holder.
    pub name: String,
    /// Its one role.
    pub role: String,
    /// Why it is made (audited).
    pub reason: String,
}

/// A token just made: the secret is shown here once and never again.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The stored record.
    #[serde(flatten)]
    pub record: TokenView,
    /// The bearer token (`fst_` + 64 hex digits). Keep it secret.
    pub token: String,
}

/// Who a token belongs to and what it may do.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The token's record.
    #[serde(flatten)]
    pub record: TokenView,
    /// The permissions of its role.
    pub permissions: Vec<String>,
}

/// Who am I.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "tokens",
    security(("bearer" = ["identify"])),
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
pub async fn whoami(auth: Authorized<Identify>) -> Json<WhoAmI> {
    let role = auth.operator.role;
    Json(WhoAmI {
        record: auth.operator.into(),
        permissions: Permission::ALL
            .into_iter()
            .filter(|p| p.allows(role))
            .map(|p| p.as_str().to_owned())
            .collect(),
    })
}

/// Every operator token (revoked ones too).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    security(("bearer" = ["manage_tokens"])),
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    _auth: Authorized<ManageTokens>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = state.store.list_operator_tokens().await?;
    Ok(Json(tokens.into_iter().map(TokenView::from).collect()))
}

/// Makes a token with one role; the reply carries the secret, once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    security(("bearer" = ["manage_tokens"])),
    responses((status = 201, body = CreatedToken), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_token(
    auth: Authorized<ManageTokens>,
    State(state): State<Arc<GatewayState>>,
    Body(new): Body<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let reason = require_reason(&new.reason)?;
    let role: OperatorRole = new
        .role
        .parse()
        .map_err(|e: store::UnknownRole| ApiError::invalid(e.to_string()))?;
    if new.name.trim().is_empty() {
        return Err(ApiError::invalid("the token name must not be empty"));
    }
    let token = pki::generate_admin_token().map_err(|e| ApiError::internal(&e))?;
    let record = state
        .store
        .create_operator_token(
            new.name.trim(),
            role,
            &pki::token_hash(&token),
            &auth.actor(),
            reason,
            state.clock.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            record: record.into(),
            token,
        }),
    ))
}

/// Revokes a token: it fails on its very next request.
#[utoipa::path(post, path = "/api/v1/tokens/{name}/revoke", tag = "tokens", request_body = Reason,
    params(("name" = String, Path, description = "the token's name")),
    security(("bearer" = ["manage_tokens"])),
    responses((status = 200, body = TokenView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn revoke_token(
    auth: Authorized<ManageTokens>,
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
    Body(body): Body<Reason>,
) -> Result<Json<TokenView>, ApiError> {
    let reason = require_reason(&body.reason)?;
    let record = state
        .store
        .revoke_operator_token(&name, &auth.actor(), reason, state.clock.now())
        .await?;
    Ok(Json(record.into()))
}
