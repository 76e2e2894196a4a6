//! One sync over an open connection: hello (clock skew, limits, the gateway's chain
//! head), then the outbox's field records in batches, then offline identity checks,
//! then the roster delta, then recordings. Every step commits what the gateway
//! acknowledged before the next request, so an interruption at any point loses
//! nothing and the next sync resumes where this one stopped.

pub mod plan;
pub mod push;

use protocol::chain::ChainHead;
use protocol::message::{FlagChange, FlagsSince, PushIdentityChecks, RosterSince, Welcome};
use protocol::{ErrorCode, RequestBody, ResponseBody};

use crate::agent::{AGENT_VERSION, Agent};
use crate::outbox::StoreError;
use crate::outbox::roster::RosterError;
use crate::outbox::state::{keys, limits_text};
use crate::request::{RequestError, request, unexpected, within};
use crate::transport::{ClientError, GatewayConnection};
use crate::uploader::{UploadError, UploadReport};
pub use plan::PushBatch;
pub use push::Pushed;

/// Re-chains allowed in one sync: each one follows a refusal, so more than a few in
/// a row means the gateway and the device disagree in a way a retry will not fix.
const MAX_RECHAINS_PER_SYNC: u32 = 4;

/// Roster pages fetched in one sync at most (a runaway `more` flag cannot spin).
const MAX_ROSTER_PAGES: u32 = 10_000;

/// Flag replies fetched in one sync at most (likewise).
const MAX_FLAG_PAGES: u32 = 1_000;

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Gateway time minus device time, from the hello.
    pub clock_skew_ms: i64,
    /// Records pushed.
    pub records_sent: usize,
    /// Records the gateway stored now.
    pub records_stored: usize,
    /// Records the gateway already held (replays).
    pub records_duplicate: usize,
    /// Records confirmed by the gateway's chain head without a push.
    pub records_confirmed: u64,
    /// Records the gateway refused (kept locally with the reason).
    pub records_rejected: usize,
    /// Records sealed again onto the gateway's chain after a refusal.
    pub records_resealed: usize,
    /// Offline identity checks acknowledged.
    pub checks_uploaded: usize,
    /// Offline identity checks refused.
    pub checks_rejected: usize,
    /// Roster version held afterwards.
    pub roster_version: u64,
    /// Roster entries received.
    pub roster_entries: usize,
    /// Recordings announced.
    pub recordings_announced: usize,
    /// Recordings the gateway confirmed stored (local copies deleted).
    pub recordings_stored: usize,
    /// Recording bytes sent.
    pub recording_bytes_sent: u64,
    /// Two-officer flags raised or cleared on this device's records since the last
    /// sync, as the gateway reported them (oldest first).
    pub flags: Vec<FlagChange>,
}

/// Why a sync stopped. What was acknowledged before stays acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The connection or a request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A request got no reply in time.
    #[error("the gateway did not answer {0} within the request timeout")]
    Timeout(&'static str),
    /// The gateway says it is another device's connection.
    #[error("the gateway greeted device {found}, but this agent is {expected}")]
    WrongDevice {
        /// The id in the welcome.
        found: String,
        /// Our id.
        expected: String,
    },
    /// The gateway's acks did not cover what was pushed.
    #[error("the gateway acknowledged {answered} of {sent} records pushed")]
    IncompleteAcks {
        /// Records pushed.
        sent: usize,
        /// Records answered.
        answered: usize,
    },
    /// Refusals kept coming after re-chaining.
    #[error("the gateway refused records {0} times in one sync; see `agent status`")]
    TooManyRefusals(u32),
    /// The recordings step failed.
    #[error(transparent)]
    Recordings(#[from] Box<UploadError>),
    /// The roster delta could not be applied.
    #[error(transparent)]
    Roster(#[from] RosterError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    /// True when the gateway does not serve a request kind yet (an older gateway).
    pub fn is_not_served(&self) -> bool {
        matches!(self, SyncError::Client(ClientError::Refused(e)) if e.code == ErrorCode::UnexpectedMessage)
    }
}

impl From<RequestError> for SyncError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Client(e) => SyncError::Client(e),
            RequestError::Timeout(what) => SyncError::Timeout(what),
        }
    }
}

