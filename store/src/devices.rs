//! The device registry: enrollment, status (with the rules of
//! `DeviceStatus::check_change`), assignment, and the lookups the QUIC endpoint makes on
//! every handshake and hello.
//!
//! "A new certificate is a new enrollment": a device id and a certificate fingerprint
//! are used once, ever. A device that comes back after being lost, revoked or retired
//! is enrolled again with a new id and a new certificate; only its serial (the
//! hardware) may repeat, and only one enrollment per serial may be live.

use std::collections::HashSet;

use protocol::domain::DeviceStatus;
use protocol::{DeviceId, Millis};
use serde_json::json;

use super::audit::actions;
use super::rows::{
    DeviceRow, DeviceStatusEvent, NewDevice, RawDevice, convert_all, non_empty,
    normalize_fingerprint,
};
use super::tx::WriteTx;
use super::{Store, StoreError};

macro_rules! select_device {
    () => {
        "SELECT id, kind, serial, agency_id, assigned_officer, status, certificate_fingerprint, \
         certificate_not_after, enrolled_at, last_seen, clock_skew_ms, status_changed_at \
         FROM devices"
    };
}

const BY_ID: &str = concat!(select_device!(), " WHERE id = $1");
const BY_FINGERPRINT: &str = concat!(select_device!(), " WHERE certificate_fingerprint = $1");
const LIVE_BY_SERIAL: &str = concat!(
    select_device!(),
    " WHERE serial = $1 AND status IN ('in_service', 'suspended')"
);
const ALL: &str = concat!(select_device!(), " ORDER BY id");

impl WriteTx {
    /// One device by a unique key, inside the transaction.
    async fn device_where(
        &mut self,
        sql: &str,
        key: &str,
    ) -> Result<Option<DeviceRow>, StoreError> {
        let raw: Option<RawDevice> = on_tx!(self, c => {
            sqlx::query_as(sql).bind(key).fetch_optional(&mut *c).await?
        });
        raw.map(DeviceRow::try_from).transpose()
    }

    /// The device with this id, inside the transaction.
    pub(crate) async fn device(&mut self, id: &DeviceId) -> Result<Option<DeviceRow>, StoreError> {
        self.device_where(BY_ID, id.as_str()).await
    }

    /// The device with this id inside the transaction, or `UnknownDevice`.
    pub(crate) async fn known_device(&mut self, id: &DeviceId) -> Result<DeviceRow, StoreError> {
        self.device(id)
            .await?
            .ok_or_else(|| StoreError::UnknownDevice(id.clone()))
    }

    /// Why this device cannot be enrolled, if it cannot: its id or certificate was
    /// enrolled before, or its serial belongs to a live device.
    pub(crate) async fn enrollment_conflict(
        &mut self,
        id: &DeviceId,
        serial: &str,
        fingerprint: &str,
    ) -> Result<Option<StoreError>, StoreError> {
        if self.device(id).await?.is_some() {
            return Ok(Some(StoreError::DeviceIdTaken(id.clone())));
        }
        if self
            .device_where(BY_FINGERPRINT, fingerprint)
            .await?
            .is_some()
        {
            return Ok(Some(StoreError::DuplicateFingerprint(
                fingerprint.to_owned(),
            )));
        }
        if self.device_where(LIVE_BY_SERIAL, serial).await?.is_some() {
            return Ok(Some(StoreError::DuplicateSerial(serial.to_owned())));
        }
        Ok(None)
    }

    /// Inserts a checked enrollment (in service) and audits it. The caller has
    /// normalized the fingerprint, resolved the agency and ruled out conflicts.
    pub(crate) async fn insert_device(
        &mut self,
        new: &NewDevice,
        agency_id: Option<i64>,
        actor: &str,
        now: Millis,
    ) -> Result<DeviceRow, StoreError> {
        let row = DeviceRow {
            id: new.id.clone(),
            kind: new.kind,
            serial: new.serial.clone(),
            agency_id,
            assigned_officer: None,
            status: DeviceStatus::InService,
            certificate_fingerprint: new.certificate_fingerprint.clone(),
            certificate_not_after: new.certificate_not_after,
            enrolled_at: now,
            last_seen: None,
            clock_skew_ms: None,
            status_changed_at: now,
        };
        on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO devices (id, kind, serial, agency_id, status, \
                 certificate_fingerprint, certificate_not_after, enrolled_at, status_changed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(row.id.as_str())
            .bind(row.kind.as_str())
            .bind(&row.serial)
            .bind(row.agency_id)
            .bind(row.status.as_str())
            .bind(&row.certificate_fingerprint)
            .bind(row.certificate_not_after)
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        let detail = json!({
            "kind": row.kind.as_str(),
            "serial": row.serial,
            "fingerprint": row.certificate_fingerprint,
            "not_after": row.certificate_not_after,
            "agency": new.agency,
        });
        tx_audit(self, actor, actions::DEVICE_ENROLLED, &row.id, &detail, now).await?;
        self.append_assignment(&row.id, agency_id, None, now)
            .await?;
        Ok(row)
    }
}

impl WriteTx {
    /// The ids of the device's recordings announced and not stored, oldest first.
    async fn unstored_recordings(&mut self, id: &DeviceId) -> Result<Vec<String>, StoreError> {
        Ok(on_tx!(self, c => {
            sqlx::query_scalar(
                "SELECT id FROM recordings WHERE device_id = $1 AND stored_at IS NULL \
                 ORDER BY started_at, id",
            )
            .bind(id.as_str())
            .fetch_all(&mut *c)
            .await?
        }))
    }
}

async fn tx_audit(
    tx: &mut WriteTx,
    actor: &str,
    action: &str,
    id: &DeviceId,
    detail: &serde_json::Value,
    now: Millis,
) -> Result<(), StoreError> {
    tx.append_audit(actor, action, id.as_str(), &detail.to_string(), now)
        .await
        .map(drop)
}

impl Store {
    /// Enrolls a device, in service. Refused (and nothing written) when its id or
    /// certificate was ever enrolled before, or its serial belongs to a live device.
    pub async fn enroll_device(
        &self,
        new: &NewDevice,
        actor: &str,
        now: Millis,
    ) -> Result<DeviceRow, StoreError> {
        non_empty("serial", &new.serial)?;
        let new = NewDevice {
            certificate_fingerprint: normalize_fingerprint(&new.certificate_fingerprint)?,
            serial: new.serial.trim().to_owned(),
            ..new.clone()
        };
        let mut tx = self.write().await?;
        let agency_id = tx.agency_id(new.agency.as_deref()).await?;
        if let Some(conflict) = tx
            .enrollment_conflict(&new.id, &new.serial, &new.certificate_fingerprint)
            .await?
        {
            return Err(conflict);
        }
        let row = tx.insert_device(&new, agency_id, actor, now).await?;
        self.commit(tx).await?;
        Ok(row)
    }

