//! Checkpoints of the SQLite write-ahead log, off the commit path.
//!
//! Why: SQLite's automatic checkpoint runs inside whichever commit makes the log pass
//! 1,000 pages. That commit copies the log into the database file and fsyncs it before
//! it returns: tens of milliseconds during which every record waiting on that group
//! commit waits too (the ingest benchmark's 99th-percentile ack latency was 60–76 ms
//! with it, 27–39 ms without). So the gateway's connections never checkpoint on their
//! own (`wal_autocheckpoint = 0`, see [`super::config`]), and this task runs a
//! `PASSIVE` checkpoint every [`INTERVAL`] on a pooled connection: it copies what
//! readers allow without taking the write lock, and the first write after a complete
//! checkpoint starts the log again from its beginning, so the log stays small under
//! load. Durability does not change: a commit is durable once the log is fsync'd. When
//! the store closes, SQLite checkpoints with its last connection.

use std::time::Duration;

use sqlx::SqlitePool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Time between two checkpoints.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// The running checkpoint task.
pub(crate) struct Checkpointer {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts checkpointing `pool`'s database every [`INTERVAL`].
    pub(crate) fn start(pool: SqlitePool) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(pool, stop.clone()));
        Self { stop, task }
    }

    /// Stops the task (a checkpoint in progress finishes first).
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn run(pool: SqlitePool, stop: CancellationToken) {
    // A failure is logged when it starts and when it ends, not ten times a second.
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(INTERVAL) => {}
        }
        // (busy, frames in the log, frames copied): busy when a reader or another
        // checkpoint held it back; the next round copies the rest.
        let done: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
        match done {
            Ok((busy, log, copied)) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("write-ahead log checkpoints work again");
                }
                tracing::trace!(busy, log, copied, "write-ahead log checkpoint");
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
            let (_, log, copied): (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
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

        let checkpointer = Checkpointer::start(pool.clone());
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
}
