//! Faults at the durable steps (issue 20), against the real `gateway` binary with
//! failpoints set in its environment (a test build carries them; a release build has
//! none): stops at every durable step, I/O errors on write, fsync and rename, and full
//! disks.

#[path = "faults/crash_points.rs"]
mod crash_points;
#[path = "faults/disk_full.rs"]
mod disk_full;
#[path = "faults/io_errors.rs"]
mod io_errors;
#[path = "faults/support.rs"]
mod support;
