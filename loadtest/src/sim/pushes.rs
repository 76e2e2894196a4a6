//! The devices of the `ingest` scenario. Each one is connected and greeted first;
//! then, when the director says go, it pushes the first part of its offline backlog
//! batch after batch, each as soon as the previous one was acknowledged (the drain:
//! how fast the gateway makes records durable); then the rest at planned times, one
//! batch per tick, with each push after the warm-up measured from when it was due, not
//! from when it was sent (a stalled gateway shows as latency).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agent::{GatewayConnection, PushBatch};
use protocol::Limits;
use rand::Rng;
use tokio::sync::{Barrier, watch};

use super::device::{Fleet, Live, Outcome, Prepared, ensure_connected, finish, kind, settle};

/// Records per push in the `ingest` drain (the agent's default batch), and the push
/// size the store-alone figure groups its rows by.
pub const DRAIN_BATCH: u32 = 256;

/// Operation names in the report.
pub mod ops {
    /// One push of the drain, from sending it to its ack (the device's own
    /// bookkeeping of the ack afterwards is not counted).
    pub const DRAIN_PUSH: &str = "push, drain (sent→ack)";
    /// One push of the paced phase, from its planned time to its ack (likewise).
    pub const PACED_PUSH: &str = "push, paced (planned→ack)";
    /// How late a paced push started after its planned time: the harness's own
    /// share of the planned→ack latency (a busy harness starts its pushes late).
    pub const PACED_START: &str = "push, paced (planned→start)";
}

/// What each device pushes.
#[derive(Clone, Copy, Debug)]
pub struct PushPlan {
    /// Records of the backlog pushed in the drain (the rest are paced).
    pub drain_records: u32,
    /// Records per push in the drain.
    pub drain_batch: u32,
    /// Records per push in the paced phase.
    pub paced_batch: u32,
    /// Pushes per device in the paced phase, the warm-up included.
    pub paced_pushes: u32,
    /// The first pushes of the paced phase that are not measured: after the drain,
    /// QUIC's round-trip estimate (which paces what a connection sends) is still
    /// inflated by the drain's queues — median 144 ms at the first paced push, 64 ms
    /// at the second, 28 ms at the third in one run — and the phase is meant to
    /// measure a steady half load, not the drain's after-effects.
    pub paced_warmup: u32,
}

impl PushPlan {
    /// Records each device must hold in its backlog.
    pub fn backlog(&self) -> u32 {
        self.drain_records + self.paced_batch * self.paced_pushes
    }
}

/// When the paced phase starts and how far apart one device's pushes are.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// The phase's start.
    pub start: Instant,
    /// Time between one device's pushes.
    pub interval: Duration,
}

/// How the director and the devices meet between phases.
pub struct Phases {
    /// Every device and the director: once all are connected (drain starts), once
    /// all drained, once all made their paced pushes (then they settle).
    pub barrier: Barrier,
    /// The paced phase's schedule, once the drain's rate is known.
    pub pace: watch::Receiver<Option<Pace>>,
    /// How long a device keeps retrying a push that fails.
    pub give_up_after: Duration,
    /// When the drain's last ack arrived: the drain ends there, not when the devices
    /// have also updated their outboxes.
    pub last_drain_ack: Mutex<Option<Instant>>,
}

impl Phases {
    /// Notes that a device's drain ended with an ack at `at`.
    fn drain_acked(&self, at: Instant) {
        let mut last = self
            .last_drain_ack
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *last = Some(last.map_or(at, |l| l.max(at)));
    }
}

/// A device's connection and the limits its welcome gave.
struct Greeted {
    live: Live,
    limits: Limits,
}

