//! Small facts about syncing, kept by key: the last sync, the gateway's clock skew
//! and limits, counters of what the gateway acknowledged. `status` reads them.

use protocol::action_kind::ActionKinds;
use protocol::clock::ClockPolicy;
use protocol::message::DeviceRules;
use protocol::{Limits, Millis};
use sqlx::{Sqlite, Transaction};

use super::{Outbox, StoreError};

/// Keys of the sync state.
pub mod keys {
    /// The device id the chain in this file belongs to.
    pub const DEVICE_ID: &str = "device_id";
    /// Device time of the last complete sync.
    pub const LAST_SYNC_AT: &str = "last_sync_at";
    /// Device time of the last attempt (complete or not).
    pub const LAST_ATTEMPT_AT: &str = "last_attempt_at";
    /// Why the last attempt failed (removed by a complete sync).
    pub const LAST_ERROR: &str = "last_error";
    /// Gateway time minus device time, from the last welcome.
    pub const CLOCK_SKEW_MS: &str = "clock_skew_ms";
    /// The limits of the last welcome (JSON).
    pub const LIMITS: &str = "limits";
    /// The gateway the last sync reached.
    pub const GATEWAY: &str = "gateway";
    /// Records the gateway acknowledged as stored.
    pub const RECORDS_STORED: &str = "records_stored_total";
    /// Records the gateway acknowledged as already stored.
    pub const RECORDS_DUPLICATE: &str = "records_duplicate_total";
    /// Records the gateway refused.
    pub const RECORDS_REJECTED: &str = "records_rejected_total";
    /// Records confirmed by the gateway's chain head at hello.
    pub const RECORDS_CONFIRMED: &str = "records_confirmed_total";
    /// Offline identity checks the gateway acknowledged.
    pub const CHECKS_UPLOADED: &str = "checks_uploaded_total";
    /// The roster version held.
    pub const ROSTER_VERSION: &str = "roster_version";
    /// The terminals' rules of the last welcome that carried them (JSON).
    pub const DEVICE_RULES: &str = "device_rules";
}

impl Outbox {
    /// Reads one value.
    pub async fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM sync_state WHERE key = $1")
                .bind(key)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Writes one value.
    pub async fn set_state(&self, key: &str, value: &str) -> Result<(), StoreError> {
        put(self.pool(), key, value).await
    }

