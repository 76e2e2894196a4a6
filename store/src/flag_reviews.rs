//! Two-officer flags over time (DOMAIN R4; issue 21, point 4): a record's flag is judged
//! again when what it was judged on changes — a certificate's history (an officer
//! entered late, a withdrawal dated back, an expiry moved) or a correction of the
//! record (DOMAIN R3: corrections are new records). Each raise and clear is a row of
//! the append-only `two_officer_flag_changes` log; a record's flag is its latest change.
//!
//! Bounded: a registry change reviews only the records that list the changed number
//! (the `field_record_officers` index) at or after the change's effective time, and
//! the records those correct; a correction reviews the record it corrects. Registry
//! changes review inside their own write transaction; a correction is queued by the
//! ingest transaction that stores it (`two_officer_reviews_due`) and reviewed by the
//! gateway's job in a write transaction, because only a write transaction holds the
//! audit chain's head and ingest must not wait for it. Every review change has an
//! audit entry.
//!
//! Locking (PostgreSQL): a review takes the advisory lock of every device whose
//! records it flags, after the audit head; ingest takes device locks and never the
//! audit head. So the writers of one device's changes run one at a time, the log's
//! ids grow in commit order per device, and a terminal that has seen change N misses
//! nothing by asking for the changes after N.

use std::collections::BTreeSet;

use protocol::two_officer::{self, NotCounted, TwoOfficerOutcome};
use protocol::{DeviceId, Millis};
use serde_json::json;

use super::audit::actions;
use super::certificate_history::{self, on_conn};
use super::ingest_rules::IngestRules;
use super::rows::convert_all;
use super::tx::lock_chains;
use super::tx::{TxConn, WriteTx};
use super::{Store, StoreError};

/// Queued reviews worked off in one write transaction at most, so a burst of
/// corrections never holds the registry's lock for long.
const REVIEWS_PER_TRANSACTION: i64 = 200;

/// The actor of the audit entries the review job writes.
pub const REVIEW_ACTOR: &str = "gateway";

/// What made the rule judge a record again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewCause {
    /// A certificate's history changed (an officer added, a status, expiry or
    /// effective time changed): the certificate number.
    Registry(String),
    /// A correction arrived: `<device>/<sequence>` of the correction.
    Correction(String),
    /// The upgrade that introduced reviews judged the flags raised before it.
    Upgrade,
}

impl ReviewCause {
    fn word(&self) -> &'static str {
        match self {
            ReviewCause::Registry(_) => "registry",
            ReviewCause::Correction(_) => "correction",
            ReviewCause::Upgrade => "upgrade",
        }
    }

    fn reference(&self) -> Option<&str> {
        match self {
            ReviewCause::Registry(r) | ReviewCause::Correction(r) => Some(r),
            ReviewCause::Upgrade => None,
        }
    }

    fn parse(word: &str, reference: Option<String>) -> Result<Self, StoreError> {
        match (word, reference) {
            ("registry", Some(r)) => Ok(ReviewCause::Registry(r)),
            ("correction", Some(r)) => Ok(ReviewCause::Correction(r)),
            ("upgrade", _) => Ok(ReviewCause::Upgrade),
            (other, _) => Err(StoreError::corrupt(
                "review cause",
                format!("unknown cause {other:?}"),
            )),
        }
    }
}

/// A raised flag's particulars: what the rule found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Distinct certified officers present.
    pub certified: u32,
    /// Certified officers required.
    pub required: u32,
    /// The listed numbers that did not count, and why.
    pub not_counted: Vec<NotCounted>,
}

/// What a review writes for one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Raise the flag (or raise it again with other particulars).
    Raise(Violation),
    /// Clear the flag: the rule is met (`certified` officers count).
    Clear {
        /// Distinct certified officers present now (0 when the kind needs none).
        certified: u32,
        /// Certified officers required (0 when the kind, as corrected, needs none).
        required: u32,
    },
}