impl Agent {
    /// Says hello and keeps what the welcome tells (skew, limits, the rules when they
    /// changed) with the attempt's time, in one local transaction.
    pub async fn hello(&self, conn: &mut GatewayConnection) -> Result<Welcome, SyncError> {
        let now = self.now();
        let held = self.outbox().device_rules().await?.map(|r| r.digest());
        let welcome = within(self, "hello", conn.hello_holding(now, AGENT_VERSION, held)).await?;
        if &welcome.device_id != self.device_id() {
            return Err(SyncError::WrongDevice {
                found: welcome.device_id.to_string(),
                expected: self.device_id().to_string(),
            });
        }
        let skew = welcome.clock_skew_ms.to_string();
        let limits = limits_text(&welcome.limits);
        let attempt = now.to_string();
        let rules = welcome
            .rules
            .as_ref()
            .map(|r| serde_json::to_string(r).expect("rules serialize"));
        let mut state = vec![
            (keys::CLOCK_SKEW_MS, skew.as_str()),
            (keys::LIMITS, limits.as_str()),
            (keys::LAST_ATTEMPT_AT, attempt.as_str()),
        ];
        if let Some(rules) = &rules {
            state.push((keys::DEVICE_RULES, rules));
        }
        self.outbox().update_state(&state, &[]).await?;
        Ok(welcome)
    }

    /// One complete sync over `conn` (which may be shared with nothing else but may
    /// come from a shared endpoint). Says hello first.
    pub async fn sync_once(&self, conn: &mut GatewayConnection) -> Result<SyncReport, SyncError> {
        let started = self.now().to_string();
        let result = self.sync_steps(conn).await;
        let outbox = self.outbox();
        match &result {
            Ok(_) => {
                let gateway = conn.quic().remote_address().to_string();
                outbox
                    .update_state(
                        &[
                            (keys::LAST_SYNC_AT, &self.now().to_string()),
                            (keys::GATEWAY, &gateway),
                        ],
                        &[keys::LAST_ERROR],
                    )
                    .await?;
            }
            Err(e) => {
                outbox
                    .update_state(
                        &[
                            (keys::LAST_ATTEMPT_AT, &started),
                            (keys::LAST_ERROR, &e.to_string()),
                        ],
                        &[],
                    )
                    .await?
            }
        }
        result
    }

    async fn sync_steps(&self, conn: &mut GatewayConnection) -> Result<SyncReport, SyncError> {
        let welcome = self.hello(conn).await?;
        let mut report = SyncReport {
            clock_skew_ms: welcome.clock_skew_ms,
            ..SyncReport::default()
        };
        report.records_confirmed = self.outbox().reconcile(welcome.chain).await?;
        self.push_records(conn, &welcome, &mut report).await?;
        self.push_checks(conn, &welcome, &mut report).await?;
        self.pull_roster(conn, &welcome, &mut report).await?;
        self.pull_flags(conn, &mut report).await?;
        let mut uploads = UploadReport::default();
        let uploaded = self.sync_recordings(conn, &mut uploads).await;
        report.recordings_announced = uploads.announced;
        report.recordings_stored = uploads.stored;
        report.recording_bytes_sent = uploads.bytes_sent;
        uploaded.map_err(|e| match e {
            UploadError::Request(e) => SyncError::from(e),
            other => SyncError::Recordings(Box::new(other)),
        })?;
        Ok(report)
    }

    /// Pushes queued records in batches until the outbox is empty.
    async fn push_records(
        &self,
        conn: &mut GatewayConnection,
        welcome: &Welcome,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let per_push = self.config().records_per_push;
        let mut refusals = 0;
        while let Some(batch) = self.next_batch(&welcome.limits, per_push).await? {
            let plan = self.push(conn, batch).await?.plan;
            report.records_sent += plan.pushed();
            report.records_stored += plan.stored;
            report.records_duplicate += plan.duplicate;
            if let Some((entry, reason)) = &plan.rejected {
                report.records_rejected += 1;
                refusals += 1;
                tracing::warn!(
                    reason = %crate::outbox::acks::describe(reason),
                    "the gateway refused a record"
                );
                if refusals > MAX_RECHAINS_PER_SYNC {
                    return Err(SyncError::TooManyRefusals(refusals));
                }
                // The gateway's chain head now, to seal the rest onto.
                let head: ChainHead = self.hello(conn).await?.chain;
                let done = self
                    .outbox()
                    .rechain(head, Some((*entry, reason)), self.now())
                    .await?;
                report.records_resealed += done.resealed;
            }
        }
        Ok(())
    }

