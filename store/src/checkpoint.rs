//! Checkpoints of the SQLite write-ahead log, off the commit path.
//!
//! Why: SQLite's automatic checkpoint runs inside whichever commit makes the log pass
//! 1,000 pages. That commit copies the log into the database file and fsyncs it before
//! it returns: tens of milliseconds during which every record waiting on that group
//! commit waits too (the ingest benchmark's 99th-percentile ack latency was 60–76 ms
//! with it, 27–39 ms without). So the gateway's connections never checkpoint on their
//! own (`wal_autocheckpoint = 0`, see [`super::config`]), and this task runs a
//! `PASSIVE` checkpoint every [`INTERVAL`] on a pooled connection: it copies what
//! readers allow without taking the write lock, off the commit path. Durability does
//! not change: a commit is durable once the log is fsync'd. When the store closes,
//! SQLite checkpoints with its last connection.
//!
//! SQLite starts the log again from its beginning only when a write begins while every
//! frame has been copied. Under a steady stream of group commits that moment never
//! comes: the committer appends while the task copies, so the log grew without
//! bound (625 MiB in one load-test run, with the database at 250 MiB), and every
//! commit paid for it — a longer write-ahead index to search, and a log file that grew
//! page by page. So the task also publishes how long the log is ([`LogLength`]), and
//! once it passes [`RESTART_FRAMES`] the record committer completes a checkpoint
//! itself between two groups (`Store::keep_log_short`): with no writer appending, it
//! copies the few frames the task has not, and the next commit starts the log from its
//! beginning.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Time between two checkpoints.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// Frames in the log past which the committer completes a checkpoint (16 MiB of 4 KiB
/// pages: a few dozen group commits).
pub(crate) const RESTART_FRAMES: i64 = 4096;

/// The write-ahead log as the checkpoints see it: its length in frames when the last
/// checkpoint ran, and a lock so that the task's and the committer's checkpoints take
/// turns (SQLite runs one at a time and refuses the other at once).
#[derive(Clone, Debug, Default)]
pub(crate) struct LogLength {
    frames: Arc<AtomicI64>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl LogLength {
    /// True when the log has grown past [`RESTART_FRAMES`].
    pub(crate) fn wants_restart(&self) -> bool {
        self.frames.load(Ordering::Relaxed) > RESTART_FRAMES
    }

    /// Runs a passive checkpoint on `pool` once no other checkpoint of this store runs
    /// (`by_writer == false`: the task), or only if none runs now (`by_writer`: the
    /// committer, which never waits; `None` when one does), and notes how long the log
    /// is. Only the writer's own complete checkpoint (every frame copied, and no commit
    /// in between) means its next commit restarts the log, so only then does the
    /// length stop counting: the task's copy is complete only up to the frames the
    /// committer appended meanwhile.
    pub(crate) async fn checkpoint(
        &self,
        pool: &SqlitePool,
        by_writer: bool,
    ) -> Result<Option<(i64, i64, i64)>, sqlx::Error> {
        let _turn = if by_writer {
            match self.turn.try_lock() {
                Ok(turn) => turn,
                Err(_) => return Ok(None),
            }
        } else {
            self.turn.lock().await
        };
        let (busy, log, copied) = passive(pool).await?;
        let restarts = by_writer && busy == 0 && copied >= log;
        self.frames
            .store(if restarts { 0 } else { log }, Ordering::Relaxed);
        Ok(Some((busy, log, copied)))
    }
}

/// Runs `PRAGMA wal_checkpoint(PASSIVE)` on `pool`: (busy, frames in the log, frames
/// copied); busy when a reader or another checkpoint held it back.
pub(crate) async fn passive(pool: &SqlitePool) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await
}

/// The running checkpoint task.
pub(crate) struct Checkpointer {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts checkpointing `pool`'s database every [`INTERVAL`], publishing the log's
    /// length in `length`.
    pub(crate) fn start(pool: SqlitePool, length: LogLength) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(pool, length, stop.clone()));
        Self { stop, task }
    }

    /// Stops the task (a checkpoint in progress finishes first).
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn run(pool: SqlitePool, length: LogLength, stop: CancellationToken) {
    // A failure is logged when it starts and when it ends, not ten times a second.
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(INTERVAL) => {}
        }
        // Busy: the next round copies the rest.
        match length.checkpoint(&pool, false).await {
            Ok(done) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("write-ahead log checkpoints work again");
                }
                tracing::trace!(?done, "write-ahead log checkpoint (busy, log, copied)");
            }
            Err(sqlx::Error::PoolClosed) => break,
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, "write-ahead log checkpoint failed; retrying");
                }
            }
        }
    }
}

