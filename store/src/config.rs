//! Store configuration: which backend, where, and how each pooled connection is set up.
//!
//! SQLite (one file, the embedded default) suits a single gateway; PostgreSQL suits
//! several gateways sharing one registry. Everything that makes a write durable
//! (WAL + `synchronous=FULL`, foreign keys, the busy timeout, the PostgreSQL
//! `search_path`) is decided here, once, for every connection of the pool.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;

/// Where the gateway keeps its registry and audit log.
///
/// Read from the `[store]` table of the gateway's TOML configuration, e.g.
/// `backend = "postgres"`, `url = "postgres://..."`, `schema = "fieldsync"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// One SQLite file, created (with its parent directory) if missing.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database shared by several gateways.
    Postgres {
        /// Connection URL, `postgres://user@host:port/database`.
        url: String,
        /// Schema that holds fieldsync's tables (it must already exist). When unset the
        /// server's default `search_path` is used.
        #[serde(default)]
        schema: Option<String>,
    },
}

impl Default for StoreConfig {
    /// One file under the data directory, so that a new machine runs a working gateway
    /// with no configuration.
    fn default() -> Self {
        StoreConfig::Sqlite {
            path: PathBuf::from("data/fieldsync.db"),
        }
    }
}

/// How long a SQLite writer waits for another writer before giving up.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per SQLite pool (writes are serialized by SQLite itself).
pub(crate) const SQLITE_POOL_SIZE: u32 = 4;
/// Connections per PostgreSQL pool (the notification listener has its own).
pub(crate) const PG_POOL_SIZE: u32 = 8;
/// `application_name` of the store's pooled PostgreSQL connections.
pub(crate) const PG_APPLICATION_NAME: &str = "fieldsync-gateway";

/// Connect options for the SQLite file: durable (WAL + `synchronous=FULL`, so a
/// committed transaction survives power loss), with foreign keys enforced.
pub(crate) fn sqlite_options(path: &std::path::Path) -> Result<SqliteConnectOptions, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        durable::files::private_dir(parent).map_err(|source| StoreError::DataDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    // The database holds evidence: 0600 before SQLite creates it (its log and
    // shared-memory files take the same mode).
    durable::files::private_database(path).map_err(|source| StoreError::DataDir {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // Commits never checkpoint: a background task does (see `checkpoint`).
        .pragma("wal_autocheckpoint", "0"))
}

/// Options of every SQLite pool of the store. A transaction that SQLite rolled back by
/// itself (a full disk does that) leaves sqlx counting it as open, and every later
/// `BEGIN` on that connection then fails; such a connection is closed instead of being
/// handed out again, so a store that ran out of space works again once space returns.
pub(crate) fn sqlite_pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new().before_acquire(|conn, _| {
        Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
    })
}

/// The record committer's own SQLite pool (see `Store::ingest_db`): one connection,
/// opened now and never closed for being idle or old, not pinged before each use.
pub(crate) async fn sqlite_ingest_pool(path: &std::path::Path) -> Result<SqlitePool, StoreError> {
    Ok(sqlite_pool_options()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .connect_with(sqlite_options(path)?)
        .await?)
}

/// Connect options for PostgreSQL: the URL, plus `search_path=<schema>` as a startup
/// parameter so that every pooled connection (and the listener's) sees the same schema.
pub(crate) fn postgres_options(
    url: &str,
    schema: Option<&str>,
) -> Result<PgConnectOptions, StoreError> {
    let mut options: PgConnectOptions = url
        .parse()
        .map_err(|e| StoreError::BadConfig(format!("PostgreSQL URL: {e}")))?;
    options = options.application_name(PG_APPLICATION_NAME);
    if let Some(schema) = schema {
        check_schema_name(schema)?;
        options = options.options([("search_path", schema)]);
    }
    Ok(options)
}

/// A schema name is spliced into a startup parameter, so only plain lowercase SQL
/// identifiers are accepted (no quoting, no spaces, at most 63 bytes).
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::BadConfig(format!(
            "schema {schema:?} must be a lowercase identifier: [a-z_][a-z0-9_]*, at most 63 bytes"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_sqlite_under_data_dir() {
        assert_eq!(
            StoreConfig::default(),
            StoreConfig::Sqlite {
                path: PathBuf::from("data/fieldsync.db")
            }
        );
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema_name("fieldsync").is_ok());
        assert!(check_schema_name("_t_01").is_ok());
        for bad in [
            "",
            "1abc",
            "Public",
            "a b",
            "a;drop",
            "a\"b",
            &"x".repeat(64),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reads_the_documented_shape() {
        let pg: StoreConfig = serde_json::from_str(
            r#"{"backend":"postgres","url":"postgres://u@h/db","schema":"fieldsync"}"#,
        )
        .unwrap();
        assert_eq!(
            pg,
            StoreConfig::Postgres {
                url: "postgres://u@h/db".into(),
                schema: Some("fieldsync".into())
            }
        );
        let lite: StoreConfig =
            serde_json::from_str(r#"{"backend":"sqlite","path":"/var/lib/fs.db"}"#).unwrap();
        assert_eq!(
            lite,
            StoreConfig::Sqlite {
                path: "/var/lib/fs.db".into()
            }
        );
        assert!(serde_json::from_str::<StoreConfig>(r#"{"backend":"mysql"}"#).is_err());
    }

    #[test]
    fn postgres_url_errors_are_config_errors() {
        assert!(matches!(
            postgres_options("not a url", None),
            Err(StoreError::BadConfig(_))
        ));
        assert!(postgres_options("postgres://u@127.0.0.1:5432/db", Some("s1")).is_ok());
    }
}
