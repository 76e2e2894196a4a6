//! The two kinds of transaction the store runs, on either backend.
//!
//! A **write** transaction is how every registry change and every audit append
//! happens. It starts by taking the audit chain head: on SQLite with `BEGIN IMMEDIATE`
//! (the database write lock, taken up front so two writers never deadlock upgrading a
//! read lock), on PostgreSQL with `SELECT ... FROM audit_head ... FOR UPDATE`. Either
//! way registry writes and audit appends are serialized across every connection and
//! every gateway, so the validation reads inside a write transaction are authoritative
//! and the chain never forks.
//!
//! A **read** transaction gives one consistent snapshot for reads that span several
//! statements (the audit walk, a roster delta).

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::StoreError;
use super::chain::{self, ChainHash};
use super::notify::EventHub;
use super::rows::DeviceStatusEvent;

/// The advisory-lock class of record chains on PostgreSQL (`pg_advisory_xact_lock(class,
/// hashtext(device))`).
const PG_CHAIN_LOCK_CLASS: i32 = 0x6673_7263; // "fsrc"

/// Takes the chain lock of each device (PostgreSQL: advisory locks, sorted and taken in
/// one statement so that two transactions never wait for each other in opposite
/// orders). A group commit holds it for the chains it appends to, and a flag review for
/// the devices whose flag changes it writes, so both commit each device's changes in
/// id order. SQLite writers are serialized by the database lock already.
pub(crate) async fn lock_chains<'a>(
    conn: &mut TxConn,
    devices: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    if let TxConn::Postgres(t) = conn {
        let ids: Vec<&str> = devices.into_iter().collect();
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1, k) FROM \
             (SELECT DISTINCT hashtext(d) AS k FROM unnest($2::text[]) AS d ORDER BY k) AS s",
        )
        .bind(PG_CHAIN_LOCK_CLASS)
        .bind(ids)
        .execute(&mut **t)
        .await?;
    }
    Ok(())
}

/// The pool of whichever backend the store was opened on.
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open transaction on either backend.
pub(crate) enum TxConn {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl TxConn {
    /// How this backend's multi-row statements name their parameters.
    pub(crate) fn placeholders(&self) -> super::sql::Placeholders {
        match self {
            TxConn::Sqlite(_) => super::sql::Placeholders::Anonymous,
            TxConn::Postgres(_) => super::sql::Placeholders::Numbered,
        }
    }
}

/// The last audit entry: its seq (0 for an empty log) and hash.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChainHead {
    pub(crate) seq: i64,
    pub(crate) hash: ChainHash,
}

const HEAD_SQL: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
const HEAD_SQL_LOCKED: &str = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";

/// A registry write transaction holding the audit chain head (see the module docs).
pub(crate) struct WriteTx {
    pub(crate) conn: TxConn,
    pub(crate) head: ChainHead,
    /// SQLite only: status events to publish in-process once the commit succeeded.
    after_commit: Vec<DeviceStatusEvent>,
}

impl WriteTx {
    /// Begins a write transaction and takes the audit chain head.
    pub(crate) async fn begin(db: &Db) -> Result<Self, StoreError> {
        let mut conn = match db {
            Db::Sqlite(pool) => TxConn::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
        };
        let (seq, hash): (i64, String) = match &mut conn {
            TxConn::Sqlite(t) => sqlx::query_as(HEAD_SQL).fetch_one(&mut **t).await?,
            TxConn::Postgres(t) => sqlx::query_as(HEAD_SQL_LOCKED).fetch_one(&mut **t).await?,
        };
        let hash = chain::parse_hash(&hash)
            .ok_or_else(|| StoreError::corrupt("audit chain head", format!("hash {hash:?}")))?;
        Ok(Self {
            conn,
            head: ChainHead { seq, hash },
            after_commit: Vec::new(),
        })
    }

    /// Publishes a device status change to every gateway, on commit only.
    ///
    /// PostgreSQL: `pg_notify` inside the transaction (the server delivers it on commit,
    /// to the listeners of every gateway, this one included). SQLite: queued and sent
    /// in-process after the commit succeeded.
    pub(crate) async fn device_status_changed(
        &mut self,
        event: DeviceStatusEvent,
    ) -> Result<(), StoreError> {
        match &mut self.conn {
            TxConn::Sqlite(_) => self.after_commit.push(event),
            TxConn::Postgres(t) => super::notify::pg_notify(t, &event).await?,
        }
        Ok(())
    }

    /// Commits, then publishes the queued in-process events. Failpoints (test
    /// builds): `audit.appended` stops the process with the change and its audit entry
    /// written and not committed, `audit.committed` right after the commit.
    pub(crate) async fn commit(self, hub: &EventHub) -> Result<(), StoreError> {
        durable::failpoint::crash_point("audit.appended");
        match self.conn {
            TxConn::Sqlite(t) => t.commit().await?,
            TxConn::Postgres(t) => t.commit().await?,
        }
        durable::failpoint::crash_point("audit.committed");
        for event in self.after_commit {
            hub.send(event);
        }
        Ok(())
    }

    /// Rolls back explicitly (dropping the transaction would too, a little later).
    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        match self.conn {
            TxConn::Sqlite(t) => t.rollback().await?,
            TxConn::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// A read-only transaction: one snapshot for a multi-statement read.
pub(crate) struct ReadTx {
    pub(crate) conn: TxConn,
}

impl ReadTx {
    /// SQLite: a deferred transaction (its first read fixes the WAL snapshot).
    /// PostgreSQL: `REPEATABLE READ READ ONLY` (one snapshot for the whole transaction).
    pub(crate) async fn begin(db: &Db) -> Result<Self, StoreError> {
        let conn = match db {
            Db::Sqlite(pool) => TxConn::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => TxConn::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        };
        Ok(Self { conn })
    }

    /// Ends the snapshot.
    pub(crate) async fn finish(self) -> Result<(), StoreError> {
        match self.conn {
            TxConn::Sqlite(t) => t.rollback().await?,
            TxConn::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}