impl super::Store {
    /// Completes a checkpoint on the record committer's own connection when the log
    /// has grown past [`RESTART_FRAMES`], so the next group commit starts the log
    /// again (see the module docs). The committer calls it between two groups, after
    /// the acks went out; it does nothing on PostgreSQL or while the log is short.
    pub async fn keep_log_short(&self) -> Result<(), super::StoreError> {
        let Some(super::tx::Db::Sqlite(pool)) = &self.inner.ingest else {
            return Ok(());
        };
        let length = &self.inner.log_length;
        if !length.wants_restart() {
            return Ok(());
        }
        // While the task's checkpoint runs, the next group tries again: the committer
        // never waits for the task's copying.
        let done = length.checkpoint(pool, true).await?;
        tracing::debug!(
            ?done,
            "write-ahead log checkpoint by the committer (busy, log, copied)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_log_is_copied_into_the_database_without_automatic_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(super::super::config::sqlite_options(&path).unwrap())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(&pool)
            .await
            .unwrap();
        for _ in 0..80 {
            sqlx::query("INSERT INTO t VALUES (zeroblob(65536))")
                .execute(&pool)
                .await
                .unwrap();
        }
        let frames = || async {
            let (_, log, copied) = passive(&pool).await.unwrap();
            (log, copied)
        };
        // About 1,300 pages were written, past SQLite's automatic threshold of 1,000,
        // and no commit copied any into the database; one passive checkpoint (no
        // reader in the way) copies them all.
        let db_before = std::fs::metadata(&path).unwrap().len();
        let (log, copied) = frames().await;
        assert!(log >= 1200, "the log holds every write: {log} frames");
        assert_eq!(
            copied, log,
            "a passive checkpoint with no reader copies all"
        );
        assert!(std::fs::metadata(&path).unwrap().len() > db_before + 5_000_000);

        let checkpointer = Checkpointer::start(pool.clone(), LogLength::default());
        sqlx::query("INSERT INTO t VALUES (zeroblob(65536))")
            .execute(&pool)
            .await
            .unwrap();
        // The first write after a complete checkpoint restarted the log from its start.
        let (log, _) = frames().await;
        assert!(log < 100, "{log} frames");
        checkpointer.stop().await;
        pool.close().await;
    }

    #[tokio::test]
    async fn the_committers_checkpoint_restarts_a_long_log_the_tasks_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = crate::Store::open(&crate::StoreConfig::Sqlite { path: path.clone() })
            .await
            .unwrap();
        // This test runs the task's checkpoints itself, at chosen moments.
        let task = store.inner.checkpointer.lock().unwrap().take().unwrap();
        task.stop().await;
        let Some(super::super::tx::Db::Sqlite(writer)) = &store.inner.ingest else {
            panic!("a SQLite store has its own ingest connection");
        };
        let super::super::tx::Db::Sqlite(pool) = &store.inner.db else {
            panic!("SQLite");
        };
        let length = &store.inner.log_length;
        let wal_bytes = || {
            std::fs::metadata(dir.path().join("store.db-wal"))
                .unwrap()
                .len()
        };
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(writer)
            .await
            .unwrap();
        let write = |rows: usize| async move {
            for _ in 0..rows {
                sqlx::query("INSERT INTO t VALUES (zeroblob(65536))")
                    .execute(writer)
                    .await
                    .unwrap();
            }
        };
        // About 4,900 frames of 4 KiB in all, past RESTART_FRAMES; a reader's snapshot
        // from half-way holds the task's copy back, as the committer's appends during
        // a copy do under load.
        write(150).await;
        let mut reader = pool.begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *reader)
            .await
            .unwrap();
        write(150).await;
        let (_, log, copied) = length.checkpoint(pool, false).await.unwrap().unwrap();
        assert!(
            log > RESTART_FRAMES && copied < log,
            "{log} frames, {copied} copied"
        );
        assert!(length.wants_restart());
        reader.commit().await.unwrap();

        // Without a complete checkpoint the next commit appends to the long log.
        let before = wal_bytes();
        write(1).await;
        assert!(wal_bytes() > before, "the log grew");

        // The committer's turn: a complete checkpoint on the writer's connection, after
        // which its next commit writes the log from its start.
        store.keep_log_short().await.unwrap();
        assert!(!length.wants_restart());
        let before = wal_bytes();
        write(1).await;
        assert_eq!(wal_bytes(), before, "the log restarted in place");
        let (_, log, _) = passive(pool).await.unwrap();
        assert!(log < 100, "{log} frames");
        store.close().await;
    }
}
