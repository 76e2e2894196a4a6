//! The gateway's background jobs: each runs until shutdown and takes only the handles
//! it needs (store, clock, a metric, its settings), never the whole gateway state, so
//! what a job can touch is read from its signature. `server` starts them.

pub mod allocation_snapshots;
pub mod deadline_watch;
pub mod refusal_audit;
pub mod revocations;
pub mod staging_sweep;
pub mod storage_alarm;
pub mod two_officer_reviews;
