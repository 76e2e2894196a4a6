//! Officers and their enforcement certificates (DOMAIN R4), and the versioned roster
//! that terminals sync to check certificates offline.
//!
//! Every officer insert or change takes the next roster version (from the one-row
//! `roster_head`), so a terminal that holds version N asks for everything after N.
//! Versions are taken inside the registry write transaction, so they commit in order
//! on both backends and a delta never skips a change.

use protocol::Millis;
use protocol::domain::CertificateStatus;
use serde_json::{Value, json};

use super::audit::actions;
use super::ingest_rules::IngestRules;
use super::rows::{
    OfficerChange, OfficerRecord, OfficerRow, RawOfficer, RosterPage, convert_all, non_empty,
};
use super::tx::{ReadTx, WriteTx};
use super::{Store, StoreError, only};

const SELECT_OFFICER: &str = "SELECT certificate_number, name, unit, post, category, \
     certificate_status, auxiliary, agency_id, roster_version, updated_at, valid_until FROM officers";

impl WriteTx {
    /// The officer holding this certificate number, inside the transaction.
    pub(crate) async fn officer(&mut self, number: &str) -> Result<Option<OfficerRow>, StoreError> {
        let raw: Option<RawOfficer> = on_tx!(self, c => {
            sqlx::query_as(&format!("{SELECT_OFFICER} WHERE certificate_number = $1"))
                .bind(number)
                .fetch_optional(&mut *c)
                .await?
        });
        raw.map(OfficerRow::try_from).transpose()
    }

    /// Takes the next roster version.
    async fn next_roster_version(&mut self) -> Result<u64, StoreError> {
        let version: i64 = on_tx!(self, c => {
            sqlx::query_scalar(
                "UPDATE roster_head SET version = version + 1 WHERE id = 1 RETURNING version",
            )
            .fetch_one(&mut *c)
            .await?
        });
        u64::try_from(version).map_err(|e| StoreError::corrupt("roster version", e))
    }
}

/// When a certificate change takes effect: as given (it may be before it is entered,
/// DOMAIN R4), never in the future (the roster a terminal holds is the current state),
/// or now.
fn effective_time(given: Option<Millis>, now: Millis) -> Result<Millis, StoreError> {
    match given {
        Some(at) if at > now => Err(StoreError::EffectiveInFuture { at }),
        Some(at) => Ok(at),
        None => Ok(now),
    }
}

/// The audit detail of an officer change: every field that differs, `[from, to]`.
fn officer_diff(before: &OfficerRow, after: &OfficerRow) -> Value {
    let mut diff = serde_json::Map::new();
    let mut field = |name: &str, from: Value, to: Value| {
        if from != to {
            diff.insert(name.to_owned(), json!([from, to]));
        }
    };
    field("name", json!(before.name), json!(after.name));
    field("unit", json!(before.unit), json!(after.unit));
    field("post", json!(before.post), json!(after.post));
    field("category", json!(before.category), json!(after.category));
    field(
        "certificate_status",
        json!(before.certificate_status.as_str()),
        json!(after.certificate_status.as_str()),
    );
    field("auxiliary", json!(before.auxiliary), json!(after.auxiliary));
    field("agency_id", json!(before.agency_id), json!(after.agency_id));
    field(
        "valid_until",
        json!(before.valid_until),
        json!(after.valid_until),
    );
    Value::Object(diff)
}

