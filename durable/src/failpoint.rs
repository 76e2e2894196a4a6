//! Failpoints at the durable steps (issue 20): named places where a test can stop the
//! process as a crash would, or make a file operation fail as a failing disk would.
//!
//! They exist only in builds with the `failpoints` feature, which only the test
//! fixtures (`test-support`) turn on; in every other build each function here is an
//! empty inline call and no failpoint crate is linked. A test sets them through the
//! `FAILPOINTS` environment variable of a gateway or agent process it starts (the
//! [`fail`](https://docs.rs/fail) crate's syntax, as TiKV uses it):
//!
//! - `FAILPOINTS=ingest.committed=return(crash)` stops the process there with SIGKILL,
//!   so nothing after the step runs: no destructor, no flush, no reply;
//! - `FAILPOINTS=staging.fsync=return(eio)` makes that operation fail with `EIO`
//!   (`enospc` for a full disk);
//! - the crate's other actions (`panic`, `sleep(ms)`, `N*`, `->`) work as documented.
//!
//! The list of crash points, with what must hold after each, is docs/durability.md.

use std::io;

/// True in a build that carries failpoints (a test build): the gateway and the agent
/// say so when they start.
pub const ENABLED: bool = cfg!(feature = "failpoints");

/// Installs the failpoints named in `FAILPOINTS`; keep the guard for the process's
/// life. Without the `failpoints` feature this does nothing.
#[must_use = "the failpoints are removed when the guard is dropped"]
pub fn setup() -> Guard {
    Guard::setup()
}

/// Keeps the failpoints of `FAILPOINTS` installed.
pub struct Guard {
    #[cfg(feature = "failpoints")]
    _scenario: fail::FailScenario<'static>,
}

impl Guard {
    #[cfg(feature = "failpoints")]
    fn setup() -> Self {
        let scenario = fail::FailScenario::setup();
        let configured = fail::list();
        if !configured.is_empty() {
            eprintln!("failpoints configured (a test build): {configured:?}");
        }
        Self {
            _scenario: scenario,
        }
    }

    #[cfg(not(feature = "failpoints"))]
    fn setup() -> Self {
        Self {}
    }
}

/// What a failpoint set to `return(ARG)` asks for.
#[cfg(feature = "failpoints")]
fn injected(name: &str) -> Option<String> {
    fail::eval(name, |arg| arg.unwrap_or_default())
}

/// Stops the process here, as a crash would (SIGKILL to itself), when the failpoint
/// `name` is set to `return(crash)`.
#[inline]
pub fn crash_point(name: &str) {
    #[cfg(feature = "failpoints")]
    if injected(name).as_deref() == Some("crash") {
        stop(name);
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Fails with the error the failpoint `name` is set to (`return(eio)`: an I/O error,
/// `return(enospc)`: no space left), or stops the process (`return(crash)`); `Ok`
/// when it is not set.
#[inline]
pub fn io_point(name: &str) -> io::Result<()> {
    #[cfg(feature = "failpoints")]
    match injected(name).as_deref() {
        Some("crash") => stop(name),
        Some("eio") => return Err(io::Error::from_raw_os_error(libc::EIO)),
        Some("enospc") => return Err(io::Error::from_raw_os_error(libc::ENOSPC)),
        _ => {}
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
    Ok(())
}

/// SIGKILL to this process: nothing after the step runs.
#[cfg(feature = "failpoints")]
fn stop(name: &str) -> ! {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "failpoint {name}: stopping the process");
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    // SIGKILL cannot be caught; this is never reached.
    std::process::abort()
}
