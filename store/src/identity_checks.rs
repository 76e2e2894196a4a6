//! Identity checks of officers' enforcement certificates (DOMAIN R4, 亮证执法): the
//! gateway answers online checks from the officer registry, and stores every check,
//! online or uploaded after an offline check, with which device, whom, where and when.
//!
//! A check's id is made on the device, so storing it is idempotent: a retried online
//! check or a re-uploaded offline one is stored once. For an offline check the store
//! also keeps what the registry said at the check's time, so a stale roster on a
//! terminal is visible to supervisors.

use protocol::deadline::ClockSkew;
use protocol::domain::Standing;
use protocol::message::{
    CheckOutcome, IdentityCheck, IdentityResult, IdentityVerdict, RosterEntry,
};
use protocol::{DeviceId, Millis};
use uuid::Uuid;

use super::certificate_history::{self, on_conn, status_at};
use super::rows::{OfficerRow, RawOfficer, convert_all};
use super::tx::{Db, TxConn};
use super::{Store, StoreError};

/// A stored identity check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityCheckRow {
    /// The device that made it.
    pub device: DeviceId,
    /// Made on the device.
    pub check_id: Uuid,
    /// The certificate number checked.
    pub certificate_number: String,
    /// True when the terminal answered from its synced roster.
    pub offline: bool,
    /// The answer the officer was given.
    pub verdict: IdentityVerdict,
    /// What the registry said at the check's (gateway) time.
    pub registry_verdict: IdentityVerdict,
    /// The roster version the answer came from.
    pub roster_version: u64,
    /// Where, in words.
    pub location: Option<String>,
    /// The case, if any.
    pub case_number: Option<String>,
    /// When, on the device's clock.
    pub checked_at: Millis,
    /// When, on the gateway's clock.
    pub checked_at_gateway: Millis,
    /// When the gateway stored it.
    pub received_at: Millis,
}

/// The roster entry of an officer, as the protocol carries it.
pub fn roster_entry(officer: &OfficerRow) -> RosterEntry {
    RosterEntry {
        certificate_number: officer.certificate_number.clone(),
        name: officer.name.clone(),
        unit: officer.unit.clone(),
        post: officer.post.clone(),
        category: officer.category.clone(),
        status: officer.certificate_status,
        version: officer.roster_version,
        auxiliary: officer.auxiliary,
        valid_until: officer.valid_until,
    }
}

fn parse_verdict(word: &str) -> Result<IdentityVerdict, StoreError> {
    IdentityVerdict::parse(word).ok_or_else(|| StoreError::corrupt("identity verdict", word))
}

/// A check about to be stored.
struct CheckRow<'a> {
    device: &'a DeviceId,
    check: &'a IdentityCheck,
    offline: bool,
    verdict: IdentityVerdict,
    registry_verdict: IdentityVerdict,
    roster_version: u64,
    checked_at_gateway: Millis,
}

async fn begin(db: &Db) -> Result<TxConn, StoreError> {
    Ok(match db {
        Db::Sqlite(pool) => TxConn::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        Db::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
    })
}

async fn commit(conn: TxConn) -> Result<(), StoreError> {
    match conn {
        TxConn::Sqlite(t) => t.commit().await?,
        TxConn::Postgres(t) => t.commit().await?,
    }
    Ok(())
}

