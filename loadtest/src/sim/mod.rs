//! A simulated device: one real [`agent::Agent`] (its own outbox in its own folder),
//! driven on a plan — a backlog made offline, then open-loop record pushes, identity
//! checks and recording uploads — over a shared client endpoint.
//!
//! Record latency is measured from each record's *planned* time to the moment its
//! acknowledgement was committed in the outbox, so a stalled gateway shows as latency
//! rather than as records that were simply made later (coordinated omission).
//! What the device saw acknowledged is read back from its own outbox (a record leaves
//! it only on a durable ack; a recording is `stored` only on the gateway's word) and
//! kept for [`crate::verify`].

mod day;
mod device;
pub mod pushes;
mod revoke;

pub use day::run;
pub use device::{
    AckedRecord, Fleet, Outcome, Plan, Prepared, RevocationSeen, Revoker, agent_config, ops,
    prepare, record_content,
};
