//! Who a device is issued to: assigning it to an agency and an officer, and the
//! history of its assignments, which the upload report reads so that a recording is
//! counted under the agency and officer of its recording time (issue 21).
//!
//! An assignment changes only what the operator names: a field is kept, set or
//! cleared ([`FieldChange`]), never cleared because it was left out. An officer who is
//! not certified now (withdrawn, revoked, expired, auxiliary) is refused unless the
//! operator forces it; the audit entry says it was forced and what the officer's
//! standing was.

use protocol::domain::Standing;
use protocol::{DeviceId, Millis};
use serde_json::json;

use super::audit::actions;
use super::rows::DeviceRow;
use super::tx::WriteTx;
use super::{Store, StoreError};

/// One field of an assignment: left as it is, set to a value, or cleared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldChange<T> {
    /// Left as it is (the operator did not name it).
    #[default]
    Keep,
    /// Set to this value.
    Set(T),
    /// Cleared explicitly.
    Clear,
}

impl<T> FieldChange<T> {
    /// The same change with the value mapped.
    fn map_set<U>(self, f: impl FnOnce(T) -> U) -> FieldChange<U> {
        match self {
            FieldChange::Keep => FieldChange::Keep,
            FieldChange::Set(v) => FieldChange::Set(f(v)),
            FieldChange::Clear => FieldChange::Clear,
        }
    }

    /// The value after the change, given the value before.
    fn apply(self, before: Option<T>) -> Option<T> {
        match self {
            FieldChange::Keep => before,
            FieldChange::Set(v) => Some(v),
            FieldChange::Clear => None,
        }
    }
}

/// What an operator asks of a device's assignment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssignmentChange<'a> {
    /// The owning agency, by name.
    pub agency: FieldChange<&'a str>,
    /// The officer, by certificate number.
    pub officer: FieldChange<&'a str>,
    /// Assign an officer who is not certified now (the reason says why).
    pub force: bool,
}

impl WriteTx {
    /// Appends the device's assignment as of `since` to its history.
    pub(crate) async fn append_assignment(
        &mut self,
        id: &DeviceId,
        agency_id: Option<i64>,
        officer: Option<&str>,
        since: Millis,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO device_assignments (device_id, agency_id, officer, since) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id.as_str())
            .bind(agency_id)
            .bind(officer)
            .bind(since)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// The officer's standing now, refusing an unknown officer, and one who is not
    /// certified unless `force`.
    async fn check_assignable(
        &mut self,
        number: &str,
        force: bool,
        now: Millis,
    ) -> Result<Standing, StoreError> {
        let Some(officer) = self.officer(number).await? else {
            return Err(StoreError::UnknownOfficer(number.to_owned()));
        };
        let standing = officer.standing_at(now);
        if standing != Standing::Certified && !force {
            return Err(StoreError::OfficerNotCertified {
                number: number.to_owned(),
                standing,
            });
        }
        Ok(standing)
    }
}

impl Store {
    /// Changes what `change` names of a device's assignment, keeping the rest.
    /// Assigning what is already there changes nothing and writes no audit entry.
    /// An officer who is not certified now is refused unless `change.force`.
    pub async fn assign_device(
        &self,
        id: &DeviceId,
        change: AssignmentChange<'_>,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<DeviceRow, StoreError> {
        let mut tx = self.write().await?;
        let before = tx.known_device(id).await?;
        let agency_id = match change.agency {
            FieldChange::Set(name) => tx.agency_id(Some(name)).await?,
            FieldChange::Keep => before.agency_id,
            FieldChange::Clear => None,
        };
        let standing = match change.officer {
            FieldChange::Set(number) => Some(tx.check_assignable(number, change.force, now).await?),
            _ => None,
        };
        let officer = change
            .officer
            .map_set(str::to_owned)
            .apply(before.assigned_officer.clone());
        if before.agency_id == agency_id && before.assigned_officer == officer {
            tx.rollback().await?;
            return Ok(before);
        }
        on_tx!(tx, c => {
            sqlx::query("UPDATE devices SET agency_id = $1, assigned_officer = $2 WHERE id = $3")
                .bind(agency_id)
                .bind(officer.as_deref())
                .bind(id.as_str())
                .execute(&mut *c)
                .await?;
        });
        tx.append_assignment(id, agency_id, officer.as_deref(), now)
            .await?;
        let agency = match agency_id {
            Some(agency_id) => tx.agency_name(agency_id).await?,
            None => None,
        };
        let mut detail = json!({ "agency": agency, "officer": officer, "reason": reason });
        if let Some(standing) = standing.filter(|s| *s != Standing::Certified) {
            detail["forced"] = json!(true);
            detail["officer_standing"] = json!(standing);
        }
        tx.append_audit(
            actor,
            actions::DEVICE_ASSIGNED,
            id.as_str(),
            &detail.to_string(),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(DeviceRow {
            agency_id,
            assigned_officer: officer,
            ..before
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_left_out_is_kept() {
        assert_eq!(FieldChange::Keep.apply(Some(1)), Some(1));
        assert_eq!(FieldChange::Set(2).apply(Some(1)), Some(2));
        assert_eq!(FieldChange::Clear.apply(Some(1)), None);
        assert_eq!(FieldChange::<u8>::Keep.apply(None), None);
    }
}
