//! The agent's command line: parsing ([`args`]) and one function per command
//! ([`commands`]). Errors carry the exit code they end the process with.

pub(crate) mod args;
pub(crate) mod commands;

use std::fmt;

use protocol::message::IdentityVerdict;

/// Exit code for usage and configuration errors (EX_USAGE).
pub(crate) const EXIT_USAGE: u8 = 64;
/// Exit code when the gateway cannot be reached (EX_UNAVAILABLE): retry later.
pub(crate) const EXIT_UNAVAILABLE: u8 = 69;
/// Exit code when the gateway refuses this device (EX_NOPERM): do not retry.
pub(crate) const EXIT_REFUSED: u8 = 77;
/// Exit code for every other failure.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// The exit code of `check-id` for each verdict, so a script can tell them apart: 0
/// valid, then one code each (10–14) for the ways a certificate does not count.
pub(crate) fn verdict_exit(verdict: IdentityVerdict) -> u8 {
    match verdict {
        IdentityVerdict::Valid => 0,
        IdentityVerdict::Withdrawn => 10,
        IdentityVerdict::Revoked => 11,
        IdentityVerdict::Expired => 12,
        IdentityVerdict::Auxiliary => 13,
        IdentityVerdict::Unknown => 14,
    }
}

/// What a verdict means, for the officer.
pub(crate) fn verdict_text(verdict: IdentityVerdict) -> &'static str {
    match verdict {
        IdentityVerdict::Valid => "valid enforcement certificate",
        IdentityVerdict::Withdrawn => "the certificate was withdrawn",
        IdentityVerdict::Revoked => "the certificate was revoked",
        IdentityVerdict::Expired => "the certificate has expired",
        IdentityVerdict::Auxiliary => "auxiliary — not an enforcement officer",
        IdentityVerdict::Unknown => "no such certificate number",
    }
}

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
        f.write_str(&protocol::error_text::one_line(self.error.as_ref()))
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::other(error)
    }
}
