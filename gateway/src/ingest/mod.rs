//! Group commit of field records: pushes from many connections are queued to one
//! committer task, which takes everything queued (waiting at most `max_wait` for more,
//! up to `max_batch_records`) and stores it in ONE transaction, so durable ingest costs
//! one fsync per group instead of one per record. Each caller gets its acks only after
//! that transaction committed; a failed commit fails every caller of the group and
//! acknowledges nothing (the devices keep the records and push them again).
//!
//! One device's pushes are stored in the order they were queued, so two pushes of one
//! device in the same group continue each other's chain.

mod committer;
pub mod metrics;

pub use committer::{Committer, IngestError, IngestSettings};
pub use metrics::RecordMetrics;

use crate::config::IngestConfig;

impl From<&IngestConfig> for IngestSettings {
    /// The committer's settings from the `[ingest]` table.
    fn from(config: &IngestConfig) -> Self {
        IngestSettings {
            max_batch_records: config.max_batch_records as usize,
            max_wait: std::time::Duration::from_millis(config.max_wait_ms),
            queue_requests: config.queue_requests as usize,
            queue_bytes: config.queue_bytes as usize,
        }
    }
}
