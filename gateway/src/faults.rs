//! Storage failures the gateway does not work around (issue 20, point 3).
//!
//! A failed fsync is never retried as if it succeeded: after a failed write-back the
//! kernel may drop the pages it could not write and report the next fsync as a success
//! (the PostgreSQL "fsyncgate" lesson), so nothing written before the failure can be
//! trusted to be on disk. The component that saw a write, fsync or rename fail —
//! record ingest on the gateway's SQLite file, or the media store — therefore stops
//! acknowledging: every later request it would have acknowledged is refused with
//! `StorageFailed` (retryable: the device keeps its data and tries again, perhaps
//! through another gateway), `/metrics` shows `fieldsync_storage_failed{component}`
//! = 1, `/healthz` answers 503, and the log repeats the error every storage check
//! until the gateway is restarted. A restart trusts only what the store recorded as
//! durable: staging files are cut back to their recorded offset and rehashed, and
//! every staged file is read back before it is published.
//!
//! A full disk is not such a failure: nothing was lost, and the component waits for
//! space (see [`crate::storage`]).

use std::sync::{Mutex, PoisonError};

use prometheus::{IntGaugeVec, Opts};

use crate::metrics::Metrics;

/// A part of the gateway that writes to storage and acknowledges what it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    /// Field records and their group commit (the gateway's SQLite file).
    Ingest,
    /// Recordings: staging files and the media store.
    Media,
}

impl Component {
    /// Every component.
    pub const ALL: [Component; 2] = [Component::Ingest, Component::Media];

    /// The `component` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Ingest => "ingest",
            Component::Media => "media",
        }
    }

    fn index(self) -> usize {
        match self {
            Component::Ingest => 0,
            Component::Media => 1,
        }
    }
}

/// A component stopped after a storage failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the gateway's {} storage failed ({reason}); it acknowledges nothing more until it is restarted",
    component.as_str()
)]
pub struct Halted {
    /// Which component.
    pub component: Component,
    /// The first failure, as logged.
    pub reason: String,
}

/// Which components have stopped, and why.
pub struct StorageFaults {
    halted: [Mutex<Option<String>>; 2],
    gauge: IntGaugeVec,
}

impl std::fmt::Debug for StorageFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageFaults")
            .field("halted", &self.halted())
            .finish()
    }
}

impl StorageFaults {
    /// Registers `fieldsync_storage_failed{component}` (0 for every component).
    pub fn register(metrics: &Metrics) -> Self {
        let gauge = IntGaugeVec::new(
            Opts::new(
                "fieldsync_storage_failed",
                "1 when a component stopped acknowledging after a storage failure (until restarted)",
            ),
            &["component"],
        )
        .expect("valid metric");
        for c in Component::ALL {
            gauge.with_label_values(&[c.as_str()]).set(0);
        }
        metrics.register(Box::new(gauge.clone()));
        Self {
            halted: Default::default(),
            gauge,
        }
    }

    /// `Err` once `component` has stopped.
    pub fn check(&self, component: Component) -> Result<(), Halted> {
        match &*self.slot(component) {
            None => Ok(()),
            Some(reason) => Err(Halted {
                component,
                reason: reason.clone(),
            }),
        }
    }

    /// Stops `component` for the rest of this process's life; the first failure is
    /// kept as the reason. Returns the refusal to give.
    pub fn halt(&self, component: Component, failure: &dyn std::fmt::Display) -> Halted {
        let mut slot = self.slot(component);
        let reason = slot.get_or_insert_with(|| {
            let reason = failure.to_string();
            tracing::error!(
                component = component.as_str(),
                error = %reason,
                "storage failed: this component acknowledges nothing more until the gateway is restarted"
            );
            self.gauge.with_label_values(&[component.as_str()]).set(1);
            reason
        });
        Halted {
            component,
            reason: reason.clone(),
        }
    }

    /// Every stopped component with its reason.
    pub fn halted(&self) -> Vec<Halted> {
        Component::ALL
            .into_iter()
            .filter_map(|c| self.check(c).err())
            .collect()
    }

    /// Says again in the log what has stopped (called at every storage check, so the
    /// failure is not one line lost among many).
    pub fn remind(&self) {
        for halted in self.halted() {
            tracing::error!(
                component = halted.component.as_str(),
                error = %halted.reason,
                "storage failed earlier: this component still acknowledges nothing; restart the gateway once the storage is repaired"
            );
        }
    }

    fn slot(&self, component: Component) -> std::sync::MutexGuard<'_, Option<String>> {
        self.halted[component.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_halt_is_kept_with_its_first_reason_and_shown_on_the_gauge() {
        let metrics = Metrics::new();
        let faults = StorageFaults::register(&metrics);
        assert!(faults.check(Component::Media).is_ok());
        faults.halt(Component::Media, &"fsync: EIO");
        let again = faults.halt(Component::Media, &"write: EIO");
        assert_eq!(
            again.reason, "fsync: EIO",
            "the first failure is the reason"
        );
        assert_eq!(faults.check(Component::Media), Err(again));
        assert!(faults.check(Component::Ingest).is_ok());
        let text = metrics.render();
        assert!(
            text.contains("fieldsync_storage_failed{component=\"media\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("fieldsync_storage_failed{component=\"ingest\"} 0"),
            "{text}"
        );
    }
}
