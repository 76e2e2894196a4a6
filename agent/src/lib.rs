//! The fieldsync device agent, as a library: the CLI (`src/main.rs`) and `loadtest`
//! use it.
//!
//! An [`Agent`] is one device: its identity ([`identity`], installed by [`enroll`]),
//! its configuration ([`config`]), its local SQLite store ([`outbox`]: field records
//! chained when made, offline identity checks, the roster cache, recordings), and the
//! operations on them: [`Agent::record`], [`Agent::check`] (online, else offline),
//! [`Agent::add_recording`] ([`recordings`]; uploaded by [`uploader`]),
//! [`Agent::sync_once`] over an open connection, [`Agent::run`] (the daemon loop with
//! backoff), [`Agent::status`]. The gateway is found by configuration or by mDNS
//! ([`discovery`]) and always authenticated by TLS against the fleet CA
//! ([`transport`]).
//!
//! For many agents in one process (`loadtest`): open each with
//! [`Agent::open_with`] (its own data folder, a given identity and clock), connect
//! them all through one [`GatewayEndpoint`] with [`Agent::connect_via`], and call
//! [`Agent::sync_once`] on each connection.

pub mod agent;
pub mod backoff;
pub mod check;
pub mod config;
pub mod discovery;
pub mod enroll;
pub mod identity;
pub mod outbox;
pub mod recordings;
pub mod request;
pub mod rules;
pub mod runner;
pub mod seal;
pub mod status;
pub mod sync;
pub mod transport;
pub mod uploader;

pub use agent::{AGENT_VERSION, Agent, ConnectError, GatewayTarget, OpenError, Session};
pub use check::{CheckAnswer, CheckError, CheckRequest, CheckSource};
pub use config::{AgentConfig, ConfigError};
pub use identity::{DeviceIdentity, IdentityError};
pub use outbox::records::{QueuedRecord, RecordError};
pub use request::RequestError;
pub use runner::{LogObserver, RunError, RunObserver};
pub use status::Status;
pub use sync::{PushBatch, Pushed, SyncError, SyncReport};
pub use transport::{ClientError, GatewayConnection, GatewayEndpoint};
