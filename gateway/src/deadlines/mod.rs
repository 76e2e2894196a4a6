//! The deadline watcher (DOMAIN R2, R3): as gateway time passes, it moves recordings
//! from pending to due soon to overdue (recording every change), flags devices silent
//! long enough to be holding recordings, raises the full-process flags on cases, and
//! sets the gauges on `/metrics`.
//!
//! Time comes from `state.clock`, so a test with a manual clock moves 25 hours and
//! calls [`evaluate`] (or waits for the next tick). The rules are pure
//! ([`silence`], [`full_process`]); this module reads, applies and counts.

mod cases;
pub mod full_process;
mod metrics;
pub mod silence;

use std::sync::Arc;
use std::time::Duration;

use protocol::Millis;

pub use metrics::RecordingMetrics;

use crate::state::GatewayState;
use store::StateChange;
use store::StoreError;
use store::recordings::{CLOCK_IMPLAUSIBLE, SILENT};

/// What one pass of the watcher did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassSummary {
    /// Gateway time of the pass.
    pub now: Millis,
    /// State changes recorded by this pass.
    pub state_changes: Vec<StateChange>,
    /// Recordings overdue at `now`.
    pub overdue: u64,
    /// Devices in service silent at `now`.
    pub silent_devices: usize,
    /// Silent-device flags raised by this pass.
    pub devices_flagged: usize,
    /// Case flags raised by this pass.
    pub case_flags_raised: usize,
}

/// One pass over recordings, devices and cases at the gateway's current time.
pub async fn evaluate(state: &GatewayState) -> Result<PassSummary, StoreError> {
    let _one_pass_at_a_time = state.recording_metrics.pass.lock().await;
    let now = state.clock.now();
    let policy = &state.config.policy.deadline;
    let store = &state.store;
    let state_changes = store.advance_recording_states(now, policy).await?;
    for change in &state_changes {
        tracing::info!(
            recording = %change.recording_id,
            from = ?change.from.map(|s| s.as_str()),
            to = change.to.as_str(),
            "recording state changed"
        );
    }
    let overdue = store.count_overdue_recordings(now).await?;
    state
        .recording_metrics
        .overdue
        .set(i64::try_from(overdue).unwrap_or(i64::MAX));

    let devices = store.devices_for_silence().await?;
    let open = store.open_device_flags(SILENT).await?;
    let verdict = silence::judge(&devices, &open, now, policy);
    let mut devices_flagged = 0;
    for (device, since) in &verdict.raise {
        if store.raise_device_flag(device, SILENT, *since, now).await? {
            devices_flagged += 1;
            tracing::warn!(%device, since, "device silent: it may be holding recordings");
        }
    }
    for device in &verdict.clear {
        store.clear_device_flag(device, SILENT, now).await?;
    }
    state
        .recording_metrics
        .silent_devices
        .set(i64::try_from(verdict.silent).unwrap_or(i64::MAX));

    let clock_flags = store.open_device_flags(CLOCK_IMPLAUSIBLE).await?.len();
    state
        .recording_metrics
        .clock_implausible_devices
        .set(i64::try_from(clock_flags).unwrap_or(i64::MAX));

    let case_flags_raised = cases::evaluate(state, now).await?;

    Ok(PassSummary {
        now,
        state_changes,
        overdue,
        silent_devices: verdict.silent,
        devices_flagged,
        case_flags_raised,
    })
}

/// Runs [`evaluate`] at start and then every `deadline_check_secs` until shutdown.
pub async fn watch(state: Arc<GatewayState>) {
    let period = Duration::from_secs(state.config.deadline_check_secs);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = state.shutdown.cancelled() => break,
        }
        if let Err(e) = evaluate(&state).await {
            tracing::warn!(error = %e, "deadline pass failed; retrying at the next tick");
        }
        state.recording_metrics.first_pass.send_replace(true);
    }
}

/// Waits until the watcher's first pass after start has run (the gauges are set), so
/// that a caller's own [`evaluate`] is never overtaken by it.
pub async fn first_pass(state: &GatewayState) {
    let mut done = state.recording_metrics.first_pass.subscribe();
    let _ = done.wait_for(|done| *done).await;
}
