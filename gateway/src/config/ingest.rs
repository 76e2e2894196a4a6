//! The `[ingest]` configuration table: how pushes are grouped into one commit.

use serde::{Deserialize, Serialize};

/// Group-commit settings, as written in the configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// A group is committed once it holds this many records.
    pub max_batch_records: u32,
    /// How long the committer waits for more pushes after the first of a group, in
    /// milliseconds (the bound on the extra ack latency group commit adds).
    pub max_wait_ms: u64,
    /// Pushes that may wait for the committer before callers wait for room.
    pub queue_requests: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch_records: 1000,
            max_wait_ms: 2,
            queue_requests: 4096,
        }
    }
}

impl IngestConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_batch_records == 0 {
            return Err(("ingest.max_batch_records", "must be at least 1".into()));
        }
        if self.max_wait_ms > 1000 {
            return Err((
                "ingest.max_wait_ms",
                "must be at most 1000: every ack waits up to this long".into(),
            ));
        }
        if self.queue_requests == 0 {
            return Err(("ingest.queue_requests", "must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(IngestConfig::default().validate().is_ok());
        let zero = IngestConfig {
            max_batch_records: 0,
            ..IngestConfig::default()
        };
        assert_eq!(zero.validate().unwrap_err().0, "ingest.max_batch_records");
        let slow = IngestConfig {
            max_wait_ms: 5000,
            ..IngestConfig::default()
        };
        assert_eq!(slow.validate().unwrap_err().0, "ingest.max_wait_ms");
    }
}
