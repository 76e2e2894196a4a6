//! The roster cache: certificate number → status, name, unit, post, category, synced
//! from the gateway as versioned deltas, so a check made offline sees every
//! withdrawal the device has synced (DOMAIN R4).

use protocol::domain::CertificateStatus;
use protocol::message::{RosterDelta, RosterEntry};

use super::state::{keys, put};
use super::{Outbox, StoreError};

/// Why a roster delta was not applied.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// The delta does not start at the version the device holds.
    #[error("roster delta starts after version {from}, but this device holds version {held}")]
    WrongBase {
        /// Where the delta starts.
        from: u64,
        /// The version held.
        held: u64,
    },
    /// The delta goes backwards.
    #[error("roster delta goes back from version {from} to {to}")]
    Backwards {
        /// Where the delta starts.
        from: u64,
        /// Where it ends.
        to: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    bool,
    Option<i64>,
);

impl Outbox {
    /// The roster version held (0 before the first sync).
    pub async fn roster_version(&self) -> Result<u64, StoreError> {
        Ok(self.state_i64(keys::ROSTER_VERSION).await?.max(0) as u64)
    }

    /// How many officers the cached roster knows.
    pub async fn roster_size(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM roster")
            .fetch_one(self.pool())
            .await?;
        Ok(n as u64)
    }

    /// Applies one delta in one transaction: every entry and the new version, or none.
    pub async fn apply_roster_delta(&self, delta: &RosterDelta) -> Result<(), RosterError> {
        if delta.to_version < delta.from_version {
            return Err(RosterError::Backwards {
                from: delta.from_version,
                to: delta.to_version,
            });
        }
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::from)?;
        let held: Option<String> =
            sqlx::query_scalar("SELECT value FROM sync_state WHERE key = $1")
                .bind(keys::ROSTER_VERSION)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        let held = held.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if delta.from_version != held {
            return Err(RosterError::WrongBase {
                from: delta.from_version,
                held,
            });
        }
        for entry in &delta.entries {
            sqlx::query(
                "INSERT INTO roster
                     (certificate_number, name, unit, post, category, status, version,
                      auxiliary, valid_until)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (certificate_number) DO UPDATE SET
                     name = excluded.name, unit = excluded.unit, post = excluded.post,
                     category = excluded.category, status = excluded.status,
                     version = excluded.version, auxiliary = excluded.auxiliary,
                     valid_until = excluded.valid_until",
            )
            .bind(entry.certificate_number.trim())
            .bind(&entry.name)
            .bind(&entry.unit)
            .bind(&entry.post)
            .bind(&entry.category)
            .bind(entry.status.as_str())
            .bind(i64::try_from(entry.version).unwrap_or(i64::MAX))
            .bind(entry.auxiliary)
            .bind(entry.valid_until)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        }
        put(
            &mut *tx,
            keys::ROSTER_VERSION,
            &delta.to_version.to_string(),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Forgets the cached roster (version 0), in one transaction.
    pub async fn reset_roster(&self) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM roster").execute(&mut *tx).await?;
        put(&mut *tx, keys::ROSTER_VERSION, "0").await?;
        tx.commit().await?;
        Ok(())
    }

    /// The cached entry of a certificate number, if the roster knows it.
    pub async fn roster_entry(
        &self,
        certificate_number: &str,
    ) -> Result<Option<RosterEntry>, StoreError> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT certificate_number, name, unit, post, category, status, version,
                 auxiliary, valid_until
             FROM roster WHERE certificate_number = $1",
        )
        .bind(certificate_number.trim())
        .fetch_optional(self.pool())
        .await?;
        row.map(
            |(
                certificate_number,
                name,
                unit,
                post,
                category,
                status,
                version,
                auxiliary,
                valid_until,
            )| {
                Ok(RosterEntry {
                    certificate_number,
                    name,
                    unit,
                    post,
                    category,
                    status: status
                        .parse::<CertificateStatus>()
                        .map_err(|e| StoreError::corrupt("roster status", e))?,
                    version: version.max(0) as u64,
                    auxiliary,
                    valid_until,
                })
            },
        )
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::test_util::outbox;

    fn entry(number: &str, status: CertificateStatus, version: u64) -> RosterEntry {
        RosterEntry {
            certificate_number: number.into(),
            name: format!("Officer {number}"),
            unit: "Unit 1".into(),
            post: "inspector".into(),
            category: "market".into(),
            status,
            version,
            auxiliary: false,
            valid_until: None,
        }
    }

    #[tokio::test]
    async fn deltas_apply_in_order_and_a_withdrawal_replaces_the_entry() {
        let (_dir, outbox) = outbox().await;
        assert_eq!(outbox.roster_version().await.unwrap(), 0);
        outbox
            .apply_roster_delta(&RosterDelta {
                from_version: 0,
                to_version: 2,
                entries: vec![
                    entry("A-1", CertificateStatus::Valid, 1),
                    entry("A-2", CertificateStatus::Valid, 2),
                ],
                more: false,
            })
            .await
            .unwrap();
        outbox
            .apply_roster_delta(&RosterDelta {
                from_version: 2,
                to_version: 3,
                entries: vec![entry("A-1", CertificateStatus::Withdrawn, 3)],
                more: false,
            })
            .await
            .unwrap();
        assert_eq!(outbox.roster_version().await.unwrap(), 3);
        assert_eq!(outbox.roster_size().await.unwrap(), 2);
        let a1 = outbox.roster_entry(" A-1 ").await.unwrap().unwrap();
        assert_eq!(a1.status, CertificateStatus::Withdrawn);
        assert!(outbox.roster_entry("Z-9").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_delta_from_another_version_changes_nothing() {
        let (_dir, outbox) = outbox().await;
        let err = outbox
            .apply_roster_delta(&RosterDelta {
                from_version: 5,
                to_version: 6,
                entries: vec![entry("A-1", CertificateStatus::Valid, 6)],
                more: false,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, RosterError::WrongBase { from: 5, held: 0 }));
        assert_eq!(outbox.roster_size().await.unwrap(), 0);
        let err = outbox
            .apply_roster_delta(&RosterDelta {
                from_version: 0,
                to_version: 0,
                entries: vec![],
                more: false,
            })
            .await;
        assert!(err.is_ok(), "an empty delta is fine");
    }
}
