//! The gateway's background jobs: each runs until shutdown and takes only the handles
//! it needs (store, clock, a metric, its settings), never the whole gateway state, so
//! what a job can touch is read from its signature.

pub mod staging_sweep;
