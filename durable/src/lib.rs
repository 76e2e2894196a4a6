//! How fieldsync touches the disk where it matters: private folders and files, writes
//! that a crash leaves whole or not at all ([`files`]), and the failpoints that let a
//! test stop or fail the process at each durable step ([`failpoint`]).
//!
//! Shared by the gateway and the agent, so that both keep evidence the same way.

pub mod failpoint;
pub mod files;
