//! What one device holds on this gateway before its recordings are stored: how many
//! it announced and has not finished, and how many bytes of partial uploads it has in
//! staging. The upload handlers check both against the configured caps, so a device
//! (or a stolen certificate) cannot grow the store or the staging disk without bound.

use protocol::DeviceId;

use super::super::{Store, StoreError};

impl Store {
    /// How many recordings `device` announced and has not finished, counted up to
    /// `limit` (the count stops there: a device at its cap costs no more to check).
    pub async fn pending_recordings(
        &self,
        device: &DeviceId,
        limit: u32,
    ) -> Result<u32, StoreError> {
        let n: i64 = on_pool!(self.db(), p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM recordings \
                 WHERE device_id = $1 AND stored_at IS NULL LIMIT $2) AS pending",
            )
            .bind(device.as_str())
            .bind(i64::from(limit))
            .fetch_one(p)
            .await?
        });
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Bytes of `device`'s unfinished recordings held in staging, as recorded.
    pub async fn staging_bytes(&self, device: &DeviceId) -> Result<u64, StoreError> {
        // (PostgreSQL sums BIGINT into NUMERIC: cast back.)
        let n: i64 = on_pool!(self.db(), p => {
            sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(bytes_received), 0) AS BIGINT) FROM recordings \
                 WHERE device_id = $1 AND stored_at IS NULL",
            )
            .bind(device.as_str())
            .fetch_one(p)
            .await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
