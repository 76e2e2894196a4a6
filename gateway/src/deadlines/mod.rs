//! The deadline watcher (DOMAIN R2, R3): as gateway time passes, it moves recordings
//! from pending to due soon to overdue (recording every change), flags devices silent
//! long enough to be holding recordings, raises the full-process flags on cases, and
//! sets the gauges on `/metrics`.
//!
//! Time comes from the gateway's clock, so a test with a manual clock moves 25 hours and
//! calls [`Deadlines::evaluate`] (or waits for the watcher's next tick,
//! `jobs::deadline_watch`). The rules are pure ([`silence`], [`full_process`]); this
//! module reads, applies and counts, through [`Deadlines`]: the handles a pass needs.

mod cases;
pub mod full_process;
mod metrics;
pub mod silence;

use jiff::tz::TimeZone;
use protocol::Millis;

pub use metrics::RecordingMetrics;

use crate::config::PolicyConfig;
use clock::SharedClock;
use store::StateChange;
use store::Store;
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

/// What a deadline pass reads and writes: the store, the clock, the policy, the
/// agencies' time zone and the gauges it sets; nothing else of the gateway.
#[derive(Clone)]
pub struct Deadlines {
    /// Recordings, devices, records and their flags.
    pub store: Store,
    /// Gateway time.
    pub clock: SharedClock,
    /// The deadline, full-process and action-kind policy.
    pub policy: PolicyConfig,
    /// The agencies' time zone (archive periods are its calendar days).
    pub zone: TimeZone,
    /// The gauges a pass sets (and the lock that keeps passes apart).
    pub metrics: RecordingMetrics,
}

impl Deadlines {
    /// One pass over recordings, devices and cases at the gateway's current time.
    pub async fn evaluate(&self) -> Result<PassSummary, StoreError> {
        evaluate(self).await
    }
}

async fn evaluate(deadlines: &Deadlines) -> Result<PassSummary, StoreError> {
    let _one_pass_at_a_time = deadlines.metrics.pass.lock().await;
    let now = deadlines.clock.now();
    let policy = &deadlines.policy.deadline;
    let store = &deadlines.store;
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
    deadlines
        .metrics
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
    deadlines
        .metrics
        .silent_devices
        .set(i64::try_from(verdict.silent).unwrap_or(i64::MAX));

    let clock_flags = store.open_device_flags(CLOCK_IMPLAUSIBLE).await?.len();
    deadlines
        .metrics
        .clock_implausible_devices
        .set(i64::try_from(clock_flags).unwrap_or(i64::MAX));

    let case_flags_raised = cases::evaluate(deadlines, now).await?;

    Ok(PassSummary {
        now,
        state_changes,
        overdue,
        silent_devices: verdict.silent,
        devices_flagged,
        case_flags_raised,
    })
}

/// Waits until the watcher's first pass after start has run (the gauges are set), so
/// that a caller's own [`Deadlines::evaluate`] is never overtaken by it.
pub async fn first_pass(metrics: &RecordingMetrics) {
    let mut done = metrics.first_pass.subscribe();
    let _ = done.wait_for(|done| *done).await;
}