impl WriteTx {
    /// Adds an officer or updates their roster entry inside the transaction, with the
    /// operator's reason (if any) in the audit entry. An identical record changes
    /// nothing (no roster version, no audit entry), so re-importing a roster is cheap.
    async fn upsert_officer(
        &mut self,
        record: &OfficerRecord,
        actor: &str,
        reason: Option<&str>,
        rules: &IngestRules,
        now: Millis,
    ) -> Result<OfficerChange, StoreError> {
        non_empty("certificate number", &record.certificate_number)?;
        non_empty("officer name", &record.name)?;
        if record.auxiliary && record.certificate_status == CertificateStatus::Valid {
            // 003: auxiliary staff may not hold an enforcement certificate.
            return Err(StoreError::AuxiliaryCertified(
                record.certificate_number.clone(),
            ));
        }
        let effective_at = effective_time(record.effective_at, now)?;
        let agency_id = self.agency_id(record.agency.as_deref()).await?;
        let before = self.officer(&record.certificate_number).await?;
        let mut after = OfficerRow {
            certificate_number: record.certificate_number.clone(),
            name: record.name.clone(),
            unit: record.unit.clone(),
            post: record.post.clone(),
            category: record.category.clone(),
            certificate_status: record.certificate_status,
            auxiliary: record.auxiliary,
            agency_id,
            roster_version: 0,
            updated_at: now,
            valid_until: record.valid_until,
        };
        if let Some(before) = &before {
            let unchanged = OfficerRow {
                roster_version: before.roster_version,
                updated_at: before.updated_at,
                ..after.clone()
            };
            if &unchanged == before {
                return Ok(OfficerChange::Unchanged(unchanged));
            }
        }
        after.roster_version = self.next_roster_version().await?;
        let sql = if before.is_some() {
            "UPDATE officers SET name = $2, unit = $3, post = $4, category = $5, \
             certificate_status = $6, auxiliary = $7, agency_id = $8, roster_version = $9, \
             updated_at = $10, valid_until = $11 WHERE certificate_number = $1"
        } else {
            "INSERT INTO officers (certificate_number, name, unit, post, category, \
             certificate_status, auxiliary, agency_id, roster_version, updated_at, valid_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        };
        on_tx!(self, c => {
            sqlx::query(sql)
                .bind(&after.certificate_number)
                .bind(&after.name)
                .bind(&after.unit)
                .bind(&after.post)
                .bind(&after.category)
                .bind(after.certificate_status.as_str())
                .bind(after.auxiliary)
                .bind(after.agency_id)
                .bind(after.roster_version as i64)
                .bind(after.updated_at)
                .bind(after.valid_until)
                .execute(&mut *c)
                .await?;
        });
        let start = self.history_start(&after.certificate_number).await?;
        self.append_certificate_history(&after, effective_at)
            .await?;
        let (action, mut detail) = match &before {
            Some(before) => (actions::OFFICER_UPDATED, officer_diff(before, &after)),
            None => (
                actions::OFFICER_CREATED,
                json!({
                    "name": after.name, "unit": after.unit, "post": after.post,
                    "category": after.category,
                    "certificate_status": after.certificate_status.as_str(),
                    "auxiliary": after.auxiliary, "agency": record.agency,
                    "valid_until": after.valid_until,
                }),
            ),
        };
        if let Value::Object(fields) = &mut detail {
            if let Some(reason) = reason {
                fields.insert("reason".to_owned(), json!(reason));
            }
            if effective_at != now {
                fields.insert("effective_at".to_owned(), json!(effective_at));
            }
        }
        let number = after.certificate_number.clone();
        self.append_audit(actor, action, &number, &detail.to_string(), now)
            .await?;
        let first_state = start.is_none_or(|s| effective_at < s);
        self.review_after_registry_change(&number, effective_at, first_state, rules, actor, now)
            .await?;
        Ok(match before {
            Some(_) => OfficerChange::Updated(after),
            None => OfficerChange::Inserted(after),
        })
    }
}

impl Store {
    /// Adds an officer or updates their roster entry; see [`Store::import_officers`].
    pub async fn upsert_officer(
        &self,
        record: &OfficerRecord,
        actor: &str,
        now: Millis,
    ) -> Result<OfficerChange, StoreError> {
        let changes = self
            .import_officers(std::slice::from_ref(record), actor, None, now)
            .await?;
        Ok(only(changes))
    }

    /// Adds or updates every officer of a roster in one transaction, so that an error
    /// part-way (a constraint, a lost database) applies none of them: an equipment
    /// manager's import is all or nothing. Each change takes its own roster version and
    /// audit entry (with the operator's reason); identical records change nothing.
    pub async fn import_officers(
        &self,
        records: &[OfficerRecord],
        actor: &str,
        reason: Option<&str>,
        now: Millis,
    ) -> Result<Vec<OfficerChange>, StoreError> {
        let rules = self.rules();
        let mut tx = self.write().await?;
        let mut changes = Vec::with_capacity(records.len());
        for record in records {
            changes.push(
                tx.upsert_officer(record, actor, reason, &rules, now)
                    .await?,
            );
        }
        self.commit(tx).await?;
        Ok(changes)
    }

