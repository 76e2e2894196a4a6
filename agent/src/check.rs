//! Identity checks of officers' enforcement certificates (DOMAIN R4): online against
//! the gateway's registry when it is reachable, otherwise offline against the synced
//! roster, queued and uploaded at the next sync so the gateway stores every check.

use protocol::message::{IdentityCheck, IdentityVerdict, OfflineAnswer, RosterEntry};
use protocol::{ErrorCode, InvalidField, RequestBody, ResponseBody};
use uuid::Uuid;

use crate::agent::Agent;
use crate::outbox::StoreError;
use crate::request::request;
use crate::sync::SyncError;
use crate::transport::{ClientError, GatewayConnection};

/// What to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRequest {
    /// The certificate number shown by the officer.
    pub certificate_number: String,
    /// Where, in words.
    pub location: Option<String>,
    /// The case, if any.
    pub case_number: Option<String>,
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckSource {
    /// The gateway answered from its registry.
    Online {
        /// The roster version the answer came from.
        roster_version: u64,
    },
    /// The device answered from its synced roster and queued the check for upload.
    Offline {
        /// The roster version the device holds (0: never synced).
        roster_version: u64,
    },
}

/// The answer to a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckAnswer {
    /// The check's id.
    pub check_id: Uuid,
    /// Valid, withdrawn, revoked or unknown.
    pub verdict: IdentityVerdict,
    /// The officer, when known.
    pub officer: Option<RosterEntry>,
    /// Online or offline.
    pub source: CheckSource,
}