    /// Changes a device's status under `DeviceStatus::check_change` (revoked and
    /// retired are final; a lost device never returns to service on the same
    /// certificate). Setting the status it has is accepted and writes nothing, so a
    /// retry is harmless. On commit, every gateway's endpoint hears of it (see
    /// [`Store::device_status_events`]).
    pub async fn set_device_status(
        &self,
        id: &DeviceId,
        to: DeviceStatus,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<DeviceRow, StoreError> {
        let mut tx = self.write().await?;
        let before = tx.known_device(id).await?;
        if before.status == to {
            tx.rollback().await?;
            return Ok(before);
        }
        before.status.check_change(to)?;
        on_tx!(tx, c => {
            sqlx::query("UPDATE devices SET status = $1, status_changed_at = $2 WHERE id = $3")
                .bind(to.as_str())
                .bind(now)
                .bind(id.as_str())
                .execute(&mut *c)
                .await?;
        });
        let mut detail =
            json!({ "from": before.status.as_str(), "to": to.as_str(), "reason": reason });
        if to == DeviceStatus::Lost {
            // The same step names what the loss puts at risk: its recordings announced
            // and not stored.
            detail["at_risk_recordings"] = json!(tx.unstored_recordings(id).await?);
        }
        tx_audit(&mut tx, actor, actions::DEVICE_STATUS_SET, id, &detail, now).await?;
        tx.device_status_changed(DeviceStatusEvent::Changed {
            device_id: id.clone(),
            fingerprint: before.certificate_fingerprint.clone(),
            status: to,
        })
        .await?;
        self.commit(tx).await?;
        Ok(DeviceRow {
            status: to,
            status_changed_at: now,
            ..before
        })
    }

    /// The device with this id, if any.
    pub async fn device(&self, id: &DeviceId) -> Result<Option<DeviceRow>, StoreError> {
        self.device_where(BY_ID, id.as_str()).await
    }

    /// The device enrolled with this certificate, if any: the handshake check. One
    /// query on the unique fingerprint index; the caller admits the device only if
    /// `status.is_admitted()`.
    pub async fn device_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<DeviceRow>, StoreError> {
        self.device_where(BY_FINGERPRINT, &fingerprint.to_ascii_lowercase())
            .await
    }

    async fn device_where(&self, sql: &str, key: &str) -> Result<Option<DeviceRow>, StoreError> {
        let raw: Option<RawDevice> = on_pool!(self.db(), p => {
            sqlx::query_as(sql).bind(key).fetch_optional(p).await?
        });
        raw.map(DeviceRow::try_from).transpose()
    }

    /// The devices marked lost: their announced recordings not stored yet are at risk
    /// (their bytes may never arrive).
    pub async fn lost_devices(&self) -> Result<HashSet<DeviceId>, StoreError> {
        let ids: Vec<String> = on_pool!(self.db(), p => {
            sqlx::query_scalar("SELECT id FROM devices WHERE status = 'lost'")
                .fetch_all(p)
                .await?
        });
        ids.into_iter()
            .map(|id| DeviceId::new(id).map_err(|e| StoreError::corrupt("device id", e)))
            .collect()
    }

    /// Every device, by id.
    pub async fn list_devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        let raw: Vec<RawDevice> = on_pool!(self.db(), p => sqlx::query_as(ALL).fetch_all(p).await?);
        convert_all(raw)
    }

    /// Records an accepted hello: when the device was last seen (gateway time) and its
    /// clock skew, which upload deadlines are corrected by. Not a registry change, so
    /// not audited (it happens on every connection).
    pub async fn record_hello(
        &self,
        id: &DeviceId,
        now: Millis,
        clock_skew_ms: i64,
    ) -> Result<(), StoreError> {
        let result = on_pool!(self.db(), p => {
            sqlx::query("UPDATE devices SET last_seen = $1, clock_skew_ms = $2 WHERE id = $3")
                .bind(now)
                .bind(clock_skew_ms)
                .bind(id.as_str())
                .execute(p)
                .await?
                .rows_affected()
        });
        if result == 0 {
            return Err(StoreError::UnknownDevice(id.clone()));
        }
        Ok(())
    }
}