/// Pure: what to write given the flag in force (`None`: no flag) and the rule's outcome
/// now, `required` officers being the policy's figure. `None` when nothing changes, so
/// a review that finds what is stored writes nothing and a repeated review is harmless.
pub fn decide(
    current: Option<&Violation>,
    outcome: TwoOfficerOutcome,
    required: u32,
) -> Option<Decision> {
    match (current, outcome) {
        (
            current,
            TwoOfficerOutcome::Violated {
                certified,
                required,
                not_counted,
            },
        ) => {
            let now = Violation {
                certified,
                required,
                not_counted,
            };
            (current != Some(&now)).then_some(Decision::Raise(now))
        }
        (None, _) => None,
        (Some(_), TwoOfficerOutcome::Satisfied { certified }) => Some(Decision::Clear {
            certified,
            required,
        }),
        (Some(_), TwoOfficerOutcome::NotRequired) => Some(Decision::Clear {
            certified: 0,
            required: 0,
        }),
    }
}

/// One raise or clear of a record's two-officer flag, as the log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwoOfficerFlagChange {
    /// Its place in the log (a device's changes grow in commit order).
    pub id: i64,
    /// The device whose chain holds the record.
    pub device: DeviceId,
    /// The record's sequence number.
    pub sequence: u64,
    /// The action kind judged (a correction's, when the record was corrected).
    pub action_kind: String,
    /// True when the flag was raised, false when it was cleared.
    pub raised: bool,
    /// Distinct certified officers present.
    pub certified: u32,
    /// Certified officers required.
    pub required: u32,
    /// The listed numbers that did not count, and why.
    pub not_counted: Vec<NotCounted>,
    /// `ingest`, `registry`, `correction` or `upgrade`.
    pub cause: String,
    /// The certificate number (registry) or `<device>/<sequence>` (correction).
    pub cause_ref: Option<String>,
    /// When (gateway time).
    pub at: Millis,
}

#[derive(sqlx::FromRow)]
struct RawChange {
    id: i64,
    device_id: String,
    sequence: i64,
    action_kind: String,
    raised: bool,
    certified: i64,
    required: i64,
    not_counted: String,
    cause: String,
    cause_ref: Option<String>,
    at: i64,
}

impl TryFrom<RawChange> for TwoOfficerFlagChange {
    type Error = StoreError;
    fn try_from(r: RawChange) -> Result<Self, StoreError> {
        let corrupt = |e: String| StoreError::corrupt("two-officer flag change", e);
        Ok(TwoOfficerFlagChange {
            id: r.id,
            device: DeviceId::new(r.device_id).map_err(|e| corrupt(e.to_string()))?,
            sequence: u64::try_from(r.sequence).map_err(|e| corrupt(e.to_string()))?,
            action_kind: r.action_kind,
            raised: r.raised,
            certified: u32::try_from(r.certified).map_err(|e| corrupt(e.to_string()))?,
            required: u32::try_from(r.required).map_err(|e| corrupt(e.to_string()))?,
            not_counted: serde_json::from_str(&r.not_counted)
                .map_err(|e| corrupt(e.to_string()))?,
            cause: r.cause,
            cause_ref: r.cause_ref,
            at: r.at,
        })
    }
}

const SELECT_CHANGE: &str = "SELECT id, device_id, sequence, action_kind, raised, certified, \
     required, not_counted, cause, cause_ref, at FROM two_officer_flag_changes";

/// A record as the rule judges it: its time, and the kind and officers of its latest
/// correction if it has one (a correction restates the record), else its own.
struct Judged {
    action_kind: String,
    officers: Vec<String>,
    at: Millis,
}

/// A stored record, by device and sequence number.
type RecordKey = (String, i64);

