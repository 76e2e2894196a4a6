//! Agencies and their allocation class (DOMAIN R1): the unit that finance funds and
//! the allocation report counts against.

use protocol::Millis;
use protocol::domain::AgencyClass;
use serde_json::json;

use super::audit::actions;
use super::rows::{AgencyRow, NewAgency, RawAgency, convert_all, non_empty};
use super::tx::WriteTx;
use super::{Store, StoreError, only};

const SELECT_AGENCY: &str = "SELECT id, name, class, class_c_target, created_at FROM agencies";

/// Class C agencies get a target number of devices set by need; A and B get theirs
/// from the officer ratio and must not carry a stray target.
fn check_class_target(class: AgencyClass, target: Option<u32>) -> Result<(), StoreError> {
    match (class, target) {
        (AgencyClass::C, Some(_)) | (AgencyClass::A | AgencyClass::B, None) => Ok(()),
        _ => Err(StoreError::ClassTarget { class }),
    }
}

impl WriteTx {
    /// The agency with this name, inside the transaction.
    pub(crate) async fn agency_by_name(
        &mut self,
        name: &str,
    ) -> Result<Option<AgencyRow>, StoreError> {
        let raw: Option<RawAgency> = on_tx!(self, c => {
            sqlx::query_as(&format!("{SELECT_AGENCY} WHERE name = $1"))
                .bind(name)
                .fetch_optional(&mut *c)
                .await?
        });
        raw.map(AgencyRow::try_from).transpose()
    }

    /// The name of the agency with this id, inside the transaction.
    pub(crate) async fn agency_name(&mut self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(on_tx!(self, c => {
            sqlx::query_scalar("SELECT name FROM agencies WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        }))
    }

    /// The id of the named agency, or `UnknownAgency`; `None` passes through.
    pub(crate) async fn agency_id(
        &mut self,
        name: Option<&str>,
    ) -> Result<Option<i64>, StoreError> {
        let Some(name) = name else { return Ok(None) };
        match self.agency_by_name(name).await? {
            Some(agency) => Ok(Some(agency.id)),
            None => Err(StoreError::UnknownAgency(name.to_owned())),
        }
    }

    /// Creates an agency inside the transaction; its name must be new.
    async fn create_agency(
        &mut self,
        new: &NewAgency,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<AgencyRow, StoreError> {
        non_empty("agency name", &new.name)?;
        check_class_target(new.class, new.class_c_target)?;
        if self.agency_by_name(&new.name).await?.is_some() {
            return Err(StoreError::DuplicateAgency(new.name.clone()));
        }
        let raw: RawAgency = on_tx!(self, c => {
            sqlx::query_as(
                "INSERT INTO agencies (name, class, class_c_target, created_at) \
                 VALUES ($1, $2, $3, $4) \
                 RETURNING id, name, class, class_c_target, created_at",
            )
            .bind(&new.name)
            .bind(new.class.as_str())
            .bind(new.class_c_target.map(i64::from))
            .bind(now)
            .fetch_one(&mut *c)
            .await?
        });
        let agency = AgencyRow::try_from(raw)?;
        let detail = json!({
            "class": agency.class.as_str(),
            "class_c_target": agency.class_c_target,
            "reason": reason,
        });
        self.append_audit(
            actor,
            actions::AGENCY_CREATED,
            &agency.name,
            &detail.to_string(),
            now,
        )
        .await?;
        Ok(agency)
    }
}

impl Store {
    /// Creates an agency; its name must be new.
    pub async fn create_agency(
        &self,
        new: &NewAgency,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<AgencyRow, StoreError> {
        let created = self
            .create_agencies(std::slice::from_ref(new), actor, reason, now)
            .await?;
        Ok(only(created))
    }

    /// Creates every agency in one transaction: an error part-way (a name that another
    /// operator created meanwhile, a lost database) creates none of them.
    pub async fn create_agencies(
        &self,
        new: &[NewAgency],
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Vec<AgencyRow>, StoreError> {
        let mut tx = self.write().await?;
        let mut created = Vec::with_capacity(new.len());
        for agency in new {
            created.push(tx.create_agency(agency, actor, reason, now).await?);
        }
        self.commit(tx).await?;
        Ok(created)
    }

    /// Sets an agency's class (and, for class C, its target number of devices). Setting
    /// what is already there changes nothing and writes no audit entry.
    pub async fn set_agency_class(
        &self,
        name: &str,
        class: AgencyClass,
        class_c_target: Option<u32>,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<AgencyRow, StoreError> {
        check_class_target(class, class_c_target)?;
        let mut tx = self.write().await?;
        let Some(before) = tx.agency_by_name(name).await? else {
            return Err(StoreError::UnknownAgency(name.to_owned()));
        };
        if before.class == class && before.class_c_target == class_c_target {
            tx.rollback().await?;
            return Ok(before);
        }
        on_tx!(tx, c => {
            sqlx::query("UPDATE agencies SET class = $1, class_c_target = $2 WHERE id = $3")
                .bind(class.as_str())
                .bind(class_c_target.map(i64::from))
                .bind(before.id)
                .execute(&mut *c)
                .await?;
        });
        let detail = json!({
            "from": { "class": before.class.as_str(), "class_c_target": before.class_c_target },
            "to": { "class": class.as_str(), "class_c_target": class_c_target },
            "reason": reason,
        });
        tx.append_audit(
            actor,
            actions::AGENCY_CLASS_SET,
            name,
            &detail.to_string(),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(AgencyRow {
            class,
            class_c_target,
            ..before
        })
    }

    /// Every agency, by name.
    pub async fn list_agencies(&self) -> Result<Vec<AgencyRow>, StoreError> {
        let raw: Vec<RawAgency> = on_pool!(self.db(), p => {
            sqlx::query_as(&format!("{SELECT_AGENCY} ORDER BY name")).fetch_all(p).await?
        });
        convert_all(raw)
    }

    /// The agency with this name, if any.
    pub async fn agency_by_name(&self, name: &str) -> Result<Option<AgencyRow>, StoreError> {
        let raw: Option<RawAgency> = on_pool!(self.db(), p => {
            sqlx::query_as(&format!("{SELECT_AGENCY} WHERE name = $1"))
                .bind(name)
                .fetch_optional(p)
                .await?
        });
        raw.map(AgencyRow::try_from).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_targets() {
        assert!(check_class_target(AgencyClass::A, None).is_ok());
        assert!(check_class_target(AgencyClass::C, Some(4)).is_ok());
        assert!(matches!(
            check_class_target(AgencyClass::C, None),
            Err(StoreError::ClassTarget {
                class: AgencyClass::C
            })
        ));
        assert!(check_class_target(AgencyClass::B, Some(3)).is_err());
    }
}
