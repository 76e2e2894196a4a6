//! The field-day device loop: a backlog drained at docking, then open-loop records,
//! identity checks and recordings on the plan, a revocation when one is due, and a
//! drain until the device holds nothing unacknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use agent::CheckRequest;
use agent::outbox::recordings::LocalRecording;
use rand::Rng;
use uuid::Uuid;

use super::device::{Fleet, Live, Outcome, Prepared, ensure_connected, finish, kind, ops, sync};
use super::revoke::revoke;

/// Runs a prepared device through the plan and returns what it saw.
pub async fn run(mut device: Prepared, fleet: Arc<Fleet>) -> Outcome {
    let plan = fleet.plan.clone();
    let stats = fleet.stats.clone();
    let mut live = Live {
        conn: None,
        failures: 0,
    };
    let mut acked = Vec::new();
    let mut stored: HashMap<Uuid, LocalRecording> = HashMap::new();
    let mut outcome = Outcome::new(device.agent.device_id().clone());
    let steady_end = fleet.t0 + plan.steady;
    // Each device starts at its own phase of the interval, so the fleet's load is
    // spread rather than synchronised.
    let phase = plan
        .record_interval
        .map(|i| i.mul_f64(device.rng.random::<f64>()))
        .unwrap_or_default();
    let mut next_record = plan.record_interval.map(|_| fleet.t0 + phase);
    let recording_times: Vec<Instant> = (0..plan.steady_recordings)
        .map(|k| {
            let slot = plan.steady / plan.steady_recordings.max(1);
            // Within the first 80 % of its slot, so the last one is made before the
            // steady phase ends.
            fleet.t0 + slot * k + slot.mul_f64(0.8 * device.rng.random::<f64>())
        })
        .collect();
    let mut next_recording = 0usize;
    let revoke_at = fleet
        .revocations
        .get(&device.index)
        .map(|offset| fleet.t0 + *offset);
    let mut ticks: u64 = 0;

    // The first sync drains the offline backlog.
    outcome.first_sync = Some(Instant::now());
    let had_backlog = !device.pending.is_empty() || !device.recordings_added.is_empty();
    sync(&mut device, &fleet, &mut live, &mut acked, &mut stored).await;
    note_backlog_done(&mut outcome, had_backlog, &device, &stored);

    loop {
        let now = Instant::now();
        // A revocation is due even when a slow sync carried the device past it.
        if let Some(at) = revoke_at
            && now >= at
        {
            outcome.revocation =
                Some(revoke(&mut device, &fleet, &mut live, &mut acked, &mut stored).await);
            break;
        }
        if now >= steady_end {
            break;
        }
        let mut wake = steady_end;
        if let Some(t) = next_record {
            wake = wake.min(t);
        }
        if let Some(t) = recording_times.get(next_recording) {
            wake = wake.min(*t);
        }
        if let Some(t) = revoke_at {
            wake = wake.min(t);
        }
        tokio::time::sleep_until(wake.into()).await;
        let now = Instant::now();
        let mut work = false;
        // Open loop: every record whose planned time has passed is made now, with
        // its planned time kept for the latency.
        while let (Some(t), Some(interval)) = (next_record, plan.record_interval) {
            if t > now || t >= steady_end {
                break;
            }
            if let Err(e) = device.make_record(Some(t)).await {
                stats.error(format!("record: {e}"));
            }
            ticks += 1;
            next_record = Some(t + interval);
            work = true;
            if plan.check_every > 0 && ticks.is_multiple_of(u64::from(plan.check_every)) {
                identity_check(&device, &fleet, &mut live).await;
            }
        }
        while recording_times
            .get(next_recording)
            .is_some_and(|t| *t <= now)
        {
            next_recording += 1;
            match device.add_recording(plan.recording_size).await {
                Ok(()) => work = true,
                Err(e) => stats.error(format!("recording add: {e}")),
            }
        }
        if work {
            sync(&mut device, &fleet, &mut live, &mut acked, &mut stored).await;
            note_backlog_done(&mut outcome, had_backlog, &device, &stored);
        }
    }

    // Open loop: work planned within the steady phase is done even when the device
    // was held up past its end (a sync waiting for a killed gateway, say).
    if outcome.revocation.is_none() {
        while let (Some(t), Some(interval)) = (next_record, plan.record_interval) {
            if t >= steady_end {
                break;
            }
            if let Err(e) = device.make_record(Some(t)).await {
                stats.error(format!("record: {e}"));
            }
            next_record = Some(t + interval);
        }
        for _ in next_recording..recording_times.len() {
            if let Err(e) = device.add_recording(plan.recording_size).await {
                stats.error(format!("recording add: {e}"));
            }
        }
    }

    // Drain: sync until the device holds nothing unacknowledged (or time is up).
    if outcome.revocation.is_none() {
        let drain_end = Instant::now().max(steady_end) + plan.drain;
        while (!device.pending.is_empty() || stored.len() < device.recordings_added.len())
            && Instant::now() < drain_end
        {
            sync(&mut device, &fleet, &mut live, &mut acked, &mut stored).await;
            note_backlog_done(&mut outcome, had_backlog, &device, &stored);
        }
    }
    finish(device, live, outcome, acked, stored).await
}

/// Marks the moment the device first holds nothing unacknowledged of what it docked
/// with (its offline backlog drained).
fn note_backlog_done(
    outcome: &mut Outcome,
    had_backlog: bool,
    device: &Prepared,
    stored: &HashMap<Uuid, LocalRecording>,
) {
    if outcome.backlog_done.is_none()
        && had_backlog
        && device.pending.is_empty()
        && stored.len() == device.recordings_added.len()
    {
        outcome.backlog_done = Some(Instant::now());
    }
}

/// An online identity check (after a hello on this connection).
async fn identity_check(device: &Prepared, fleet: &Fleet, live: &mut Live) {
    if !ensure_connected(device, fleet, live).await {
        return;
    }
    let conn = live.conn.as_ref().expect("connected");
    let request = CheckRequest {
        certificate_number: format!("LT-{:04}", device.index % 50 + 1),
        location: Some("loadtest".into()),
        case_number: None,
    };
    let started = Instant::now();
    match device.agent.check_online(conn, &request).await {
        Ok(_) => fleet.stats.record(ops::IDENTITY_CHECK, started.elapsed()),
        Err(e) => fleet
            .stats
            .error(format!("identity check: {}", kind(&e.to_string()))),
    }
}
