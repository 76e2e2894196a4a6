//! Running a test inside a network namespace of its own, so that its multicast (mDNS)
//! never leaves the machine (ARCHITECTURE.md, Operations).
//!
//! The outer test makes the namespace, brings up `lo` with multicast and a route for
//! 224.0.0.0/4, and re-runs the same test binary inside it with
//! `FIELDSYNC_IN_NETNS=1`; the inner run does the real work.

use std::process::Command;

/// Set in the inner run.
const INNER: &str = "FIELDSYNC_IN_NETNS";

/// Where a test is running.
pub enum Netns {
    /// Inside the namespace: do the test's work now.
    Inner,
    /// Outside: the inner run has finished and passed (the outer test is done).
    Done,
    /// Namespaces are not permitted here (no root or no iproute2): the test is
    /// skipped, with a notice already printed.
    Skipped,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs the test `test_name` of this binary inside a fresh network namespace, or tells
/// the caller that it is the inner run. Panics when the inner run fails.
pub fn run_in_netns(test_name: &str) -> Netns {
    if std::env::var_os(INNER).is_some() {
        return Netns::Inner;
    }
    let ns = format!("fs-{}-{}", std::process::id(), test_name.len());
    if !ip(&["netns", "add", &ns]) {
        eprintln!(
            "cannot create a network namespace (needs root and iproute2): skipping {test_name}"
        );
        return Netns::Skipped;
    }
    let exec = |args: &[&str]| {
        let mut all = vec!["netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    };
    let ok = exec(&["ip", "link", "set", "lo", "up", "multicast", "on"])
        && exec(&["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]);
    let status = ok.then(|| {
        Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(std::env::current_exe().expect("test binary"))
            .args(["--exact", test_name, "--nocapture"])
            .env(INNER, "1")
            .status()
            .expect("run the inner test")
    });
    ip(&["netns", "del", &ns]);
    assert!(ok, "could not set up loopback multicast in the namespace");
    assert!(
        status.expect("inner run").success(),
        "the inner run of {test_name} failed"
    );
    Netns::Done
}