/// Why a check could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A field is invalid (empty or too long certificate number, ...).
    #[error("the check is not valid: {0}")]
    Invalid(#[from] InvalidField),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gateway refused the check for a reason a retry offline would not fix.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// The offline verdict for a roster entry at device time `now` (none: the number is
/// unknown). Auxiliary staff are never valid, an expired certificate is "expired",
/// exactly as the gateway answers online.
pub fn offline_verdict(entry: Option<&RosterEntry>, now: protocol::Millis) -> IdentityVerdict {
    IdentityVerdict::from(entry.map(|e| e.standing_at(now)))
}

pub use crate::outbox::checks::verdict_word;

impl Agent {
    fn new_check(&self, req: &CheckRequest) -> IdentityCheck {
        IdentityCheck {
            check_id: Uuid::new_v4(),
            certificate_number: req.certificate_number.trim().to_owned(),
            checked_at: self.now(),
            location: req.location.clone(),
            case_number: req.case_number.clone(),
            offline: None,
        }
    }

    /// Answers from the synced roster and queues the check for upload (durable when
    /// this returns).
    pub async fn check_offline(&self, req: &CheckRequest) -> Result<CheckAnswer, CheckError> {
        let limits = self.outbox().limits().await?;
        let mut check = self.new_check(req);
        check.validate(&limits)?;
        self.answer_offline(&mut check).await
    }

    async fn answer_offline(&self, check: &mut IdentityCheck) -> Result<CheckAnswer, CheckError> {
        let outbox = self.outbox();
        let roster_version = outbox.roster_version().await?;
        let officer = outbox.roster_entry(&check.certificate_number).await?;
        let verdict = offline_verdict(officer.as_ref(), check.checked_at);
        check.offline = Some(OfflineAnswer {
            verdict,
            roster_version,
        });
        outbox.queue_check(check).await?;
        Ok(CheckAnswer {
            check_id: check.check_id,
            verdict,
            officer,
            source: CheckSource::Offline { roster_version },
        })
    }

    /// Asks the gateway over `conn` (after a hello); the gateway stores the check.
    pub async fn check_online(
        &self,
        conn: &GatewayConnection,
        req: &CheckRequest,
    ) -> Result<CheckAnswer, CheckError> {
        let limits = self.outbox().limits().await?;
        let check = self.new_check(req);
        check.validate(&limits)?;
        self.ask(conn, &check).await.map_err(CheckError::from)
    }

    async fn ask(
        &self,
        conn: &GatewayConnection,
        check: &IdentityCheck,
    ) -> Result<CheckAnswer, SyncError> {
        match request(
            self,
            conn,
            "check_identity",
            RequestBody::CheckIdentity(check.clone()),
        )
        .await?
        {
            ResponseBody::IdentityResult(result) if result.check_id == check.check_id => {
                Ok(CheckAnswer {
                    check_id: result.check_id,
                    verdict: result.verdict,
                    officer: result.officer,
                    source: CheckSource::Online {
                        roster_version: result.roster_version,
                    },
                })
            }
            other => Err(SyncError::Client(ClientError::UnexpectedReply {
                request: "check_identity",
                reply: Box::new(other),
            })),
        }
    }

    /// Connects for this check and asks the gateway, if it answers within
    /// `online_check_timeout_secs`; otherwise answers from the synced roster and queues
    /// the check (same id, so a check the gateway did store is a duplicate on upload).
    pub async fn check(&self, req: &CheckRequest) -> Result<CheckAnswer, CheckError> {
        let limits = self.outbox().limits().await?;
        let mut check = self.new_check(req);
        check.validate(&limits)?;
        let budget = std::time::Duration::from_secs(self.config().online_check_timeout_secs);
        let online = tokio::time::timeout(budget, async {
            let mut session = match self.connect().await {
                Ok(s) => s,
                Err(e) => return Err(e.to_string()),
            };
            let answer = match self.hello(&mut session.conn).await {
                Ok(_) => self.ask(&session.conn, &check).await,
                Err(e) => Err(e),
            };
            session.close().await;
            answer.map_err(|e| e.to_string())
        })
        .await;
        match online {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => tracing::warn!(error = %e, "online check failed; answering offline"),
            Err(_) => tracing::warn!("the gateway did not answer in time; answering offline"),
        }
        self.answer_offline(&mut check).await
    }

    /// Online when `conn` is given and the gateway answers; otherwise (no connection,
    /// a network failure, a gateway that does not serve checks) offline, queued.
    /// An answer is never lost: a check that may have reached the gateway is queued
    /// under the same id, and the upload of a check the gateway already stored is
    /// acknowledged as a duplicate.
    pub async fn check_identity(
        &self,
        conn: Option<&GatewayConnection>,
        req: &CheckRequest,
    ) -> Result<CheckAnswer, CheckError> {
        let limits = self.outbox().limits().await?;
        let mut check = self.new_check(req);
        check.validate(&limits)?;
        if let Some(conn) = conn {
            match self.ask(conn, &check).await {
                Ok(answer) => return Ok(answer),
                Err(SyncError::Client(ClientError::Refused(e)))
                    if e.code == ErrorCode::InvalidField =>
                {
                    return Err(SyncError::Client(ClientError::Refused(e)).into());
                }
                Err(e) => tracing::warn!(error = %e, "online check failed; answering offline"),
            }
        }
        self.answer_offline(&mut check).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::domain::CertificateStatus;

    #[test]
    fn the_offline_verdict_follows_the_synced_status() {
        let mut entry = RosterEntry {
            certificate_number: "A-1".into(),
            name: "N".into(),
            unit: "U".into(),
            post: "P".into(),
            category: "C".into(),
            status: CertificateStatus::Valid,
            version: 1,
            auxiliary: false,
            valid_until: Some(100),
        };
        assert_eq!(offline_verdict(Some(&entry), 99), IdentityVerdict::Valid);
        assert_eq!(offline_verdict(Some(&entry), 100), IdentityVerdict::Expired);
        entry.status = CertificateStatus::Withdrawn;
        assert_eq!(offline_verdict(Some(&entry), 5), IdentityVerdict::Withdrawn);
        entry.status = CertificateStatus::Revoked;
        assert_eq!(offline_verdict(Some(&entry), 5), IdentityVerdict::Revoked);
        entry.auxiliary = true;
        assert_eq!(offline_verdict(Some(&entry), 5), IdentityVerdict::Auxiliary);
        assert_eq!(offline_verdict(None, 5), IdentityVerdict::Unknown);
    }
}