/// Inserts a check unless its id was stored before; true when inserted now.
async fn insert_check(
    conn: &mut TxConn,
    row: &CheckRow<'_>,
    now: Millis,
) -> Result<bool, StoreError> {
    let inserted = on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO identity_checks (device_id, check_id, certificate_number, mode, \
             verdict, registry_verdict, roster_version, location, case_number, checked_at, \
             checked_at_gateway, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (device_id, check_id) DO NOTHING",
        )
        .bind(row.device.as_str())
        .bind(row.check.check_id.to_string())
        .bind(row.check.certificate_number.trim())
        .bind(if row.offline { "offline" } else { "online" })
        .bind(row.verdict.as_str())
        .bind(row.registry_verdict.as_str())
        .bind(row.roster_version as i64)
        .bind(row.check.location.as_deref())
        .bind(row.check.case_number.as_deref())
        .bind(row.check.checked_at)
        .bind(row.checked_at_gateway)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

impl Store {
    /// Answers an online check from the registry as it is now, and stores the check
    /// (once per check id) in the same transaction. Returns the answer and whether the
    /// check was stored now or before.
    pub async fn check_identity_online(
        &self,
        device: &DeviceId,
        check: &IdentityCheck,
        now: Millis,
    ) -> Result<(IdentityResult, CheckOutcome), StoreError> {
        let mut conn = begin(self.db()).await?;
        let number = check.certificate_number.trim();
        let (raw, version): (Option<RawOfficer>, i64) = on_conn!(&mut conn, c => {
            let raw = sqlx::query_as(
                "SELECT certificate_number, name, unit, post, category, certificate_status, \
                 auxiliary, agency_id, roster_version, updated_at, valid_until FROM officers \
                 WHERE certificate_number = $1",
            )
            .bind(number)
            .fetch_optional(&mut *c)
            .await?;
            let version = sqlx::query_scalar("SELECT version FROM roster_head WHERE id = 1")
                .fetch_one(&mut *c)
                .await?;
            (raw, version)
        });
        let officer = raw.map(OfficerRow::try_from).transpose()?;
        let roster_version =
            u64::try_from(version).map_err(|e| StoreError::corrupt("roster version", e))?;
        let verdict = IdentityVerdict::from(officer.as_ref().map(|o| o.standing_at(now)));
        let row = CheckRow {
            device,
            check,
            offline: false,
            verdict,
            registry_verdict: verdict,
            roster_version,
            checked_at_gateway: now,
        };
        let inserted = insert_check(&mut conn, &row, now).await?;
        commit(conn).await?;
        Ok((
            IdentityResult {
                check_id: check.check_id,
                verdict,
                officer: officer.as_ref().map(roster_entry),
                roster_version,
            },
            if inserted {
                CheckOutcome::Stored
            } else {
                CheckOutcome::Duplicate
            },
        ))
    }

    /// Stores checks a terminal made offline, in one transaction, each once per check
    /// id. A check without the offline answer is refused (an online check is asked
    /// with `CheckIdentity`, not uploaded).
    pub async fn store_offline_checks(
        &self,
        device: &DeviceId,
        checks: &[IdentityCheck],
        skew: ClockSkew,
        now: Millis,
    ) -> Result<Vec<(Uuid, CheckOutcome)>, StoreError> {
        let mut conn = begin(self.db()).await?;
        let numbers: Vec<&str> = checks.iter().map(|c| c.certificate_number.trim()).collect();
        let histories = certificate_history::histories(&mut conn, &numbers).await?;
        let mut acks = Vec::with_capacity(checks.len());
        for check in checks {
            let Some(answer) = check.offline else {
                acks.push((
                    check.check_id,
                    CheckOutcome::Rejected(
                        "an uploaded check must carry the answer the terminal's roster gave".into(),
                    ),
                ));
                continue;
            };
            let checked_at_gateway = skew.to_gateway_time(check.checked_at);
            let at_time: Option<Standing> = histories
                .get(check.certificate_number.trim())
                .and_then(|h| status_at(h, checked_at_gateway))
                .map(|s| s.standing_at(checked_at_gateway));
            let row = CheckRow {
                device,
                check,
                offline: true,
                verdict: answer.verdict,
                registry_verdict: IdentityVerdict::from(at_time),
                roster_version: answer.roster_version,
                checked_at_gateway,
            };
            let outcome = if insert_check(&mut conn, &row, now).await? {
                CheckOutcome::Stored
            } else {
                CheckOutcome::Duplicate
            };
            acks.push((check.check_id, outcome));
        }
        commit(conn).await?;
        Ok(acks)
    }

    /// Stored identity checks, oldest first, optionally of one device.
    pub async fn identity_checks(
        &self,
        device: Option<&DeviceId>,
    ) -> Result<Vec<IdentityCheckRow>, StoreError> {
        let raw: Vec<RawCheck> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT device_id, check_id, certificate_number, mode, verdict, \
                 registry_verdict, roster_version, location, case_number, checked_at, \
                 checked_at_gateway, received_at FROM identity_checks \
                 WHERE $1 IS NULL OR device_id = $1 \
                 ORDER BY received_at, checked_at_gateway, check_id",
            )
            .bind(device.map(|d| d.as_str()))
            .fetch_all(p)
            .await?
        });
        convert_all(raw)
    }
}

#[derive(sqlx::FromRow)]
struct RawCheck {
    device_id: String,
    check_id: String,
    certificate_number: String,
    mode: String,
    verdict: String,
    registry_verdict: String,
    roster_version: i64,
    location: Option<String>,
    case_number: Option<String>,
    checked_at: i64,
    checked_at_gateway: i64,
    received_at: i64,
}

impl TryFrom<RawCheck> for IdentityCheckRow {
    type Error = StoreError;
    fn try_from(r: RawCheck) -> Result<Self, StoreError> {
        let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt("identity check", e);
        Ok(IdentityCheckRow {
            device: DeviceId::new(r.device_id).map_err(|e| corrupt(&e))?,
            check_id: r.check_id.parse().map_err(|e| corrupt(&e))?,
            certificate_number: r.certificate_number,
            offline: r.mode == "offline",
            verdict: parse_verdict(&r.verdict)?,
            registry_verdict: parse_verdict(&r.registry_verdict)?,
            roster_version: u64::try_from(r.roster_version).map_err(|e| corrupt(&e))?,
            location: r.location,
            case_number: r.case_number,
            checked_at: r.checked_at,
            checked_at_gateway: r.checked_at_gateway,
            received_at: r.received_at,
        })
    }
}
