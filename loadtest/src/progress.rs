//! The live progress line while a run goes on (indicatif; hidden when stderr is not a
//! terminal, so CI logs stay clean).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A one-line live status.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Starts the line.
    pub fn start(scenario: &str) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {prefix} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(scenario.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar }
    }

    /// Replaces the status text.
    pub fn set(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Prints a line above the live one (a phase finished).
    pub fn println(&self, line: impl AsRef<str>) {
        self.bar.println(line.as_ref());
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