    /// Writes several values and removes others in ONE transaction (one fsync): a
    /// sync's bookkeeping (skew, limits, times, the last error) is a few keys at each
    /// step, and a transaction per key made the agent's own disk the cost of a sync.
    pub async fn update_state(
        &self,
        set: &[(&str, &str)],
        clear: &[&str],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        for (key, value) in set {
            put(&mut *tx, key, value).await?;
        }
        for key in clear {
            sqlx::query("DELETE FROM sync_state WHERE key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Reads an integer value (0 when unset).
    pub async fn state_i64(&self, key: &str) -> Result<i64, StoreError> {
        match self.state(key).await? {
            None => Ok(0),
            Some(text) => text
                .parse()
                .map_err(|_| StoreError::corrupt("sync state", format!("{key} = {text:?}"))),
        }
    }

    /// Reads an optional time value.
    pub async fn state_time(&self, key: &str) -> Result<Option<Millis>, StoreError> {
        match self.state(key).await? {
            None => Ok(None),
            Some(_) => Ok(Some(self.state_i64(key).await?)),
        }
    }

    /// The limits of the last welcome, or the protocol defaults before any sync.
    pub async fn limits(&self) -> Result<Limits, StoreError> {
        match self.state(keys::LIMITS).await? {
            None => Ok(Limits::default()),
            Some(text) => {
                serde_json::from_str(&text).map_err(|e| StoreError::corrupt("saved limits", e))
            }
        }
    }

    /// The terminals' rules the gateway last sent, if it ever did.
    pub async fn device_rules(&self) -> Result<Option<DeviceRules>, StoreError> {
        match self.state(keys::DEVICE_RULES).await? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| StoreError::corrupt("saved device rules", e)),
        }
    }

    /// The rules to apply now: the gateway's last, or before the first sync the
    /// protocol's defaults (DOMAIN's vocabulary, two officers, the default clock
    /// tolerance), so a terminal refuses a misspelt kind from its first day.
    pub async fn rules_in_force(&self) -> Result<DeviceRules, StoreError> {
        Ok(self.device_rules().await?.unwrap_or_else(|| DeviceRules {
            action_kinds: ActionKinds::default(),
            min_officers: protocol::two_officer::LEGAL_MIN_OFFICERS,
            clock_tolerance_ms: ClockPolicy::default().tolerance_ms(),
        }))
    }

    /// Claims this file for `self.device()`, or refuses when it holds another
    /// device's chain (a data folder copied between devices, or a re-enrollment
    /// under a new id): sealing onto another device's chain would make every record
    /// fail verification.
    pub async fn claim_device(&self) -> Result<(), ClaimError> {
        let mine = self.device().as_str();
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::from)?;
        let found: Option<String> =
            sqlx::query_scalar("SELECT value FROM sync_state WHERE key = $1")
                .bind(keys::DEVICE_ID)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        match found {
            Some(other) if other != mine => {
                return Err(ClaimError::OtherDevice {
                    found: other,
                    expected: mine.to_owned(),
                });
            }
            Some(_) => {}
            None => put(&mut *tx, keys::DEVICE_ID, mine).await?,
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

/// Why a data folder cannot be used for a device.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The file holds another device's chain.
    #[error(
        "this data folder holds the records of device {found}, not {expected}; use another --data folder"
    )]
    OtherDevice {
        /// The device the file belongs to.
        found: String,
        /// The device of the installed certificate.
        expected: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How limits are kept in the sync state.
pub(crate) fn limits_text(limits: &Limits) -> String {
    serde_json::to_string(limits).expect("limits serialize")
}

/// Writes one value through any executor (pool or transaction).
pub(crate) async fn put<'e, E>(exec: E, key: &str, value: &str) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO sync_state (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(exec)
    .await?;
    Ok(())
}

/// Adds `by` to an integer value inside a transaction.
pub(crate) async fn add(
    tx: &mut Transaction<'_, Sqlite>,
    key: &str,
    by: i64,
) -> Result<(), StoreError> {
    if by == 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO sync_state (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + $2",
    )
    .bind(key)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::test_util::outbox;

    #[tokio::test]
    async fn counters_add_up_and_values_round_trip() {
        let (_dir, outbox) = outbox().await;
        assert_eq!(outbox.state_i64(keys::RECORDS_STORED).await.unwrap(), 0);
        let mut tx = outbox.pool().begin().await.unwrap();
        add(&mut tx, keys::RECORDS_STORED, 3).await.unwrap();
        add(&mut tx, keys::RECORDS_STORED, 4).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(outbox.state_i64(keys::RECORDS_STORED).await.unwrap(), 7);
        outbox.set_state(keys::LAST_ERROR, "boom").await.unwrap();
        assert_eq!(
            outbox.state(keys::LAST_ERROR).await.unwrap().as_deref(),
            Some("boom")
        );
        outbox.update_state(&[], &[keys::LAST_ERROR]).await.unwrap();
        assert_eq!(outbox.state(keys::LAST_ERROR).await.unwrap(), None);
    }

    #[tokio::test]
    async fn one_update_sets_and_clears_together() {
        let (_dir, outbox) = outbox().await;
        outbox.set_state(keys::LAST_ERROR, "boom").await.unwrap();
        outbox
            .update_state(
                &[(keys::LAST_SYNC_AT, "5"), (keys::GATEWAY, "127.0.0.1:1")],
                &[keys::LAST_ERROR],
            )
            .await
            .unwrap();
        assert_eq!(outbox.state_i64(keys::LAST_SYNC_AT).await.unwrap(), 5);
        assert_eq!(
            outbox.state(keys::GATEWAY).await.unwrap().as_deref(),
            Some("127.0.0.1:1")
        );
        assert_eq!(outbox.state(keys::LAST_ERROR).await.unwrap(), None);
    }

    #[tokio::test]
    async fn limits_default_until_a_welcome_saves_them() {
        let (_dir, outbox) = outbox().await;
        assert_eq!(outbox.limits().await.unwrap(), Limits::default());
        let limits = Limits {
            max_records_per_push: 7,
            ..Limits::default()
        };
        outbox
            .update_state(&[(keys::LIMITS, &limits_text(&limits))], &[])
            .await
            .unwrap();
        assert_eq!(outbox.limits().await.unwrap(), limits);
    }

    #[tokio::test]
    async fn a_folder_of_another_device_is_refused() {
        let (dir, outbox) = outbox().await;
        outbox.claim_device().await.unwrap();
        outbox.claim_device().await.unwrap();
        outbox.close().await;
        let other = Outbox::open(dir.path(), protocol::DeviceId::new("dev-other").unwrap())
            .await
            .unwrap();
        let err = other.claim_device().await.unwrap_err();
        assert!(err.to_string().contains("dev-test"), "{err}");
    }
}
