//! The store test suite: every test runs on SQLite (in a temporary directory) and, when
//! `FIELDSYNC_TEST_PG` is set to a PostgreSQL URL, on PostgreSQL too (a fresh schema per
//! test). Run with:
//!
//! ```text
//! FIELDSYNC_TEST_PG=postgres://postgres@127.0.0.1:5432/test cargo nextest run -p store --test store
//! ```

#[path = "store/audit.rs"]
mod audit;
#[path = "store/config.rs"]
mod config;
#[path = "store/enrollment.rs"]
mod enrollment;
#[path = "store/events.rs"]
mod events;
#[path = "store/registry.rs"]
mod registry;
#[path = "store/support.rs"]
mod support;
