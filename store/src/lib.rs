//! The gateway's store: the device registry (agencies, officers, devices, operators),
//! field records and identity checks, recordings and their flags, the hash-chained audit
//! log, and the revocation broadcast, over SQLite (one file, the embedded default) or
//! PostgreSQL (several gateways sharing one database). The schema migrations are this
//! crate's (`migrations/`), embedded at build time and applied by [`Store::open`].
//!
//! One [`Store`] handle, one set of methods, SQL written once with `$1, $2, …`
//! placeholders (SQLite accepts them too). The `on_pool!` and `on_tx!` macros expand
//! the same query code once per backend with the native sqlx types, so there is no
//! `Any` driver and no runtime SQL rewriting. Where the dialects differ (locking the
//! chain head, `pg_notify`, the read snapshot) the difference stays in one function.
//!
//! Every registry change is validated and audited in the same write transaction; a
//! refused change writes nothing. Time is always a parameter (`now`, ms since the
//! Unix epoch, UTC): the store never reads a clock. The store knows nothing of the
//! gateway: the rules it applies (clock policy, two-officer policy, action kinds) come
//! in as values of `protocol`'s types, and its errors are its own ([`StoreError`]).

/// Runs the same query code on whichever pool the store has; `$p` is the
/// `&SqlitePool` or `&PgPool` (both are executors and `Copy`).
macro_rules! on_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::tx::Db::Sqlite($p) => $body,
            $crate::tx::Db::Postgres($p) => $body,
        }
    };
}

