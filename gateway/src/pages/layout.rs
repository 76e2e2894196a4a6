//! The frame every dashboard page shares (title, navigation by role, style), the error
//! pages, and the formatting of times and durations for people.
//!
//! Markup is built with maud, which escapes every interpolated value, so a case text
//! or agency name can never inject markup. No script is served: the pages work with
//! scripting off, and the content security policy forbids it.

use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use protocol::Millis;
use time::{OffsetDateTime, UtcOffset};

use crate::access::Permission;
use crate::views::ViewError;
use store::{OperatorToken, StoreError};

/// Why a page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session cookie, or its token is unknown or revoked: go to the sign-in form.
    #[error("sign in first")]
    SignIn,
    /// The operator's role lacks the page's permission.
    #[error("the {role} role may not open this page (permission {permission})")]
    Forbidden {
        /// The operator's role.
        role: String,
        /// The permission the page needs.
        permission: &'static str,
    },
    /// What the page was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request's values are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The gateway failed (details in the log).
    #[error("the gateway failed: {0}")]
    Internal(String),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<ViewError> for PageError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::NotFound(_) => PageError::NotFound("nothing found".into()),
            ViewError::Invalid(_) => PageError::Invalid("invalid request".into()),
            ViewError::Store(e) => PageError::from(e),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            PageError::SignIn => {
                return (StatusCode::SEE_OTHER, [(LOCATION, "/login")]).into_response();
            }
            PageError::Forbidden { .. } => (StatusCode::FORBIDDEN, "Not allowed"),
            PageError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            PageError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid request"),
            PageError::Internal(cause) => {
                tracing::error!(error = %cause, "dashboard page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Gateway error")
            }
        };
        let message = match &self {
            PageError::Internal(_) => "The gateway failed; see its log.".to_owned(),
            other => other.to_string(),
        };
        let body = html! {
            h1 { (title) }
            p.error #error-message { (message) }
            p { a href="/" { "Home" } " · " a href="/login" { "Sign in as someone else" } }
        };
        (status, bare(title, body)).into_response()
    }
}

/// A dashboard page, with what its navigation needs.
pub struct Page<'a> {
    /// Who is signed in.
    pub operator: &'a OperatorToken,
    /// Storage alarms and failures to show above everything else.
    pub banners: &'a [String],
    /// Shown in the title bar and as the heading.
    pub title: &'a str,
    /// Which navigation entry is current (its path).
    pub current: &'a str,
}

/// Navigation entries: path, label, permission needed.
const NAV: [(&str, &str, Permission); 5] = [
    ("/fleet", "Fleet", Permission::ReadRegistry),
    ("/allocation", "Allocation", Permission::ReadReports),
    ("/uploads", "Uploads", Permission::ReadReports),
    ("/cases", "Cases", Permission::ReadCaseContent),
    ("/audit", "Audit log", Permission::ReadAudit),
];

/// The entries of the navigation this operator may open.
pub fn nav_for(operator: &OperatorToken) -> Vec<(&'static str, &'static str)> {
    NAV.iter()
        .filter(|(_, _, p)| p.allows(operator.role))
        .map(|(path, label, _)| (*path, *label))
        .collect()
}

const STYLE: &str = "
body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header{background:#1d3b5c;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none}header a.current{border-bottom:2px solid #ffd34d}
header .who{margin-left:auto;font-size:.9em}header form{display:inline}
main{padding:1em 1.5em;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em;background:#fff}
th,td{border:1px solid #d5dae0;padding:.3em .6em;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fde8e8}tr.warn td{background:#fff6dd}
.cards{display:flex;gap:1em;flex-wrap:wrap;margin:.5em 0 1em}
.card{background:#fff;border:1px solid #d5dae0;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.6em}
.error{color:#a40000}.notice{color:#1d5c2e}.hint{color:#666;font-size:.9em}
.flag{display:inline-block;background:#a40000;color:#fff;padding:0 .4em;margin:0 .2em;font-size:.85em}
.ok{color:#1d5c2e}
.alarm{background:#a40000;color:#fff;padding:.4em 1.5em;font-weight:bold}.alarm p{margin:.2em 0}
form.search input{margin-right:.5em}
svg text{font-size:12px;fill:#1d2733}
svg .required{fill:#c2410c}svg .in-service{fill:#1d6fb8}
";

/// The document around `body`, without navigation (sign-in and error pages).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · fieldsync" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header { strong { "fieldsync" } }
                main { (body) }
            }
        }
    }
}

/// A page with the navigation the operator's role allows and a sign-out button.
pub fn page(p: &Page<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (p.title) " · fieldsync" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/" { strong { "fieldsync" } }
                    nav {
                        @for (path, label) in nav_for(p.operator) {
                            a href=(path) class=[(path == p.current).then_some("current")] { (label) }
                            " "
                        }
                    }
                    span.who #who {
                        (p.operator.name) " (" span #role { (p.operator.role.as_str()) } ") "
                        form method="post" action="/logout" #sign-out {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                @if !p.banners.is_empty() {
                    div.alarm #storage-alarm role="alert" {
                        @for banner in p.banners {
                            p { (banner) }
                        }
                    }
                }
                main {
                    h1 { (p.title) }
                    (body)
                }
            }
        }
    }
}

/// A gateway time for people, in the deployment's local offset (`YYYY-MM-DD HH:MM:SS
/// +08:00`).
pub fn time(at: Millis, offset_minutes: i32) -> String {
    let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap_or(UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]:[offset_minute]"
    );
    utc.to_offset(offset)
        .format(&format)
        .unwrap_or_else(|_| at.to_string())
}

/// An optional time; `—` when absent.
pub fn maybe_time(at: Option<Millis>, offset_minutes: i32) -> String {
    at.map_or_else(|| "—".to_owned(), |t| time(t, offset_minutes))
}

/// A duration for people: `3 d 4 h`, `5 h 12 min`, `40 min`, `12 s`.
pub fn duration(ms: Millis) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_local_offset() {
        assert_eq!(time(0, 480), "1970-01-01 08:00:00 +08:00");
        assert_eq!(time(0, 0), "1970-01-01 00:00:00 +00:00");
        assert_eq!(maybe_time(None, 480), "—");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(12_000), "12 s");
        assert_eq!(duration(40 * 60_000), "40 min");
        assert_eq!(duration(6 * 3_600_000 + 12 * 60_000), "6 h 12 min");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3 d 4 h");
        assert_eq!(duration(-5), "0 s");
    }

    #[test]
    fn markup_is_escaped() {
        let m = html! { p { ("<script>alert(1)</script>") } };
        assert_eq!(
            m.into_string(),
            "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
        );
    }
}
