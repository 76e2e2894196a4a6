//! Measures the store's durable ingest path (chain verification, two-officer check,
//! multi-row inserts, one commit per group) against the fastest plain sqlx insert of
//! the same rows: multi-row INSERT statements of 100 rows, 1,000 rows per transaction,
//! SQLite WAL with `synchronous=FULL`, in the same run on the same disk.
//!
//! ```text
//! cargo run --release -p gateway --example ingest_bench -- [DEVICES] [ROUNDS]
//! ```
//!
//! Each round, every device pushes 10 records; groups of 100 pushes (1,000 records)
//! are committed together, as the group committer does under load.

use std::time::Instant;

use anyhow::Context;
use gateway::store::{NewDevice, RecordBatch, Store, StoreConfig};
use protocol::DeviceId;
use protocol::chain::{ChainHead, seal};
use protocol::deadline::ClockSkew;
use protocol::domain::{DeviceKind, Stage};
use protocol::message::{FieldRecord, RecordContent};
use protocol::two_officer::TwoOfficerPolicy;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

const RECORDS_PER_PUSH: usize = 10;
const PUSHES_PER_GROUP: usize = 100;
const COLUMNS: usize = 19;

fn content(device: usize, k: usize) -> RecordContent {
    RecordContent {
        case_number: format!("C-{device}"),
        target: "Shop 7, Market Street".into(),
        stage: Stage::Investigation,
        action_kind: "inspection".into(),
        text: format!("entry {k}: goods inspected, labels checked, photographs taken"),
        officers: vec!["ZF-001".into(), "ZF-002".into()],
        location: Some("No. 7 Market Street".into()),
        coordinates: None,
        made_at: 1_790_000_000_000 + k as i64,
        recordings: vec![],
        corrects: None,
    }
}

/// Every device's records for `rounds` rounds, grouped as the committer would.
fn groups(devices: &[DeviceId], rounds: usize) -> Vec<Vec<RecordBatch>> {
    let mut heads = vec![ChainHead::GENESIS; devices.len()];
    let mut pushes = Vec::new();
    for round in 0..rounds {
        for (i, device) in devices.iter().enumerate() {
            let records = (0..RECORDS_PER_PUSH)
                .map(|k| {
                    let r = seal(device, &heads[i], content(i, round * RECORDS_PER_PUSH + k));
                    heads[i] = heads[i].advance(&r);
                    r
                })
                .collect();
            pushes.push(RecordBatch {
                device: device.clone(),
                skew: ClockSkew::from_millis(0),
                records,
            });
        }
    }
    let mut out = Vec::new();
    let mut pushes = pushes.into_iter().peekable();
    while pushes.peek().is_some() {
        out.push(pushes.by_ref().take(PUSHES_PER_GROUP).collect());
    }
    out
}

async fn baseline(path: &std::path::Path, groups: &[Vec<RecordBatch>]) -> anyhow::Result<f64> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = sqlx::SqlitePool::connect_with(options).await?;
    sqlx::query(
        "CREATE TABLE rows (device_id TEXT, sequence INTEGER, previous_hash TEXT, hash TEXT, \
         case_number TEXT, target TEXT, stage TEXT, action_kind TEXT, text TEXT, officers TEXT, \
         location TEXT, lat_e6 INTEGER, lon_e6 INTEGER, made_at INTEGER, made_at_gateway INTEGER, \
         recordings TEXT, corrects INTEGER, clock_skew_ms INTEGER, received_at INTEGER, \
         PRIMARY KEY (device_id, sequence))",
    )
    .execute(&pool)
    .await?;
    let started = Instant::now();
    for group in groups {
        let rows: Vec<(&DeviceId, &FieldRecord)> = group
            .iter()
            .flat_map(|b| b.records.iter().map(move |r| (&b.device, r)))
            .collect();
        let mut tx = pool.begin().await?;
        for chunk in rows.chunks(100) {
            let placeholders: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let cols: Vec<String> = (1..=COLUMNS)
                        .map(|c| format!("${}", i * COLUMNS + c))
                        .collect();
                    format!("({})", cols.join(", "))
                })
                .collect();
            let sql = format!("INSERT INTO rows VALUES {}", placeholders.join(", "));
            let mut q = sqlx::query(&sql);
            for (device, r) in chunk {
                let c = &r.content;
                q = q
                    .bind(device.as_str())
                    .bind(r.sequence as i64)
                    .bind(r.previous_hash.to_hex())
                    .bind(r.hash.to_hex())
                    .bind(&c.case_number)
                    .bind(&c.target)
                    .bind(c.stage.as_str())
                    .bind(&c.action_kind)
                    .bind(&c.text)
                    .bind(serde_json::to_string(&c.officers)?)
                    .bind(c.location.as_deref())
                    .bind(None::<i64>)
                    .bind(None::<i64>)
                    .bind(c.made_at)
                    .bind(c.made_at)
                    .bind("[]")
                    .bind(None::<i64>)
                    .bind(0_i64)
                    .bind(0_i64);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    pool.close().await;
    Ok(seconds)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let devices: usize = args
        .next()
        .map_or(Ok(1000), |a| a.parse())
        .context("DEVICES")?;
    let rounds: usize = args
        .next()
        .map_or(Ok(20), |a| a.parse())
        .context("ROUNDS")?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::Sqlite {
        path: dir.path().join("fieldsync.db"),
    })
    .await?;
    let ids: Vec<DeviceId> = (0..devices)
        .map(|i| DeviceId::new(format!("dev-{i:05}")))
        .collect::<Result<_, _>>()?;
    for (i, id) in ids.iter().enumerate() {
        let device = NewDevice {
            id: id.clone(),
            kind: DeviceKind::Terminal,
            serial: format!("SN-{i}"),
            certificate_fingerprint: format!("{:064x}", i + 1),
            certificate_not_after: i64::MAX / 2,
            agency: None,
        };
        store.enroll_device(&device, "bench", 0).await?;
    }
    let groups = groups(&ids, rounds);
    let total: usize = groups.iter().flatten().map(|b| b.records.len()).sum();
    let policy = TwoOfficerPolicy::default();

    let started = Instant::now();
    for group in &groups {
        store.ingest_records(group, &policy, 0).await?;
    }
    let ingest = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        store.record_count().await? == total as u64,
        "every record stored"
    );
    store.close().await;

    let plain = baseline(&dir.path().join("baseline.db"), &groups).await?;
    let ingest_rate = total as f64 / ingest;
    let plain_rate = total as f64 / plain;
    println!(
        "records: {total} from {devices} devices, {} per commit",
        RECORDS_PER_PUSH * PUSHES_PER_GROUP
    );
    println!("store ingest (verify + insert + commit): {ingest_rate:.0} records/s");
    println!("plain multi-row insert baseline:         {plain_rate:.0} rows/s");
    println!("ratio: {:.2}", ingest_rate / plain_rate);
    Ok(())
}