/// Appends one change to the log (ingest's raises and reviews' raises and clears).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn append_change(
    conn: &mut TxConn,
    (device, sequence): (&str, i64),
    action_kind: &str,
    raised: bool,
    certified: u32,
    required: u32,
    not_counted: &str,
    cause: (&str, Option<&str>),
    now: Millis,
) -> Result<(), StoreError> {
    on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO two_officer_flag_changes (device_id, sequence, action_kind, raised, \
             certified, required, not_counted, cause, cause_ref, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(device)
        .bind(sequence)
        .bind(action_kind)
        .bind(raised)
        .bind(i64::from(certified))
        .bind(i64::from(required))
        .bind(not_counted)
        .bind(cause.0)
        .bind(cause.1)
        .bind(now)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

async fn judged(
    conn: &mut TxConn,
    (device, sequence): &RecordKey,
) -> Result<Option<Judged>, StoreError> {
    let own: Option<(String, String, i64)> = on_conn!(conn, c => {
        sqlx::query_as(
            "SELECT action_kind, officers, made_at_gateway FROM field_records \
             WHERE device_id = $1 AND sequence = $2",
        )
        .bind(device)
        .bind(sequence)
        .fetch_optional(&mut *c)
        .await?
    });
    let Some((kind, officers, at)) = own else {
        return Ok(None);
    };
    let correction: Option<(String, String)> = on_conn!(conn, c => {
        sqlx::query_as(
            "SELECT action_kind, officers FROM field_records \
             WHERE device_id = $1 AND corrects = $2 ORDER BY sequence DESC LIMIT 1",
        )
        .bind(device)
        .bind(sequence)
        .fetch_optional(&mut *c)
        .await?
    });
    let (action_kind, officers) = correction.unwrap_or((kind, officers));
    let officers: Vec<String> =
        serde_json::from_str(&officers).map_err(|e| StoreError::corrupt("officers", e))?;
    Ok(Some(Judged {
        action_kind,
        officers,
        at,
    }))
}

/// The flag in force on a record (its latest change, if raised).
async fn flag_in_force(
    conn: &mut TxConn,
    (device, sequence): &RecordKey,
) -> Result<Option<Violation>, StoreError> {
    let raw: Option<RawChange> = on_conn!(conn, c => {
        sqlx::query_as(&format!(
            "{SELECT_CHANGE} WHERE device_id = $1 AND sequence = $2 ORDER BY id DESC LIMIT 1"
        ))
        .bind(device)
        .bind(sequence)
        .fetch_optional(&mut *c)
        .await?
    });
    let Some(change) = raw.map(TwoOfficerFlagChange::try_from).transpose()? else {
        return Ok(None);
    };
    Ok(change.raised.then_some(Violation {
        certified: change.certified,
        required: change.required,
        not_counted: change.not_counted,
    }))
}

impl WriteTx {
    /// The records a change of `number`'s history effective from `since` may judge
    /// differently: those listing it at or after `since` (`None`: at any time, because
    /// the change became the certificate's first state), and the records those correct.
    pub(crate) async fn records_listing(
        &mut self,
        number: &str,
        since: Option<Millis>,
    ) -> Result<Vec<RecordKey>, StoreError> {
        let rows: Vec<(String, i64, Option<i64>)> = on_tx!(self, c => {
            sqlx::query_as(
                "SELECT o.device_id, o.sequence, r.corrects FROM field_record_officers o \
                 JOIN field_records r ON r.device_id = o.device_id AND r.sequence = o.sequence \
                 WHERE o.certificate_number = $1 AND o.made_at_gateway >= $2",
            )
            .bind(number.trim())
            .bind(since.unwrap_or(i64::MIN))
            .fetch_all(&mut *c)
            .await?
        });
        let mut out = BTreeSet::new();
        for (device, sequence, corrects) in rows {
            if let Some(corrected) = corrects {
                out.insert((device.clone(), corrected));
            }
            out.insert((device, sequence));
        }
        Ok(out.into_iter().collect())
    }

    /// The earliest time from which `number`'s history applies (its first state's), or
    /// `None` for a number with no history.
    pub(crate) async fn history_start(
        &mut self,
        number: &str,
    ) -> Result<Option<Millis>, StoreError> {
        let first: Option<i64> = on_tx!(self, c => {
            sqlx::query_scalar("SELECT MIN(since) FROM certificate_history WHERE certificate_number = $1")
                .bind(number)
                .fetch_one(&mut *c)
                .await?
        });
        Ok(first)
    }

    /// Judges `records` again under `rules` and writes a change (with its audit entry)
    /// for each whose flag the judgement changes. Returns the changes written.
    pub(crate) async fn review_two_officer(
        &mut self,
        records: &[RecordKey],
        cause: &ReviewCause,
        rules: &IngestRules,
        actor: &str,
        now: Millis,
    ) -> Result<Vec<Decision>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let devices = records.iter().map(|(d, _)| d.as_str());
        lock_chains(&mut self.conn, devices).await?;
        let mut written = Vec::new();
        for key in records {
            let Some(record) = judged(&mut self.conn, key).await? else {
                continue;
            };
            let needs = rules.action_kinds.needs_two_officers(&record.action_kind);
            let outcome = if needs {
                let numbers: Vec<&str> = record.officers.iter().map(|o| o.trim()).collect();
                let histories = certificate_history::histories(&mut self.conn, &numbers).await?;
                let present =
                    certificate_history::presence(&histories, &record.officers, record.at);
                two_officer::check(true, &present, &rules.two_officer)
            } else {
                TwoOfficerOutcome::NotRequired
            };
            let current = flag_in_force(&mut self.conn, key).await?;
            let required = rules.two_officer.min_officers;
            let Some(decision) = decide(current.as_ref(), outcome, required) else {
                continue;
            };
            self.write_decision(key, &record.action_kind, &decision, cause, actor, now)
                .await?;
            written.push(decision);
        }
        Ok(written)
    }

    async fn write_decision(
        &mut self,
        key: &RecordKey,
        action_kind: &str,
        decision: &Decision,
        cause: &ReviewCause,
        actor: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        let (raised, certified, required, not_counted) = match decision {
            Decision::Raise(v) => (true, v.certified, v.required, v.not_counted.clone()),
            Decision::Clear {
                certified,
                required,
            } => (false, *certified, *required, Vec::new()),
        };
        let not_counted_json = serde_json::to_string(&not_counted)
            .map_err(|e| StoreError::corrupt("two-officer outcome", e))?;
        append_change(
            &mut self.conn,
            (key.0.as_str(), key.1),
            action_kind,
            raised,
            certified,
            required,
            &not_counted_json,
            (cause.word(), cause.reference()),
            now,
        )
        .await?;
        let action = if raised {
            actions::TWO_OFFICER_FLAG_RAISED
        } else {
            actions::TWO_OFFICER_FLAG_CLEARED
        };
        let detail = json!({
            "cause": cause.word(),
            "because": cause.reference(),
            "action_kind": action_kind,
            "certified": certified,
            "required": required,
            "not_counted": not_counted.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        let subject = format!("{}/{}", key.0, key.1);
        self.append_audit(actor, action, &subject, &detail.to_string(), now)
            .await?;
        Ok(())
    }

    /// Reviews the records whose flags a change of `number`'s history, effective from
    /// `effective_at`, may change (called by every officer insert and change, after its
    /// history entry is written).
    pub(crate) async fn review_after_registry_change(
        &mut self,
        number: &str,
        effective_at: Millis,
        first_state: bool,
        rules: &IngestRules,
        actor: &str,
        now: Millis,
    ) -> Result<Vec<Decision>, StoreError> {
        // A change that became the certificate's first state applies before it too
        // (`certificate_history::status_at`).
        let since = (!first_state).then_some(effective_at);
        let records = self.records_listing(number, since).await?;
        self.review_two_officer(
            &records,
            &ReviewCause::Registry(number.to_owned()),
            rules,
            actor,
            now,
        )
        .await
    }
}

impl Store {
    /// Works off queued reviews (corrections that arrived, the upgrade's review of old
    /// flags), at most a bounded number per transaction, each with its audit entries;
    /// returns how many queued reviews were done. The gateway's review job calls it
    /// until it returns 0.
    pub async fn review_queued_two_officer_flags(&self, now: Millis) -> Result<usize, StoreError> {
        let rules = self.rules();
        let mut tx = self.write().await?;
        let due: Vec<(String, i64, String, String)> = on_tx!(tx, c => {
            sqlx::query_as(
                "SELECT device_id, sequence, cause, cause_ref FROM two_officer_reviews_due \
                 ORDER BY device_id, sequence, cause_ref LIMIT $1",
            )
            .bind(REVIEWS_PER_TRANSACTION)
            .fetch_all(&mut *c)
            .await?
        });
        for (device, sequence, cause, cause_ref) in &due {
            let cause = ReviewCause::parse(cause, Some(cause_ref.clone()))?;
            let key = (device.clone(), *sequence);
            tx.review_two_officer(
                std::slice::from_ref(&key),
                &cause,
                &rules,
                REVIEW_ACTOR,
                now,
            )
            .await?;
            on_tx!(tx, c => {
                sqlx::query(
                    "DELETE FROM two_officer_reviews_due \
                     WHERE device_id = $1 AND sequence = $2 AND cause_ref = $3",
                )
                .bind(device)
                .bind(sequence)
                .bind(cause_ref)
                .execute(&mut *c)
                .await?;
            });
        }
        self.commit(tx).await?;
        Ok(due.len())
    }

    /// How many reviews are queued (for tests and metrics).
    pub async fn queued_two_officer_reviews(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self.db(), p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM two_officer_reviews_due").fetch_one(p).await?
        });
        Ok(n as u64)
    }

    /// The flag changes on `device`'s records after change `after` (0: from the
    /// start), oldest first, at most `limit`: what a terminal has not heard of yet.
    pub async fn two_officer_flag_changes(
        &self,
        device: &DeviceId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<TwoOfficerFlagChange>, StoreError> {
        let raw: Vec<RawChange> = on_pool!(self.db(), p => {
            sqlx::query_as(&format!(
                "{SELECT_CHANGE} WHERE device_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            ))
            .bind(device.as_str())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        convert_all(raw)
    }

    /// Every change of one record's flag, oldest first (the case view's history).
    pub async fn two_officer_flag_history(
        &self,
        device: &DeviceId,
        sequence: u64,
    ) -> Result<Vec<TwoOfficerFlagChange>, StoreError> {
        let raw: Vec<RawChange> = on_pool!(self.db(), p => {
            sqlx::query_as(&format!(
                "{SELECT_CHANGE} WHERE device_id = $1 AND sequence = $2 ORDER BY id"
            ))
            .bind(device.as_str())
            .bind(sequence as i64)
            .fetch_all(p)
            .await?
        });
        convert_all(raw)
    }

    /// The corrections stored in `device`'s chain: `(correction, corrected)` sequence
    /// numbers, so a view links each record to its corrections and back.
    pub async fn corrections_in_chain(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let rows: Vec<(i64, i64)> = on_pool!(self.db(), p => {
            sqlx::query_as(
                "SELECT sequence, corrects FROM field_records \
                 WHERE device_id = $1 AND corrects IS NOT NULL ORDER BY sequence",
            )
            .bind(device.as_str())
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(s, c)| (s as u64, c as u64))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use protocol::two_officer::NotCountedReason;

    use super::*;

    fn violated(certified: u32) -> TwoOfficerOutcome {
        TwoOfficerOutcome::Violated {
            certified,
            required: 2,
            not_counted: vec![NotCounted {
                certificate_number: "ZF-9".into(),
                reason: NotCountedReason::UnknownCertificate,
            }],
        }
    }

    fn violation(certified: u32) -> Violation {
        match violated(certified) {
            TwoOfficerOutcome::Violated {
                certified,
                required,
                not_counted,
            } => Violation {
                certified,
                required,
                not_counted,
            },
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_review_that_finds_what_is_stored_writes_nothing() {
        assert_eq!(
            decide(None, TwoOfficerOutcome::Satisfied { certified: 2 }, 2),
            None
        );
        assert_eq!(decide(None, TwoOfficerOutcome::NotRequired, 2), None);
        assert_eq!(decide(Some(&violation(1)), violated(1), 2), None);
    }

    #[test]
    fn a_met_rule_clears_and_a_broken_one_raises() {
        assert_eq!(
            decide(
                Some(&violation(1)),
                TwoOfficerOutcome::Satisfied { certified: 2 },
                2
            ),
            Some(Decision::Clear {
                certified: 2,
                required: 2
            })
        );
        assert_eq!(
            decide(Some(&violation(1)), TwoOfficerOutcome::NotRequired, 2),
            Some(Decision::Clear {
                certified: 0,
                required: 0
            })
        );
        assert_eq!(
            decide(None, violated(1), 2),
            Some(Decision::Raise(violation(1)))
        );
    }

    #[test]
    fn other_particulars_raise_the_flag_again() {
        assert_eq!(
            decide(Some(&violation(1)), violated(0), 2),
            Some(Decision::Raise(violation(0)))
        );
    }
}
