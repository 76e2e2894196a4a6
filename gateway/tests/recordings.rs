//! Recordings and the 24-hour rule (issue 6), against a real gateway over mutual-TLS
//! QUIC on loopback, on SQLite and (with `FIELDSYNC_TEST_PG`) PostgreSQL: upload and
//! verification, interruption and resume, a full disk, deadline states on a manual
//! clock, device clocks that cannot be trusted, the full-process flags, the upload
//! report, and the S3 media backend against a real S3-compatible server (moto) on
//! loopback.

#[path = "recordings/clocks.rs"]
mod clocks;
#[path = "recordings/deadlines.rs"]
mod deadlines;
#[path = "recordings/flags.rs"]
mod flags;
#[path = "recordings/full_disk.rs"]
mod full_disk;
#[path = "recordings/hostile.rs"]
mod hostile;
#[path = "recordings/interrupt.rs"]
mod interrupt;
#[path = "recordings/kill.rs"]
mod kill;
#[path = "recordings/modes.rs"]
mod modes;
#[path = "recordings/s3.rs"]
mod s3;
#[path = "recordings/s3_checksums.rs"]
mod s3_checksums;
#[path = "recordings/shared_media.rs"]
mod shared_media;
#[path = "recordings/support.rs"]
mod support;
#[path = "recordings/upload.rs"]
mod upload;