/// Runs one device through connect, drain and paced phases.
pub async fn run(
    mut device: Prepared,
    fleet: Arc<Fleet>,
    plan: PushPlan,
    phases: Arc<Phases>,
) -> Outcome {
    let mut greeted = Greeted {
        live: Live {
            conn: None,
            failures: 0,
        },
        limits: Limits::default(),
    };
    let ready = greet(
        &device,
        &fleet,
        &mut greeted,
        Instant::now() + phases.give_up_after,
    )
    .await;
    // The drain's first push is read from the outbox before the start, so that the
    // drain times the gateway rather than a thousand agents reading their outboxes at
    // once (on a real fleet each device reads its own, on its own hardware).
    let mut first = None;
    if ready && plan.drain_records > 0 {
        let max = plan.drain_batch.min(plan.drain_records);
        first = prepare(&device, &fleet, &greeted, max).await;
    }
    phases.barrier.wait().await;

    let mut outcome = Outcome::new(device.agent.device_id().clone());
    outcome.first_sync = Some(Instant::now());
    if ready {
        let mut left = plan.drain_records;
        let deadline = Instant::now() + phases.give_up_after;
        let mut last_ack = None;
        while left > 0 {
            let started = Instant::now();
            let max = plan.drain_batch.min(left);
            match push(&device, &fleet, &mut greeted, max, first.take(), deadline).await {
                Some((n, acked)) => {
                    fleet.stats.record(ops::DRAIN_PUSH, acked - started);
                    left = left.saturating_sub(n);
                    last_ack = Some(acked);
                }
                None => break,
            }
        }
        if left == 0 {
            outcome.backlog_done = Some(Instant::now());
            if let Some(at) = last_ack {
                phases.drain_acked(at);
            }
        }
    }
    // Likewise the first paced batch, before the director sets the schedule: a thousand
    // agents reading their outboxes at once would otherwise start the phase late.
    let mut next = None;
    if ready && plan.paced_pushes > 0 {
        next = prepare(&device, &fleet, &greeted, plan.paced_batch).await;
    }
    phases.barrier.wait().await;

    let mut pace_rx = phases.pace.clone();
    let pace = pace_rx
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|p| *p);
    let Some(pace) = pace else {
        phases.barrier.wait().await;
        return settle_and_finish(device, &fleet, greeted, outcome).await;
    };
    if ready {
        let phase = pace.interval.mul_f64(device.rng.random::<f64>());
        for k in 0..plan.paced_pushes {
            let planned = pace.start + phase + pace.interval * k;
            // Read the batch before it is due, as the drain does: the latency is the
            // gateway's answer, not the agent's outbox read.
            if k > 0 {
                next = prepare(&device, &fleet, &greeted, plan.paced_batch).await;
            }
            tokio::time::sleep_until(planned.into()).await;
            let started = Instant::now();
            let measured = k >= plan.paced_warmup;
            if measured {
                fleet
                    .stats
                    .record(ops::PACED_START, started.saturating_duration_since(planned));
            }
            let deadline = started + phases.give_up_after;
            if let Some((_, acked)) = push(
                &device,
                &fleet,
                &mut greeted,
                plan.paced_batch,
                next.take(),
                deadline,
            )
            .await
                && measured
            {
                fleet
                    .stats
                    .record(ops::PACED_PUSH, acked.saturating_duration_since(planned));
            }
        }
    }
    // Nobody settles (reads back its outbox, closes) while others still push.
    phases.barrier.wait().await;
    settle_and_finish(device, &fleet, greeted, outcome).await
}

/// Connects and says hello, retrying until `deadline`.
async fn greet(device: &Prepared, fleet: &Fleet, greeted: &mut Greeted, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if !ensure_connected(device, fleet, &mut greeted.live).await {
            continue;
        }
        let conn: &mut GatewayConnection = greeted.live.conn.as_mut().expect("connected");
        match device.agent.hello(conn).await {
            Ok(welcome) => {
                greeted.limits = welcome.limits;
                return true;
            }
            Err(e) => {
                fleet
                    .stats
                    .error(format!("hello: {}", kind(&e.to_string())));
                greeted.live.conn = None;
            }
        }
    }
    false
}

/// Reads the device's next batch of at most `max` records ahead of its push. A failed
/// read is counted as an error; the push then reads again itself.
async fn prepare(
    device: &Prepared,
    fleet: &Fleet,
    greeted: &Greeted,
    max: u32,
) -> Option<PushBatch> {
    match device.agent.next_batch(&greeted.limits, max).await {
        Ok(batch) => batch,
        Err(e) => {
            fleet.stats.error(format!("push: {}", kind(&e.to_string())));
            None
        }
    }
}

/// Pushes one batch of at most `max` records (`prepared`, when it was read before)
/// through the agent's one push; on a failure reconnects and pushes again until
/// `deadline`. Returns how many records the gateway acknowledged and when its acks
/// arrived (the outbox is updated after that).
async fn push(
    device: &Prepared,
    fleet: &Fleet,
    greeted: &mut Greeted,
    max: u32,
    mut prepared: Option<PushBatch>,
    deadline: Instant,
) -> Option<(u32, Instant)> {
    while Instant::now() < deadline {
        let usable = greeted
            .live
            .conn
            .as_ref()
            .is_some_and(|c| c.close_reason().is_none());
        if !usable && !greet(device, fleet, greeted, deadline).await {
            return None;
        }
        let conn = greeted.live.conn.as_ref().expect("greeted");
        let batch = match prepared.take() {
            Some(batch) => Ok(Some(batch)),
            None => device.agent.next_batch(&greeted.limits, max).await,
        };
        let pushed = match batch {
            Ok(Some(batch)) => device.agent.push(conn, batch).await,
            // Nothing queued: the backlog is gone.
            Ok(None) => return None,
            Err(e) => Err(e),
        };
        match pushed {
            Ok(pushed) if pushed.plan.rejected.is_none() => {
                return Some((pushed.plan.durable.len() as u32, pushed.acked_at));
            }
            Ok(_) => {
                fleet.stats.error("push: a record was refused");
                return None;
            }
            Err(e) => {
                fleet.stats.error(format!("push: {}", kind(&e.to_string())));
                if conn.close_reason().is_some() {
                    greeted.live.conn = None;
                }
            }
        }
    }
    None
}

/// Reads back what the outbox no longer holds and closes the device.
async fn settle_and_finish(
    mut device: Prepared,
    fleet: &Fleet,
    greeted: Greeted,
    outcome: Outcome,
) -> Outcome {
    let mut acked = Vec::new();
    let mut stored = HashMap::new();
    settle(&mut device, fleet, &mut acked, &mut stored).await;
    finish(device, greeted.live, outcome, acked, stored).await
}
