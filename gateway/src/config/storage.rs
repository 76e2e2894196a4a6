//! The `[storage]` table: how often free space is measured, when the alarm is raised,
//! and the reserve kept for operators (what each level does is `storage`'s).

use serde::{Deserialize, Serialize};

/// The `[storage]` configuration table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// How often free space is measured, in seconds.
    pub check_secs: u64,
    /// The alarm is raised while less than this share of a folder's file system is
    /// free, in percent (0 = no alarm).
    pub alarm_free_percent: u8,
    /// Device writes are refused while they would leave less than this many bytes
    /// free (kept for operators and the database's own needs).
    pub reserve_bytes: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            check_secs: 30,
            alarm_free_percent: 10,
            reserve_bytes: 256 << 20,
        }
    }
}

impl StorageSettings {
    /// Checks the settings; the error names the key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.check_secs == 0 {
            return Err(("storage.check_secs", "must be at least 1".into()));
        }
        if self.alarm_free_percent > 100 {
            return Err((
                "storage.alarm_free_percent",
                "must be a percentage, 0 to 100".into(),
            ));
        }
        Ok(())
    }
}
