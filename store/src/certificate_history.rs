//! The history of officers' certificate states: which status each certificate had
//! from when (gateway time), so that the two-officer rule (DOMAIN R4) and offline
//! identity checks are judged by the certificates as they were at the time of the
//! action, not as they are when the record arrives.
//!
//! Every officer insert or change appends the officer's new state (in the same write
//! transaction as the change); the pure [`status_at`] picks the state in force at an
//! instant.

use std::collections::{BTreeMap, BTreeSet};

use protocol::Millis;
use protocol::domain::CertificateStatus;
use protocol::domain::Standing;
use protocol::two_officer::OfficerPresence;

use super::StoreError;
use super::rows::OfficerRow;
use super::sql::{in_bound_list, json_list};
use super::tx::{TxConn, WriteTx};

/// Runs the same query code on an open transaction of either backend, given as a
/// `&mut TxConn` (for helpers shared by several transaction kinds).
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::tx::TxConn::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::tx::TxConn::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_conn;

/// One state of a certificate, in force from `since` until the next state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertificateState {
    /// The certificate's status.
    pub status: CertificateStatus,
    /// Auxiliary staff hold no enforcement certificate of their own (DOMAIN R1, 003).
    pub auxiliary: bool,
    /// From when (gateway time).
    pub since: Millis,
    /// The roster version of the change (orders changes made in the same millisecond).
    pub roster_version: u64,
    /// When the certificate expires, if it has an expiry date.
    pub valid_until: Option<Millis>,
}

impl CertificateState {
    /// What the certificate was worth at `at` under this state: auxiliary staff never
    /// count, an expired certificate counts as not certified (DOMAIN R4).
    pub fn standing_at(&self, at: Millis) -> Standing {
        Standing::at(self.status, self.auxiliary, self.valid_until, at)
    }
}

/// The state in force at `at`, from a certificate's history sorted by
/// `(since, roster_version)`.
///
/// Before the first known state, the first state counts: the registry records
/// certificates that were issued before anyone typed them in, so an officer entered
/// late is not treated as uncertified, and one first entered as withdrawn is not
/// treated as valid before that.
pub fn status_at(history: &[CertificateState], at: Millis) -> Option<CertificateState> {
    history
        .iter()
        .rev()
        .find(|s| s.since <= at)
        .or_else(|| history.first())
        .copied()
}

/// The officers listed on a record as the two-officer rule sees them at gateway time
/// `at`: each number's standing under the state in force then (unknown numbers have
/// none).
pub(crate) fn presence(
    histories: &BTreeMap<String, Vec<CertificateState>>,
    officers: &[String],
    at: Millis,
) -> Vec<OfficerPresence> {
    officers
        .iter()
        .map(|number| OfficerPresence {
            certificate_number: number.clone(),
            standing: histories
                .get(number.trim())
                .and_then(|h| status_at(h, at))
                .map(|s| s.standing_at(at)),
        })
        .collect()
}

/// Reads the histories of `numbers` (unknown numbers are simply absent), each sorted
/// for [`status_at`], in ONE statement whatever their count: a record may name 16
/// officers and a push carry 256 records, and a statement per number let one device's
/// push hold the group commit (and every other device's ack) for thousands of round
/// trips.
pub(crate) async fn histories(
    conn: &mut TxConn,
    numbers: &[&str],
) -> Result<BTreeMap<String, Vec<CertificateState>>, StoreError> {
    let distinct: Vec<&str> = numbers
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out: BTreeMap<String, Vec<CertificateState>> = BTreeMap::new();
    if distinct.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT certificate_number, status, auxiliary, since, roster_version, valid_until \
         FROM certificate_history WHERE {} \
         ORDER BY certificate_number, since, roster_version",
        in_bound_list("certificate_number", 1, conn.placeholders())
    );
    type Row = (String, String, bool, i64, i64, Option<i64>);
    let rows: Vec<Row> = match conn {
        TxConn::Sqlite(t) => {
            sqlx::query_as(&sql)
                .bind(json_list(&distinct))
                .fetch_all(&mut **t)
                .await?
        }
        TxConn::Postgres(t) => {
            sqlx::query_as(&sql)
                .bind(&distinct)
                .fetch_all(&mut **t)
                .await?
        }
    };
    for (number, status, auxiliary, since, version, valid_until) in rows {
        let state = CertificateState {
            status: status
                .parse()
                .map_err(|e| StoreError::corrupt("certificate history", e))?,
            auxiliary,
            since,
            roster_version: u64::try_from(version)
                .map_err(|e| StoreError::corrupt("certificate history", e))?,
            valid_until,
        };
        out.entry(number).or_default().push(state);
    }
    Ok(out)
}

impl WriteTx {
    /// Appends an officer's new state to the certificate history (called by every
    /// officer insert and change, inside its write transaction), in force from
    /// `effective_at` (which may be before it was entered, `officer.updated_at`).
    pub(crate) async fn append_certificate_history(
        &mut self,
        officer: &OfficerRow,
        effective_at: Millis,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO certificate_history \
                 (certificate_number, roster_version, status, auxiliary, since, valid_until, \
                 entered_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&officer.certificate_number)
            .bind(officer.roster_version as i64)
            .bind(officer.certificate_status.as_str())
            .bind(officer.auxiliary)
            .bind(effective_at)
            .bind(officer.valid_until)
            .bind(officer.updated_at)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertificateStatus::*;

    fn state(status: CertificateStatus, since: Millis, version: u64) -> CertificateState {
        CertificateState {
            status,
            auxiliary: false,
            since,
            roster_version: version,
            valid_until: None,
        }
    }

    #[test]
    fn the_state_in_force_at_an_instant() {
        let history = [state(Valid, 100, 1), state(Withdrawn, 200, 2)];
        assert_eq!(status_at(&history, 150).unwrap().status, Valid);
        assert_eq!(status_at(&history, 200).unwrap().status, Withdrawn);
        assert_eq!(status_at(&history, 10_000).unwrap().status, Withdrawn);
    }

    #[test]
    fn before_the_first_entry_the_first_state_counts() {
        let history = [state(Withdrawn, 100, 1), state(Valid, 200, 2)];
        assert_eq!(status_at(&history, 50).unwrap().status, Withdrawn);
        assert_eq!(status_at(&[], 50), None);
    }

    #[test]
    fn changes_in_one_millisecond_are_ordered_by_version() {
        let history = [state(Valid, 100, 1), state(Revoked, 100, 2)];
        assert_eq!(status_at(&history, 100).unwrap().status, Revoked);
    }
}
