//! Identity checks made offline: answered from the roster cache, queued here, and
//! uploaded like records (one ack each; stored or duplicate removes one, a refusal is
//! kept with its reason). Checks are independent of each other, so a refused one
//! never holds back the rest.

use protocol::message::{CheckOutcome, IdentityCheck, IdentityVerdict, OfflineAnswer};
use uuid::Uuid;

use super::state::{add, keys};
use super::{Outbox, StoreError};

/// What happened to an uploaded batch of checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckAckSummary {
    /// Stored now or before.
    pub durable: usize,
    /// Refused (kept locally).
    pub rejected: usize,
    /// Uploaded but not answered (still queued).
    pub unanswered: usize,
}

type Row = (
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    String,
    i64,
);

/// One stable word for a verdict (in the store and on screen).
pub fn verdict_word(verdict: IdentityVerdict) -> &'static str {
    verdict.as_str()
}

fn parse_verdict(word: &str) -> Result<IdentityVerdict, StoreError> {
    IdentityVerdict::parse(word).ok_or_else(|| StoreError::corrupt("check verdict", word))
}

impl Outbox {
    /// Queues a check answered offline. Durable when it returns.
    pub async fn queue_check(&self, check: &IdentityCheck) -> Result<(), StoreError> {
        let answer = check.offline.unwrap_or(OfflineAnswer {
            verdict: IdentityVerdict::Unknown,
            roster_version: 0,
        });
        sqlx::query(
            "INSERT INTO outbox_checks
                 (check_id, certificate_number, checked_at, location, case_number, verdict,
                  roster_version, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued')
             ON CONFLICT (check_id) DO NOTHING",
        )
        .bind(check.check_id.to_string())
        .bind(&check.certificate_number)
        .bind(check.checked_at)
        .bind(&check.location)
        .bind(&check.case_number)
        .bind(verdict_word(answer.verdict))
        .bind(i64::try_from(answer.roster_version).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The oldest queued checks, at most `limit`.
    pub async fn queued_checks(&self, limit: u32) -> Result<Vec<IdentityCheck>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT check_id, certificate_number, checked_at, location, case_number, verdict,
                    roster_version
             FROM outbox_checks WHERE state = 'queued' ORDER BY checked_at, check_id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(
                |(id, number, at, location, case_number, verdict, version)| {
                    Ok(IdentityCheck {
                        check_id: Uuid::parse_str(&id)
                            .map_err(|e| StoreError::corrupt("check id", e))?,
                        certificate_number: number,
                        checked_at: at,
                        location,
                        case_number,
                        offline: Some(OfflineAnswer {
                            verdict: parse_verdict(&verdict)?,
                            roster_version: version.max(0) as u64,
                        }),
                    })
                },
            )
            .collect()
    }

    /// How many checks wait for upload.
    pub async fn queued_check_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox_checks WHERE state = 'queued'")
                .fetch_one(self.pool())
                .await?;
        Ok(n as u64)
    }

    /// How many checks the gateway refused (kept locally).
    pub async fn rejected_check_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox_checks WHERE state = 'rejected'")
                .fetch_one(self.pool())
                .await?;
        Ok(n as u64)
    }

    /// Applies the acks of an upload in one transaction. Only checks that were sent
    /// (`sent`) are touched.
    pub async fn apply_check_acks(
        &self,
        sent: &[Uuid],
        acks: &[(Uuid, CheckOutcome)],
    ) -> Result<CheckAckSummary, StoreError> {
        let mut summary = CheckAckSummary::default();
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        for id in sent {
            let Some((_, outcome)) = acks.iter().find(|(a, _)| a == id) else {
                summary.unanswered += 1;
                continue;
            };
            match outcome {
                CheckOutcome::Stored | CheckOutcome::Duplicate => {
                    sqlx::query("DELETE FROM outbox_checks WHERE check_id = $1")
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    summary.durable += 1;
                }
                CheckOutcome::Rejected(reason) => {
                    sqlx::query(
                        "UPDATE outbox_checks SET state = 'rejected', reason = $2
                         WHERE check_id = $1",
                    )
                    .bind(id.to_string())
                    .bind(reason)
                    .execute(&mut *tx)
                    .await?;
                    summary.rejected += 1;
                }
            }
        }
        add(&mut tx, keys::CHECKS_UPLOADED, summary.durable as i64).await?;
        tx.commit().await?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::test_util::outbox;

    fn check(n: i64, verdict: IdentityVerdict) -> IdentityCheck {
        IdentityCheck {
            check_id: Uuid::new_v4(),
            certificate_number: format!("A-{n}"),
            checked_at: 1000 + n,
            location: Some("Main St".into()),
            case_number: None,
            offline: Some(OfflineAnswer {
                verdict,
                roster_version: 4,
            }),
        }
    }

    #[tokio::test]
    async fn queued_checks_round_trip_and_leave_on_durable_acks() {
        let (_dir, outbox) = outbox().await;
        let a = check(1, IdentityVerdict::Withdrawn);
        let b = check(2, IdentityVerdict::Valid);
        let c = check(3, IdentityVerdict::Unknown);
        for x in [&a, &b, &c] {
            outbox.queue_check(x).await.unwrap();
        }
        outbox.queue_check(&a).await.unwrap(); // idempotent
        let queued = outbox.queued_checks(10).await.unwrap();
        assert_eq!(queued, vec![a.clone(), b.clone(), c.clone()]);
        let summary = outbox
            .apply_check_acks(
                &[a.check_id, b.check_id, c.check_id],
                &[
                    (a.check_id, CheckOutcome::Stored),
                    (b.check_id, CheckOutcome::Rejected("bad number".into())),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            summary,
            CheckAckSummary {
                durable: 1,
                rejected: 1,
                unanswered: 1
            }
        );
        assert_eq!(outbox.queued_checks(10).await.unwrap(), vec![c]);
        assert_eq!(outbox.rejected_check_count().await.unwrap(), 1);
        assert_eq!(outbox.state_i64(keys::CHECKS_UPLOADED).await.unwrap(), 1);
    }
}