    /// Uploads queued offline identity checks.
    async fn push_checks(
        &self,
        conn: &GatewayConnection,
        welcome: &Welcome,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let limits = &welcome.limits;
        let per_push = limits.max_identity_checks_per_push.max(1);
        loop {
            let queued = self.outbox().queued_checks(per_push).await?;
            let n = plan::fit(&queued, per_push, limits.max_frame_bytes);
            if n == 0 {
                return Ok(());
            }
            let ids: Vec<_> = queued[..n].iter().map(|c| c.check_id).collect();
            let body = RequestBody::PushIdentityChecks(PushIdentityChecks {
                checks: queued[..n].to_vec(),
            });
            let acks = match request(self, conn, "push_identity_checks", body).await? {
                ResponseBody::IdentityCheckAcks(acks) => acks,
                other => return Err(unexpected("push_identity_checks", other).into()),
            };
            let summary = self.outbox().apply_check_acks(&ids, &acks.acks).await?;
            report.checks_uploaded += summary.durable;
            report.checks_rejected += summary.rejected;
            if summary.unanswered > 0 || summary.durable + summary.rejected == 0 {
                return Err(SyncError::IncompleteAcks {
                    sent: n,
                    answered: summary.durable + summary.rejected,
                });
            }
        }
    }

    /// Fetches the flag changes on this device's records after the last one held,
    /// keeping each (the cursor) before it is reported. A gateway older than the
    /// request answers that it does not know it: then there is nothing to report.
    async fn pull_flags(
        &self,
        conn: &GatewayConnection,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let outbox = self.outbox();
        for _ in 0..MAX_FLAG_PAGES {
            let after = outbox.flags_cursor().await?;
            let body = RequestBody::FlagsSince(FlagsSince { after });
            let reply = match request(self, conn, "flags_since", body).await {
                Ok(ResponseBody::FlagChanges(reply)) => reply,
                Ok(other) => return Err(unexpected("flags_since", other).into()),
                Err(RequestError::Client(ClientError::Refused(e)))
                    if matches!(
                        e.code,
                        ErrorCode::MalformedMessage | ErrorCode::UnexpectedMessage
                    ) =>
                {
                    tracing::info!(reply = %e.message, "the gateway does not report flags");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            let fresh = outbox.apply_flag_changes(&reply, self.now()).await?;
            let progressed = !fresh.is_empty();
            report.flags.extend(fresh);
            if !reply.more || !progressed {
                break;
            }
        }
        Ok(())
    }

    /// Fetches roster deltas until the device holds the gateway's version.
    async fn pull_roster(
        &self,
        conn: &GatewayConnection,
        welcome: &Welcome,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let outbox = self.outbox();
        let mut version = outbox.roster_version().await?;
        if version > welcome.roster_version {
            // The gateway's registry is older than what we hold (restored from a
            // backup, or another deployment): start over from its version 0.
            tracing::warn!(
                held = version,
                gateway = welcome.roster_version,
                "the gateway's roster is older than ours; fetching it whole"
            );
            outbox.reset_roster().await?;
            version = 0;
        }
        let mut pages = 0;
        while version < welcome.roster_version && pages < MAX_ROSTER_PAGES {
            pages += 1;
            let body = RequestBody::RosterSince(RosterSince { version });
            let delta = match request(self, conn, "roster_since", body).await? {
                ResponseBody::RosterDelta(delta) => delta,
                other => return Err(unexpected("roster_since", other).into()),
            };
            durable::failpoint::crash_point("agent.roster_received");
            outbox.apply_roster_delta(&delta).await?;
            durable::failpoint::crash_point("agent.roster_applied");
            report.roster_entries += delta.entries.len();
            let progressed = delta.to_version > version;
            version = delta.to_version;
            if !delta.more || !progressed {
                break;
            }
        }
        report.roster_version = version;
        Ok(())
    }
}
