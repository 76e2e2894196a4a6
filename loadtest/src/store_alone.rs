//! The gateway's store alone: the SQLite baseline's very rows ingested through the
//! gateway's own group-commit transaction (`Store::ingest_records`: chain heads read,
//! chains checked, the two-officer rule, the R3 case and target indexes, the commit),
//! grouped as the drain groups them, with no network, no decoding and no simulated
//! devices on the machine.
//!
//! Why: the ingest benchmark divides the gateway's drain by a plain insert into a
//! table with only its primary key. This figure says how much of the gap is the store
//! itself — what storing a record lawfully costs — and so the most any gateway built on
//! it could reach; the rest is transport, decoding and the harness sharing the cores.

use std::path::Path;
use std::time::Instant;

use protocol::DeviceId;
use protocol::deadline::ClockSkew;
use protocol::message::FieldRecord;
use store::IngestRules;
use store::{RecordBatch, Store, StoreConfig, StoreError};

use crate::baseline::{
    RowOrder, SQLITE_DEVICES, SQLITE_TRIES, baseline_devices, baseline_records, fresh_database,
};

/// Why the store-alone figure could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum StoreAloneError {
    /// The store refused or failed.
    #[error("the gateway's store: {0}")]
    Store(#[from] StoreError),
    /// Not every record was stored once: the measurement would be of something else.
    #[error("{stored} of {expected} records stored")]
    Incomplete {
        /// Records the store said it appended.
        stored: u64,
        /// Records ingested.
        expected: u64,
    },
}

/// How the drain's pushes reach the store: at most this many records per push, as in
/// the `ingest` scenario's drain.
const PUSH_RECORDS: usize = crate::sim::pushes::DRAIN_BATCH as usize;

/// The fastest of [`SQLITE_TRIES`] runs of [`measure_store`] (the baseline's rule) on
/// `rows` baseline records, grouped once for every run.
pub async fn fastest_store(dir: &Path, rows: usize) -> Result<f64, StoreAloneError> {
    let devices = baseline_devices(rows.min(SQLITE_DEVICES));
    let max_group = gateway::config::IngestConfig::default().max_batch_records as usize;
    let groups = groups(
        pushes(baseline_records(rows, RowOrder::ByDevice)),
        max_group,
    );
    let mut best = 0.0_f64;
    for _ in 0..SQLITE_TRIES {
        best = best.max(measure_store(dir, &devices, &groups).await?);
    }
    Ok(best)
}

/// Enrolls `devices` in a new store in `dir` and ingests `groups` one group commit
/// each; returns records per second from the first group's start to the last group's
/// commit.
pub async fn measure_store(
    dir: &Path,
    devices: &[DeviceId],
    groups: &[Vec<RecordBatch>],
) -> Result<f64, StoreAloneError> {
    let path = fresh_database(dir, "store-alone.db");
    let store = Store::open(&StoreConfig::Sqlite { path }).await?;
    let measured = ingest_all(&store, devices, groups).await;
    store.close().await;
    measured
}

async fn ingest_all(
    store: &Store,
    devices: &[DeviceId],
    groups: &[Vec<RecordBatch>],
) -> Result<f64, StoreAloneError> {
    let now = 1_790_000_000_000;
    store
        .import_enrollment(enrollment(devices).as_bytes(), None, "loadtest", now)
        .await?;
    let rows: usize = groups.iter().flatten().map(|p| p.records.len()).sum();
    let policy = IngestRules::default();
    let mut stored = 0;
    let started = Instant::now();
    for group in groups {
        let (_, summary) = store.ingest_records(group, &policy, now).await?;
        stored += summary.stored;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
    if stored != rows as u64 {
        return Err(StoreAloneError::Incomplete {
            stored,
            expected: rows as u64,
        });
    }
    Ok(rate)
}

/// An enrollment file for `devices` (each with its own made-up certificate
/// fingerprint: the store checks the foreign key, not the certificate).
fn enrollment(devices: &[DeviceId]) -> String {
    let mut out = store::ENROLLMENT_HEADER.join(",");
    for (i, id) in devices.iter().enumerate() {
        out.push_str(&format!(
            "\n{id},recorder,SN-{i},{:064x},2040-01-01T00:00:00Z",
            i + 1
        ));
    }
    out.push('\n');
    out
}

/// Each device's consecutive records cut into pushes of at most [`PUSH_RECORDS`].
fn pushes(records: Vec<(DeviceId, FieldRecord)>) -> Vec<RecordBatch> {
    let mut out: Vec<RecordBatch> = Vec::new();
    for (device, record) in records {
        match out.last_mut() {
            Some(push) if push.device == device && push.records.len() < PUSH_RECORDS => {
                push.records.push(record);
            }
            _ => out.push(RecordBatch {
                device,
                skew: ClockSkew::ZERO,
                records: vec![record],
            }),
        }
    }
    out
}

/// Pushes in order, grouped as the committer groups them: a group closes once it
/// holds `max_records` records.
fn groups(pushes: Vec<RecordBatch>, max_records: usize) -> Vec<Vec<RecordBatch>> {
    let mut out: Vec<Vec<RecordBatch>> = Vec::new();
    let mut held = 0;
    for push in pushes {
        if out.is_empty() || held >= max_records {
            out.push(Vec::new());
            held = 0;
        }
        held += push.records.len();
        out.last_mut().expect("a group is open").push(push);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::chain::ChainHead;
    use protocol::test_util::seal_chain;

    #[test]
    fn pushes_and_groups_follow_the_drain() {
        // 3,000 rows over 1,000 devices: three records each, one push per device,
        // groups close at 1,000 records (334 pushes: the last push overshoots).
        let records = baseline_records(3_000, RowOrder::ByDevice);
        let pushes = pushes(records);
        assert_eq!(pushes.len(), 1_000);
        assert!(pushes.iter().all(|p| p.records.len() == 3));
        let groups = groups(pushes, 1_000);
        let sizes: Vec<usize> = groups
            .iter()
            .map(|g| g.iter().map(|p| p.records.len()).sum())
            .collect();
        assert_eq!(sizes, [1_002, 1_002, 996]);
    }

    #[test]
    fn a_long_backlog_is_cut_into_pushes_of_at_most_256() {
        let device = DeviceId::new("dev-00000").unwrap();
        let contents = (1..=600).map(|made| crate::sim::record_content(0, &device, made, 1));
        let (records, _) = seal_chain(&device, ChainHead::GENESIS, contents);
        let one_device: Vec<(DeviceId, FieldRecord)> =
            records.into_iter().map(|r| (device.clone(), r)).collect();
        let sizes: Vec<usize> = pushes(one_device).iter().map(|p| p.records.len()).collect();
        assert_eq!(sizes, [256, 256, 88]);
    }

    #[tokio::test]
    async fn the_store_really_stores_every_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let rate = fastest_store(dir.path(), 2_050).await.unwrap();
        assert!(rate > 0.0);
        let store = Store::open(&StoreConfig::Sqlite {
            path: dir.path().join("store-alone.db"),
        })
        .await
        .unwrap();
        let device = DeviceId::new("dev-00000").unwrap();
        // 2,050 rows over 1,000 devices: dev-00000 made three, all chained.
        let head = store.chain_head(&device).await.unwrap();
        assert_eq!(head.next_sequence, 4);
        store.close().await;
    }
}
