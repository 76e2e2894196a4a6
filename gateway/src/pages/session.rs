//! Signing in to the dashboard: a form takes an operator token, and an HttpOnly,
//! SameSite=Strict cookie carries it on every page request (`Secure` whenever the
//! listener speaks TLS).
//!
//! The cookie holds the token itself, not a server-side session: every page request
//! looks the token's hash up in the store exactly as the API does with the bearer
//! header, so a revoked token fails on its very next page, several gateways behind a
//! load balancer need no shared session table, and nothing is lost on restart. The
//! API never reads the cookie (only `Authorization: Bearer`), so a page can never be
//! used to make an API call on someone's behalf.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, PageError};
use crate::access::Guard;
use crate::state::GatewayState;
use store::OperatorToken;

/// The cookie's name.
pub const COOKIE_NAME: &str = "fieldsync_session";

/// An operator signed in to the dashboard whose role holds `G`'s permission.
#[derive(Debug)]
pub struct Signed<G: Guard> {
    /// The token's record (name, role).
    pub operator: OperatorToken,
    /// Storage alarms and failures, shown at the top of every page
    /// ([`crate::storage::banners`]).
    pub banners: Vec<String>,
    _guard: PhantomData<G>,
}

/// The token in the request's session cookie, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The operator holding `token`, if it is a live token.
async fn operator(state: &GatewayState, token: &str) -> Result<Option<OperatorToken>, PageError> {
    if !pki::is_well_formed_token(token) {
        return Ok(None);
    }
    let hash = pki::token_hash(token);
    Ok(state.store.operator_by_token_hash(&hash).await?)
}

impl<G: Guard> FromRequestParts<Arc<GatewayState>> for Signed<G> {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<GatewayState>,
    ) -> Result<Self, PageError> {
        let token = cookie_token(&parts.headers).ok_or(PageError::SignIn)?;
        let operator = operator(state, token).await?.ok_or(PageError::SignIn)?;
        if !G::PERMISSION.allows(operator.role) {
            return Err(PageError::Forbidden {
                role: operator.role.to_string(),
                permission: G::PERMISSION.as_str(),
            });
        }
        Ok(Signed {
            operator,
            banners: crate::storage::banners(&state.faults, &state.storage),
            _guard: PhantomData,
        })
    }
}

/// True when the operator listener speaks TLS, so the cookie must be `Secure`.
fn secure(state: &GatewayState) -> bool {
    crate::config::http::needs_tls(state.config.http.listen, state.config.http.tls)
}

/// The `Set-Cookie` value that stores `token` (or, with `None`, deletes the cookie).
pub fn set_cookie(token: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(token) => format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// Why the sign-in page is shown.
#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    /// Set after signing out.
    #[serde(default)]
    pub signed_out: Option<String>,
}

fn form(message: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(m) = message {
            p.notice #sign-in-message { (m) }
        }
        form method="post" action="/login" #sign-in {
            label for="token" { "Operator token" }
            input #token type="password" name="token" autocomplete="off" required
                placeholder="fst_…";
            button type="submit" { "Sign in" }
        }
        p.hint { "Ask an admin for a token (provisioning tokens create …), or use the PKI folder's admin.token." }
    }
}

/// The sign-in form.
pub async fn sign_in_page(Query(query): Query<SignInQuery>) -> Response {
    let message = query.signed_out.map(|_| "Signed out.");
    layout::bare("Sign in", form(message)).into_response()
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    /// The operator token.
    pub token: String,
}

/// Checks the token; on success sets the cookie and goes to the home page.
pub async fn sign_in(
    State(state): State<Arc<GatewayState>>,
    Form(form_data): Form<SignInForm>,
) -> Result<Response, PageError> {
    let token = form_data.token.trim();
    let Some(operator) = operator(&state, token).await? else {
        let body = layout::bare("Sign in", form(Some("Unknown or revoked token.")));
        return Ok((StatusCode::UNAUTHORIZED, body).into_response());
    };
    tracing::info!(operator = %operator.name, role = %operator.role, "dashboard sign-in");
    let cookie = set_cookie(Some(token), secure(&state));
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, "/")]).into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| PageError::Internal(e.to_string()))?,
    );
    Ok(response)
}

/// Deletes the cookie and goes back to the sign-in form.
pub async fn sign_out(State(state): State<Arc<GatewayState>>) -> Response {
    let cookie = set_cookie(None, secure(&state));
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, "/login?signed_out=1")]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            "a=1; fieldsync_session=fst_abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&h), Some("fst_abc"));
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "fieldsync_session=".parse().unwrap());
        assert_eq!(cookie_token(&h), None);
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn the_cookie_is_http_only_and_strict_and_secure_under_tls() {
        let c = set_cookie(Some("fst_x"), false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(!c.contains("Secure"));
        assert!(set_cookie(Some("fst_x"), true).ends_with("; Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
    }
}