    /// Withdraws, revokes or restores an officer's certificate, with the reason
    /// (retirement, transfer, dismissal, …) kept in the audit log. Takes a new roster
    /// version so terminals learn of it at their next sync.
    ///
    /// `effective_at` is when the change took effect (DOMAIN R4: it may be before it is
    /// entered); `None` means now. The two-officer rule judges records by it: the flags
    /// of records listing the certificate from then on are reviewed in the same
    /// transaction (`flag_reviews`).
    pub async fn set_certificate_status(
        &self,
        certificate_number: &str,
        status: CertificateStatus,
        effective_at: Option<Millis>,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<OfficerRow, StoreError> {
        let effective_at = effective_time(effective_at, now)?;
        let mut tx = self.write().await?;
        let Some(before) = tx.officer(certificate_number).await? else {
            return Err(StoreError::UnknownOfficer(certificate_number.to_owned()));
        };
        if before.auxiliary && status == CertificateStatus::Valid {
            return Err(StoreError::AuxiliaryCertified(
                certificate_number.to_owned(),
            ));
        }
        if before.certificate_status == status {
            return Err(StoreError::CertificateUnchanged {
                number: certificate_number.to_owned(),
                status,
            });
        }
        let version = tx.next_roster_version().await?;
        on_tx!(tx, c => {
            sqlx::query(
                "UPDATE officers SET certificate_status = $1, roster_version = $2, \
                 updated_at = $3 WHERE certificate_number = $4",
            )
            .bind(status.as_str())
            .bind(version as i64)
            .bind(now)
            .bind(certificate_number)
            .execute(&mut *c)
            .await?;
        });
        let after = OfficerRow {
            certificate_status: status,
            roster_version: version,
            updated_at: now,
            ..before.clone()
        };
        let start = tx.history_start(certificate_number).await?;
        tx.append_certificate_history(&after, effective_at).await?;
        let detail = json!({
            "from": before.certificate_status.as_str(),
            "to": status.as_str(),
            "effective_at": effective_at,
            "reason": reason,
        });
        tx.append_audit(
            actor,
            actions::CERTIFICATE_STATUS_SET,
            certificate_number,
            &detail.to_string(),
            now,
        )
        .await?;
        let first_state = start.is_none_or(|s| effective_at < s);
        let rules = self.rules();
        tx.review_after_registry_change(
            certificate_number,
            effective_at,
            first_state,
            &rules,
            actor,
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(after)
    }

    /// The officer holding this certificate number, if any.
    pub async fn officer(
        &self,
        certificate_number: &str,
    ) -> Result<Option<OfficerRow>, StoreError> {
        let raw: Option<RawOfficer> = on_pool!(self.db(), p => {
            sqlx::query_as(&format!("{SELECT_OFFICER} WHERE certificate_number = $1"))
                .bind(certificate_number)
                .fetch_optional(p)
                .await?
        });
        raw.map(OfficerRow::try_from).transpose()
    }

    /// Every officer, by certificate number.
    pub async fn list_officers(&self) -> Result<Vec<OfficerRow>, StoreError> {
        let raw: Vec<RawOfficer> = on_pool!(self.db(), p => {
            sqlx::query_as(&format!("{SELECT_OFFICER} ORDER BY certificate_number"))
                .fetch_all(p)
                .await?
        });
        convert_all(raw)
    }

    /// The current roster version: what a terminal that is up to date holds.
    pub async fn roster_version(&self) -> Result<u64, StoreError> {
        let version: i64 = on_pool!(self.db(), p => {
            sqlx::query_scalar("SELECT version FROM roster_head WHERE id = 1").fetch_one(p).await?
        });
        u64::try_from(version).map_err(|e| StoreError::corrupt("roster version", e))
    }

    /// The roster delta for a terminal that holds `version`: every officer whose entry
    /// changed after it (oldest change first) and the current version to ask from next
    /// time. `roster_since(0)` is the whole roster. Read in one snapshot.
    pub async fn roster_since(&self, version: u64) -> Result<(Vec<OfficerRow>, u64), StoreError> {
        let page = self.roster_page(version, None).await?;
        Ok((page.officers, page.to_version))
    }

    /// Like [`roster_since`](Self::roster_since), at most `limit` officers at a time (the
    /// protocol caps a delta): when `more` is set, ask again from `to_version`.
    pub async fn roster_page(
        &self,
        version: u64,
        limit: Option<u32>,
    ) -> Result<RosterPage, StoreError> {
        let after = i64::try_from(version).unwrap_or(i64::MAX);
        // One extra row tells whether more follow.
        let fetch = limit.map_or(i64::MAX, |l| i64::from(l) + 1);
        let mut tx = ReadTx::begin(self.db()).await?;
        let (raw, current): (Vec<RawOfficer>, i64) = on_tx!(tx, c => {
            let current = sqlx::query_scalar("SELECT version FROM roster_head WHERE id = 1")
                .fetch_one(&mut *c)
                .await?;
            let raw = sqlx::query_as(&format!(
                "{SELECT_OFFICER} WHERE roster_version > $1 ORDER BY roster_version LIMIT $2"
            ))
            .bind(after)
            .bind(fetch)
            .fetch_all(&mut *c)
            .await?;
            (raw, current)
        });
        tx.finish().await?;
        let mut officers: Vec<OfficerRow> = convert_all(raw)?;
        let current =
            u64::try_from(current).map_err(|e| StoreError::corrupt("roster version", e))?;
        let more = limit.is_some_and(|l| officers.len() > l as usize);
        if more {
            officers.truncate(limit.unwrap_or_default() as usize);
        }
        let to_version = match officers.last() {
            Some(last) if more => last.roster_version,
            _ => current,
        };
        Ok(RosterPage {
            officers,
            to_version,
            more,
        })
    }
}
