//! The `[allocation_report]` table: when the daily allocation snapshot is taken.

use serde::{Deserialize, Serialize};

/// When the daily snapshot is taken (configuration `[allocation_report]`). Days of the
/// trend are days of the agencies' time zone (the top-level `time_zone`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllocationReportConfig {
    /// Local hour (0–23) from which the day's snapshot is taken.
    pub snapshot_hour: u8,
}

impl Default for AllocationReportConfig {
    fn default() -> Self {
        AllocationReportConfig { snapshot_hour: 1 }
    }
}

impl AllocationReportConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.snapshot_hour > 23 {
            return Err(("allocation_report.snapshot_hour", "must be 0 to 23".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_snapshot_settings_are_named() {
        let bad = AllocationReportConfig { snapshot_hour: 24 };
        assert_eq!(
            bad.validate().unwrap_err().0,
            "allocation_report.snapshot_hour"
        );
    }
}
