//! The dashboard: server-rendered HTML pages on the operator listener for equipment
//! managers, finance and supervisors (issue 7 point 5). No JavaScript and no build
//! step: markup is made on the server with maud (compile-time templates that escape
//! every value), the allocation chart is SVG drawn on the server.
//!
//! Sign-in takes an operator token through a form ([`session`]); every page checks
//! the same permission as the API endpoint it mirrors (finance sees allocation and
//! uploads but not case content) and calls the same library function, so a page and
//! the API's JSON always show the same numbers.

pub mod audit;
pub mod cases;
pub mod chart;
pub mod fleet;
pub mod layout;
pub mod reports;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};

use crate::access::Identify;
use crate::state::GatewayState;
use layout::{Page, nav_for, page};
use session::Signed;

/// No script, no outside resources, no framing; styles are inline.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes, with their state.
pub fn router(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(session::sign_in_page).post(session::sign_in))
        .route("/logout", post(session::sign_out))
        .route("/fleet", get(fleet::fleet_page))
        .route("/allocation", get(reports::allocation_page))
        .route("/uploads", get(reports::uploads_page))
        .route("/cases", get(cases::cases_page))
        .route("/audit", get(audit::audit_page))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers on every page: pages carry case content and are never cached or framed.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Who is signed in and the pages their role opens.
async fn home(signed: Signed<Identify>) -> Markup {
    let links = nav_for(&signed.operator);
    page(
        &Page {
            operator: &signed.operator,
            banners: &signed.banners,
            title: "Dashboard",
            current: "/",
        },
        html! {
            p #signed-in { "Signed in as " strong { (signed.operator.name) } " with the "
                (signed.operator.role.as_str()) " role." }
            @if links.is_empty() {
                p { "This role opens no dashboard page." }
            } @else {
                ul #pages { @for (path, label) in links { li { a href=(path) { (label) } } } }
            }
        },
    )
}
