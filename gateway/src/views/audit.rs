//! An audit entry as operators read it (the API and the audit page): the stored
//! entry with its detail parsed back into JSON.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use store::AuditEntry;

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the log (1, 2, 3, … with no gaps).
    pub seq: i64,
    /// When (ms since the Unix epoch, gateway time).
    pub at: i64,
    /// Who (`operator:<name>`, `gateway`, …).
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// The particulars (including the reason), as JSON.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// This entry's chain hash.
    pub hash: String,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        AuditEntryView {
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail)),
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            hash: e.hash,
        }
    }
}
