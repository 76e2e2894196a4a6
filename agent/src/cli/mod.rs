//! The agent's command line: parsing ([`args`]) and one function per command
//! ([`commands`]). Errors carry the exit code they end the process with.

pub(crate) mod args;
pub(crate) mod commands;

use std::fmt;

/// Exit code for usage and configuration errors (EX_USAGE).
pub(crate) const EXIT_USAGE: u8 = 64;
/// Exit code when the gateway cannot be reached (EX_UNAVAILABLE): retry later.
pub(crate) const EXIT_UNAVAILABLE: u8 = 69;
/// Exit code when the gateway refuses this device (EX_NOPERM): do not retry.
pub(crate) const EXIT_REFUSED: u8 = 77;
/// Exit code for every other failure.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// A failed command: the error to print and the exit code.
pub(crate) struct Failure {
    /// The exit code.
    pub(crate) code: u8,
    /// What went wrong.
    pub(crate) error: anyhow::Error,
}

impl Failure {
    /// A usage or configuration error.
    pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }

    /// Any other failure.
    pub(crate) fn other(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: EXIT_FAILURE,
            error: error.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::other(error)
    }
}
