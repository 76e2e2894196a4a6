//! The gateway stopped (SIGKILL, from a failpoint) at each durable step in turn, on
//! SQLite and PostgreSQL: after every restart nothing a device saw acknowledged is
//! lost, nothing is stored twice, every chain and the audit log verify, no device has
//! deleted a recording the gateway does not hold, and every published file matches its
//! hash. The steps and what must hold after each: docs/durability.md.
//!
//! One process start serves two checks: it recovers from the previous stop (checked
//! at once) and runs the work that stops it at the next point.

use test_support::backends;

use crate::support::{STOP_WAIT, Site, assert_stopped_at};

/// The gateway's crash points, in the order the test stops at them.
const POINTS: &[&str] = &[
    // Ingest: the group's rows written, not committed; committed, acks not sent; the
    // device has its acks.
    "ingest.group_written",
    "ingest.committed",
    "reply.acks_delivered",
    // Upload: a chunk written, not fsync'd; fsync'd, its offset not stored; stored, not
    // replied.
    "upload.chunk_written",
    "upload.chunk_fsynced",
    "upload.offset_stored",
    // Publish: renamed into the media store, folder not fsync'd; every fsync done, the
    // row not committed; committed, "stored" not sent; the device has "stored".
    "publish.renamed",
    "publish.folder_synced",
    "publish.row_committed",
    "reply.stored_delivered",
    // An audited change (an operator creates an agency): entry written, not committed;
    // committed, not replied.
    "audit.appended",
    "audit.committed",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_stopped_at_every_durable_step_loses_nothing_acknowledged() {
    for backend in backends().await {
        let mut site = Site::new(&backend);
        let mut after = "the first start".to_owned();
        for (round, point) in POINTS.iter().enumerate() {
            let mut gateway = site.start(&format!("{point}=return(crash)"), &[]).await;
            site.check(&format!("{} ({after})", backend.name())).await;
            // The devices' work ends when the gateway does: a device whose gateway
            // vanished mid-request is as if it had been switched off there.
            tokio::select! {
                () = site.work(round) => {}
                _ = gateway.exited(STOP_WAIT) => {}
            }
            assert_stopped_at(&mut gateway, point).await;
            after = format!("a stop at {point}");
        }
        let _gateway = site.start("", &[]).await;
        site.drain_and_check_all(&format!(
            "{} (after {after} and a clean start)",
            backend.name()
        ))
        .await;
    }
}