/// Runs the same query code inside a transaction on either backend; `$c` is the
/// `&mut SqliteConnection` or `&mut PgConnection` (pass it as `&mut *$c`).
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut $tx.conn {
            $crate::tx::TxConn::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::tx::TxConn::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

mod agencies;
mod allocation;
mod assignments;
mod audit;
mod bulk;
pub mod chain;
mod checkpoint;
mod config;
mod devices;
mod enrollment;
mod error;
mod flag_reviews;
mod notify;
mod officers;
mod operators;
mod rows;
pub mod sql;
mod tx;
// Field records, identity checks and certificate history (issue 5).
mod certificate_history;
mod identity_checks;
mod ingest_rules;
mod officer_lookups;
mod record_plan;
mod record_reads;
mod records;
mod tamper;
// Recordings, the 24-hour rule and the full-process flags (issue 6).
pub mod recordings;

use std::sync::{Arc, Mutex, PoisonError};

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::broadcast;

pub use allocation::{AgencyAllocationFacts, AllocationFacts, AllocationSnapshotRow};
pub use assignments::{AssignmentChange, FieldChange};
pub use audit::{AuditEntry, AuditError, AuditReport, RefusedConnections, actions};
pub use bulk::{DeviceImportOutcome, DeviceImportRow, ImportMode, RowError};
pub use certificate_history::{CertificateState, status_at};
pub use config::StoreConfig;
pub use enrollment::{ENROLLMENT_HEADER, ImportSummary, check_enrollment_file};
pub use error::StoreError;
pub use flag_reviews::{
    Decision, REVIEW_ACTOR, ReviewCause, TwoOfficerFlagChange, Violation, decide,
};
pub use identity_checks::{IdentityCheckRow, roster_entry};
pub use ingest_rules::IngestRules;
pub use operators::{
    OperatorRole, OperatorToken, OperatorTokenError, UnknownRole, operator_actions,
};
pub use record_reads::{RecordView, StoredRecord, TamperFlag, TwoOfficerFlag};
pub use recordings::{Announced, RecordingRow, StateChange};
pub use records::{IngestSummary, RecordBatch};
pub use rows::{
    AgencyRow, DeviceRow, DeviceStatusEvent, NewAgency, NewDevice, OfficerChange, OfficerRecord,
    OfficerRow, RosterPage,
};
pub use tamper::TamperFlagCount;

use notify::{EventHub, ListenerTask};
use tx::Db;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a [`Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file: a single gateway.
    Sqlite,
    /// PostgreSQL: one or several gateways.
    Postgres,
}

/// The gateway's handle on its database. Cheap to clone (all clones share one pool);
/// call [`Store::close`] once at shutdown.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    /// SQLite only: the record committer's own connection (see [`Store::ingest_db`]).
    ingest: Option<Db>,
    events: EventHub,
    listener: Mutex<Option<ListenerTask>>,
    /// SQLite only: the write-ahead log's checkpoints.
    checkpointer: Mutex<Option<checkpoint::Checkpointer>>,
    /// SQLite only: the log's length as the checkpoints found it.
    log_length: checkpoint::LogLength,
    /// The group commits' officer lookups and their cache of absent numbers.
    officer_lookups: officer_lookups::OfficerLookups,
    /// The rules registry changes and queued reviews judge two-officer flags by (the
    /// ones ingest applies; see [`Store::use_rules`]).
    rules: std::sync::RwLock<Arc<ingest_rules::IngestRules>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database, applies the embedded migrations, and on
    /// PostgreSQL starts listening for status changes made by any gateway.
    ///
    /// Returns only once the listener is subscribed, so no change committed after
    /// `open` returns can be missed.
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let events = EventHub::new();
        let mut checkpointer = None;
        let mut ingest = None;
        let log_length = checkpoint::LogLength::default();
        let (db, listener) = match config {
            StoreConfig::Sqlite { path } => {
                let pool = config::sqlite_pool_options()
                    .max_connections(config::SQLITE_POOL_SIZE)
                    .connect_with(config::sqlite_options(path)?)
                    .await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
                ingest = Some(Db::Sqlite(config::sqlite_ingest_pool(path).await?));
                checkpointer = Some(checkpoint::Checkpointer::start(
                    pool.clone(),
                    log_length.clone(),
                ));
                (Db::Sqlite(pool), None)
            }
            StoreConfig::Postgres { url, schema } => {
                let options = config::postgres_options(url, schema.as_deref())?;
                let pool = PgPoolOptions::new()
                    .max_connections(config::PG_POOL_SIZE)
                    .connect_with(options.clone())
                    .await?;
                let current: Option<String> = sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(&pool)
                    .await?;
                let Some(current) = current else {
                    pool.close().await;
                    return Err(StoreError::BadConfig(format!(
                        "schema {:?} does not exist (create it first)",
                        schema.as_deref().unwrap_or("(search_path)")
                    )));
                };
                if let Err(e) = POSTGRES_MIGRATIONS.run(&pool).await {
                    pool.close().await;
                    return Err(e.into());
                }
                let listener = match notify::start_listener(options, current, events.sender()).await
                {
                    Ok(listener) => listener,
                    Err(e) => {
                        pool.close().await;
                        return Err(e);
                    }
                };
                (Db::Postgres(pool), Some(listener))
            }
        };
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                ingest,
                events,
                listener: Mutex::new(listener),
                checkpointer: Mutex::new(checkpointer),
                log_length,
                officer_lookups: officer_lookups::OfficerLookups::default(),
                rules: std::sync::RwLock::new(Arc::default()),
            }),
        })
    }

    /// Stops the notification listener and the checkpoint task, ends the status-event
    /// channel (receivers then see `Closed`), and closes the pool, waiting for
    /// connections to be returned.
    /// Calling it again is harmless.
    pub async fn close(&self) {
        /// The task in `slot`, taken out so that a second close finds none.
        fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
            slot.lock().unwrap_or_else(PoisonError::into_inner).take()
        }
        if let Some(listener) = take(&self.inner.listener) {
            listener.stop().await;
        }
        if let Some(checkpointer) = take(&self.inner.checkpointer) {
            checkpointer.stop().await;
        }
        self.inner.events.close();
        if let Some(ingest) = &self.inner.ingest {
            on_pool!(ingest, pool => pool.close().await);
        }
        on_pool!(&self.inner.db, pool => pool.close().await);
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.inner.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Subscribes to device status changes, so the QUIC endpoint can close a revoked
    /// device's live connection at once.
    ///
    /// On SQLite the events of this process are delivered; on PostgreSQL those of every
    /// gateway sharing the database. A [`DeviceStatusEvent::Resync`] (or a `Lagged`
    /// receive error) means events may have been lost: re-check every live connection.
    pub fn device_status_events(&self) -> broadcast::Receiver<DeviceStatusEvent> {
        self.inner.events.subscribe()
    }

    /// Officer lookup statements the group commits ran since the store was opened:
    /// one per group that names officers not known to be absent, none for a group whose
    /// numbers are all known absent at the current roster version.
    pub fn officer_lookup_statements(&self) -> u64 {
        self.inner.officer_lookups.statements()
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Sets the rules that registry changes and queued reviews judge two-officer flags
    /// by: the gateway passes its configured ones at start, the same ones its ingest
    /// applies. Why here and not an argument: every officer change (API, import,
    /// tests) reviews flags, and each would otherwise have to carry the vocabulary.
    /// Until set, the protocol's defaults.
    pub fn use_rules(&self, rules: ingest_rules::IngestRules) {
        *self
            .inner
            .rules
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
    }

    fn rules(&self) -> Arc<ingest_rules::IngestRules> {
        self.inner
            .rules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Where record ingest runs its group commits. On SQLite a pool of one connection
    /// kept open for good: the committer runs one group at a time, and the same
    /// connection keeps its page cache (the indexes' upper pages) from one group to
    /// the next; through the shared pool each group took the connection idle longest,
    /// whose cache the other connections' commits had made stale. (In the load test
    /// the gain was within the noise; it costs one connection.) It is also the
    /// connection that restarts the write-ahead log (`Store::keep_log_short`). On
    /// PostgreSQL the shared pool.
    fn ingest_db(&self) -> &Db {
        self.inner.ingest.as_ref().unwrap_or(&self.inner.db)
    }

    async fn write(&self) -> Result<tx::WriteTx, StoreError> {
        tx::WriteTx::begin(&self.inner.db).await
    }

    async fn commit(&self, tx: tx::WriteTx) -> Result<(), StoreError> {
        tx.commit(&self.inner.events).await
    }
}

/// The one result of a batch call made with one item: single-item operations are their
/// batch form with a slice of one, so both run the same transaction code.
fn only<T>(mut results: Vec<T>) -> T {
    let one = results.pop().expect("a batch of one gives one result");
    debug_assert!(results.is_empty());
    one
}
