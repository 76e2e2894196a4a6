//! The agent's local store: one SQLite file (`agent.db`) in the data folder, in WAL
//! mode with `synchronous=FULL`, so a committed transaction survives a kill -9 or a
//! power cut. The file and its log are the device user's alone (mode 0600, in a 0700
//! data folder): they hold evidence. It holds the outbox of field records ([`records`]) and offline identity
//! checks ([`checks`]), the roster cache ([`roster`]), the recordings queue
//! ([`recordings`]) and small sync facts ([`state`]).
//!
//! Every write that must be atomic with a read (sealing a record onto the chain head,
//! re-chaining after a refusal) runs in a `BEGIN IMMEDIATE` transaction, which takes
//! SQLite's write lock up front: the CLI's `record` and the `run` daemon may write at
//! the same time from two processes and never fork the chain.

pub mod acks;
pub mod checks;
pub mod flags;
pub mod rechain;
pub mod recordings;
pub mod records;
pub mod roster;
pub mod state;

use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::DeviceId;
use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// File name of the local store inside the data folder.
pub const DB_FILE: &str = "agent.db";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// SQLite connections of an outbox by default.
pub const DEFAULT_CONNECTIONS: u32 = 2;

/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the local store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The device's disk is full: nothing of this write was stored (what was stored
    /// before is untouched).
    #[error(
        "the device's storage is full: nothing was stored; free some space and try again ({0})"
    )]
    Full(sqlx::Error),
    /// SQLite failed.
    #[error("local store: {0}")]
    Sqlite(sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("local store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not parse: the file was damaged or edited.
    #[error("local store is damaged: {what}: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_full(&e) {
            StoreError::Full(e)
        } else {
            StoreError::Sqlite(e)
        }
    }
}

/// SQLite's `SQLITE_FULL` (its extended codes keep 13 in the low byte), or the file
/// system's "no space" or "quota exceeded".
fn is_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| c & 0xff == 13),
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ),
        _ => false,
    }
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        StoreError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

/// The agent's SQLite file, for one device.
#[derive(Clone, Debug)]
pub struct Outbox {
    pool: SqlitePool,
    device: DeviceId,
    path: PathBuf,
}

impl Outbox {
    /// Opens (creating if needed) `agent.db` in `data_dir` for `device` and applies
    /// the migrations.
    pub async fn open(data_dir: &Path, device: DeviceId) -> Result<Self, StoreError> {
        Self::open_with_connections(data_dir, device, DEFAULT_CONNECTIONS).await
    }

    /// [`Outbox::open`] with at most `max_connections` SQLite connections (at least
    /// one). Each connection holds two file descriptors and a thread; a process that
    /// runs thousands of agents (`loadtest`) gives each a single one.
    pub async fn open_with_connections(
        data_dir: &Path,
        device: DeviceId,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        durable::files::private_dir(data_dir).map_err(sqlx::Error::Io)?;
        let path = data_dir.join(DB_FILE);
        durable::files::private_database(&path).map_err(sqlx::Error::Io)?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // A transaction SQLite rolled back by itself (a full disk does that) leaves sqlx
        // counting it as open, and every later `BEGIN` on that connection fails: such a
        // connection is closed instead of handed out again.
        let pool = SqlitePoolOptions::new()
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .max_connections(max_connections.max(1))
            .min_connections(0)
            .idle_timeout(Some(Duration::from_secs(60)))
            .connect_with(options)
            .await?;
        if let Err(first) = MIGRATIONS.run(&pool).await {
            // Another agent process (the daemon, a `record`) may have been applying the
            // same migration at the same moment; once it has, ours is a no-op.
            tracing::debug!(error = %first, "migration failed once; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
            MIGRATIONS.run(&pool).await?;
        }
        Ok(Self { pool, device, path })
    }

    /// The device whose chain this outbox holds.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection pool (for the modules of this store).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for its connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Reads a 32-byte hash column.
pub(crate) fn hash_column(
    what: &'static str,
    bytes: &[u8],
) -> Result<protocol::Sha256Hash, StoreError> {
    protocol::Sha256Hash::from_slice(bytes).map_err(|e| StoreError::corrupt(what, e.0))
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// An outbox on a real SQLite file in a fresh folder.
    pub(crate) async fn outbox() -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), DeviceId::new("dev-test").unwrap())
            .await
            .unwrap();
        (dir, outbox)
    }

    /// The `i`th field record of a test case.
    pub(crate) use protocol::test_util::numbered_content as content;

    /// Makes records 1..=n.
    pub(crate) async fn make(outbox: &Outbox, n: u64) {
        for i in 1..=n {
            outbox
                .record(content(i), &protocol::Limits::default(), 1)
                .await
                .unwrap();
        }
    }

    /// What a push of `records` looked like, for planning acks.
    pub(crate) fn sent(records: &[records::OutboxRecord]) -> Vec<acks::Sent> {
        records
            .iter()
            .map(|r| acks::Sent {
                entry: r.entry,
                sequence: r.record.sequence,
            })
            .collect()
    }
}
