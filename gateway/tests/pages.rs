//! The dashboard in a real headless Chromium (driven over the DevTools protocol with
//! chromiumoxide): sign-in through the form, every page renders, its numbers match
//! the API's JSON for the same gateway, finance cannot open the case view, the
//! allocation chart has one bar pair per agency, and screenshots are saved under
//! `target/pages-screenshots/`. `plain` fetches pages without a browser.
//!
//! The browser tests are skipped with a printed notice when Chromium is not installed and
//! `FIELDSYNC_CHROMIUM` is unset; CI installs Chromium, so there they run.

#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "api/scenario.rs"]
mod scenario;

#[path = "pages/browser.rs"]
mod browser;

#[path = "pages/dashboard.rs"]
mod dashboard;

#[path = "pages/roles.rs"]
mod roles;

#[path = "pages/storage.rs"]
mod storage;

#[path = "pages/plain.rs"]
mod plain;
