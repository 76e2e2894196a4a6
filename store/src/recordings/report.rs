//! What the upload report reads: every recording with the agency, officer and device
//! it is counted under: those of its recording time (the device's assignment history
//! at its start), so reassigning a device does not move its history. A recording that
//! starts before the device's first assignment entry (made before enrollment, or a
//! device clock that ran behind) counts under the assignment when it was announced.
//! The counting itself is pure (the gateway's `reports::uploads`).

use protocol::{DeviceId, Millis};
use uuid::Uuid;

use super::super::{Store, StoreError};

/// One recording as the upload report counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRecording {
    /// The recording.
    pub id: Uuid,
    /// The device that announced it.
    pub device_id: DeviceId,
    /// The agency the device was assigned to when the recording started, if any.
    pub agency: Option<String>,
    /// The officer it is counted under: as announced, else the device's officer when
    /// the recording started.
    pub officer: Option<String>,
    /// The case, as announced.
    pub case_number: Option<String>,
    /// End of the recording, gateway time.
    pub ended_at: Millis,
    /// Upload deadline, gateway time.
    pub deadline: Millis,
    /// When it became durable, if it did.
    pub stored_at: Option<Millis>,
    /// The device's clock could not be trusted for its times: its end and deadline
    /// count from its announcement (DOMAIN R2).
    pub clock_implausible: bool,
}

type Raw = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    bool,
);

impl Store {
    /// Every recording that ended at or after `from` (gateway time), for the upload
    /// report, by deadline.
    pub async fn recordings_for_report(
        &self,
        from: Millis,
    ) -> Result<Vec<ReportRecording>, StoreError> {
        let rows: Vec<Raw> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT r.id, r.device_id, a.name, COALESCE(r.officer, h.officer), \
                        r.case_number, r.ended_at, r.deadline, r.stored_at, \
                        r.clock_implausible \
                 FROM recordings r \
                 LEFT JOIN device_assignments h ON h.id = COALESCE( \
                     (SELECT x.id FROM device_assignments x \
                      WHERE x.device_id = r.device_id AND x.since <= r.started_at \
                      ORDER BY x.since DESC, x.id DESC LIMIT 1), \
                     (SELECT x.id FROM device_assignments x \
                      WHERE x.device_id = r.device_id AND x.since <= r.announced_at \
                      ORDER BY x.since DESC, x.id DESC LIMIT 1)) \
                 LEFT JOIN agencies a ON a.id = h.agency_id \
                 WHERE r.ended_at >= $1 \
                 ORDER BY r.deadline, r.id",
            )
            .bind(from)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(ReportRecording {
                    id: Uuid::parse_str(&r.0)
                        .map_err(|e| StoreError::corrupt("recording id", e))?,
                    device_id: DeviceId::new(r.1)
                        .map_err(|e| StoreError::corrupt("device id", e))?,
                    agency: r.2,
                    officer: r.3,
                    case_number: r.4,
                    ended_at: r.5,
                    deadline: r.6,
                    stored_at: r.7,
                    clock_implausible: r.8,
                })
            })
            .collect()
    }
}
