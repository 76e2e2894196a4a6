//! The admin HTTP API over real sockets, on SQLite and (with FIELDSYNC_TEST_PG)
//! PostgreSQL: authentication and the role matrix, the OpenAPI document against the
//! routes served, audit of every change, bulk imports, the allocation report and its
//! snapshots, TLS on the operator listener, and the listener against slow clients.

#[path = "api/support.rs"]
mod support;

#[path = "api/roles.rs"]
mod roles;

#[path = "api/audit.rs"]
mod audit;

#[path = "api/allocation.rs"]
mod allocation;

#[path = "api/imports.rs"]
mod imports;

#[path = "api/tls.rs"]
mod tls;

#[path = "api/scenario.rs"]
mod scenario;

#[path = "api/case_view.rs"]
mod case_view;

#[path = "api/uploads.rs"]
mod uploads;

#[path = "api/slow_clients.rs"]
mod slow_clients;

#[path = "api/operators_data.rs"]
mod operators_data;
