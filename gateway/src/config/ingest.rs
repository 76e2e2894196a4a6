//! The `[ingest]` configuration table: how pushes are grouped into one commit.

use serde::{Deserialize, Serialize};

/// The smallest `ingest.queue_bytes`: two of the protocol's largest frames (1 MiB), so
/// a push of any size that is allowed on the wire can always queue behind another.
const MIN_QUEUE_BYTES: u64 = 2 << 20;
/// The largest `ingest.queue_bytes` (4 GiB: a push takes its share in one `u32`
/// step, and more is more memory than a gateway should hold for waiting pushes).
const MAX_QUEUE_BYTES: u64 = u32::MAX as u64;

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
    /// Bytes of decoded records that waiting pushes may hold in all; a push that
    /// finds no room is answered "busy" (retry later), never queued or acknowledged.
    pub queue_bytes: u64,
    /// Tamper flags kept per device; beyond, its chain breaks are counted in one row.
    pub tamper_flags_per_device: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch_records: 1000,
            max_wait_ms: 2,
            queue_requests: 4096,
            queue_bytes: 256 << 20,
            tamper_flags_per_device: store::IngestRules::DEFAULT_TAMPER_FLAGS_PER_DEVICE,
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
        if self.queue_bytes < MIN_QUEUE_BYTES {
            return Err((
                "ingest.queue_bytes",
                format!(
                    "must be at least {MIN_QUEUE_BYTES} (two of the largest frames a device sends by default)"
                ),
            ));
        }
        if self.queue_bytes > MAX_QUEUE_BYTES {
            return Err((
                "ingest.queue_bytes",
                format!("must be at most {MAX_QUEUE_BYTES}"),
            ));
        }
        if self.tamper_flags_per_device == 0 {
            return Err((
                "ingest.tamper_flags_per_device",
                "must be at least 1: supervisors need the evidence of a device's first chain breaks"
                    .into(),
            ));
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
        let tiny = IngestConfig {
            queue_bytes: 1 << 20,
            ..IngestConfig::default()
        };
        assert_eq!(tiny.validate().unwrap_err().0, "ingest.queue_bytes");
        let no_flags = IngestConfig {
            tamper_flags_per_device: 0,
            ..IngestConfig::default()
        };
        assert_eq!(
            no_flags.validate().unwrap_err().0,
            "ingest.tamper_flags_per_device"
        );
    }
}
