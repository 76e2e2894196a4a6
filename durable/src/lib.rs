//! How fieldsync touches the disk where it matters: private folders and files, writes
//! that a crash leaves whole or not at all ([`files`]).
//!
//! Shared by the gateway and the agent, so that both keep evidence the same way.

pub mod files;
