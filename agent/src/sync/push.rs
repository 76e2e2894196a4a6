//! The one push of field records, whoever pushes: [`Agent::sync_once`] (the CLI and
//! the daemon) loops over it, and the load test calls it batch by batch. It reads the
//! next batch from the outbox ([`Agent::next_batch`]), sends it and applies the
//! gateway's acks ([`Agent::push`]); what goes in a batch and what the acks mean is
//! decided by the pure [`super::plan`].
//!
//! The seam for a caller that times the gateway (the load test) is in this one path:
//! `next_batch` may run ahead of the timed part, and [`Pushed::acked_at`] says when
//! the acks arrived, before the outbox was told, so the device's own bookkeeping is
//! not on the clock.

use std::time::Instant;

use protocol::message::PushRecords;
use protocol::{Limits, RequestBody, ResponseBody};

use super::SyncError;
use super::plan::{self, PushBatch};
use crate::agent::Agent;
use crate::outbox::acks::AckPlan;
use crate::request::{request, unexpected};
use crate::transport::GatewayConnection;

/// What one push did.
#[derive(Debug)]
pub struct Pushed {
    /// The acks as the outbox applied them: durable records removed, a refused one
    /// marked (the caller re-chains the rest).
    pub plan: AckPlan,
    /// When the gateway's acks arrived, before they were applied to the outbox.
    pub acked_at: Instant,
}

impl Agent {
    /// Reads the next batch of queued records (at most `max` and what the welcome's
    /// `limits` allow); `None` when nothing is queued. Push it before anything else
    /// changes the queue: after a re-chain it is stale (the gateway refuses it, and
    /// nothing is lost).
    pub async fn next_batch(
        &self,
        limits: &Limits,
        max: u32,
    ) -> Result<Option<PushBatch>, SyncError> {
        let read = plan::records_to_read(limits, max);
        let queued = self.outbox().queued_records(read).await?;
        Ok(plan::next_batch(queued, limits, max))
    }

    /// Pushes `batch` and applies the gateway's acks to the outbox: durable records
    /// leave it, a refused one is marked and comes back in the plan. Until the acks
    /// are applied the records stay queued (a crash in between sends them again and
    /// the gateway answers "duplicate"). Acks that do not answer the push are an error
    /// after what they did answer is applied.
    pub async fn push(
        &self,
        conn: &GatewayConnection,
        mut batch: PushBatch,
    ) -> Result<Pushed, SyncError> {
        let body = RequestBody::PushRecords(PushRecords {
            records: batch.take_records(),
        });
        let acks = match request(self, conn, "push_records", body).await? {
            ResponseBody::RecordAcks(acks) => acks,
            other => return Err(unexpected("push_records", other).into()),
        };
        let acked_at = Instant::now();
        let plan = batch.plan(&acks.acks);
        durable::failpoint::crash_point("agent.acks_received");
        self.outbox().apply_record_acks(&plan, self.now()).await?;
        durable::failpoint::crash_point("agent.acks_applied");
        plan::answered(&plan)?;
        Ok(Pushed { plan, acked_at })
    }
}
