//! Flag notices: the two-officer flag changes the gateway reported on this device's
//! records (issue 21, point 6). Kept in the outbox so the cursor (the highest change
//! id held) is durable: a change is applied once, whatever stops the agent.

use protocol::Millis;
use protocol::message::{FlagChange, FlagChanges};

use super::{Outbox, StoreError};

impl Outbox {
    /// The last change id held (0 before any): what the next request asks after.
    pub async fn flags_cursor(&self) -> Result<u64, StoreError> {
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM flag_notices")
            .fetch_one(self.pool())
            .await?;
        Ok(last.unwrap_or(0).max(0) as u64)
    }

    /// Keeps the changes of one reply in one transaction and returns those not held
    /// before (a reply repeated after a lost connection adds nothing).
    pub async fn apply_flag_changes(
        &self,
        reply: &FlagChanges,
        now: Millis,
    ) -> Result<Vec<FlagChange>, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let mut fresh = Vec::new();
        for change in &reply.changes {
            let json = serde_json::to_string(change).expect("a flag change serializes");
            let done = sqlx::query(
                "INSERT INTO flag_notices (id, sequence, raised, change, received_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(i64::try_from(change.id).unwrap_or(i64::MAX))
            .bind(i64::try_from(change.sequence).unwrap_or(i64::MAX))
            .bind(change.raised)
            .bind(json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                fresh.push(change.clone());
            }
        }
        tx.commit().await?;
        Ok(fresh)
    }
}
