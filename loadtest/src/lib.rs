//! The fieldsync load-test harness, as a library so its pieces are tested in-process.
//!
//! It simulates devices with the `agent` library (not a second implementation of the
//! protocol), runs the gateway as a child process of its own so that the gateway's
//! memory and CPU can be read from `/proc` apart from the harness's, measures a bare
//! quinn + rustls baseline on the same machine in the same run, and reports every
//! fieldsync figure as a ratio to that baseline.

pub mod attack;
pub mod baseline;
pub mod child;
pub mod connect;
pub mod fleet;
pub mod machine;
pub mod options;
pub mod procstat;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scrape;
pub mod sim;
pub mod stats;
pub mod store_alone;
pub mod target;
pub mod verify;
