//! What the upload report reads: every recording with the agency, officer and device
//! it is counted under. The counting itself is pure (the gateway's `reports::uploads`).

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
    /// The device's agency, if it is assigned to one.
    pub agency: Option<String>,
    /// The officer it is counted under: as announced, else the device's officer.
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
                "SELECT r.id, r.device_id, a.name, COALESCE(r.officer, d.assigned_officer), \
                        r.case_number, r.ended_at, r.deadline, r.stored_at, \
                        r.clock_implausible \
                 FROM recordings r \
                 JOIN devices d ON d.id = r.device_id \
                 LEFT JOIN agencies a ON a.id = d.agency_id \
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
