//! The fieldsync gateway: a QUIC endpoint with mutual TLS that admits only enrolled,
//! in-service devices and drops a revoked one at once; the device registry and audit
//! log in a store on SQLite or PostgreSQL; metrics and mDNS.
//!
//! `main.rs` is thin: everything here is a library so tests run a real gateway on
//! `127.0.0.1:0` in-process.
//!
//! Read it from the bottom up; each module imports only modules below it
//! (`docs/import-circles.py --levels gateway` prints the levels):
//!
//! - [`config`] (every setting, importing nothing of the gateway), [`access`] (who may
//!   do what), [`live`] and [`metrics`];
//! - the parts that do one job each: [`admission`], [`deadlines`] (a deadline pass),
//!   [`faults`], [`storage`], [`refusals`], [`ingest`] (group commit), [`tls`],
//!   [`pki`], [`mdns`], and [`views`], the read models the API and the pages share;
//! - [`jobs`], the background jobs, each taking only the handles it needs;
//! - [`state`], what request handlers share;
//! - the two listeners' request handling: [`handlers`] and [`endpoint`] for devices,
//!   [`api`] and [`pages`] (neither imports the other) under [`http`] for operators;
//! - [`server`], which prepares (PKI, store, media; no ports), binds, then spawns.

pub mod access;
pub mod admission;
pub mod api;
pub mod config;
pub mod deadlines;
pub mod endpoint;
pub mod faults;
pub mod handlers;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod live;
pub mod mdns;
pub mod metrics;
pub mod pages;
pub mod pki;
pub mod refusals;
pub mod server;
pub mod state;
pub mod storage;
pub mod tls;
pub mod views;

pub use config::Config;
pub use server::{GatewayError, RunningGateway, run, start, start_with_clock};
