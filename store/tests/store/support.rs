//! Test support for the store suite: the backends every test runs on, direct SQL
//! access behind the store's back (to play the attacker), and fixtures.
//!
//! SQLite runs always, in a temporary directory. PostgreSQL runs when
//! `FIELDSYNC_TEST_PG` holds a URL (e.g. `postgres://postgres@127.0.0.1:5432/test`):
//! each test gets a fresh schema with a random name, dropped at the end even when the
//! test fails.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use protocol::DeviceId;
use protocol::domain::{AgencyClass, CertificateStatus, DeviceKind};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{PgPool, SqlitePool};
use store::{NewAgency, NewDevice, OfficerRecord, Store, StoreConfig};

/// The environment variable that enables the PostgreSQL backend.
pub(crate) const PG_ENV: &str = "FIELDSYNC_TEST_PG";

/// A point in time the tests start from (2025-06-15, ms since the epoch).
pub(crate) const T0: i64 = 1_750_000_000_000;
/// A certificate expiry well after [`T0`].
pub(crate) const NOT_AFTER: i64 = T0 + 365 * 24 * 3600 * 1000;

/// How long to wait for an event that should arrive.
pub(crate) const EVENT_WAIT: Duration = Duration::from_secs(10);

/// One database the suite runs against.
#[derive(Clone)]
pub(crate) struct Backend {
    /// `sqlite` or `postgres`, printed before each run.
    pub(crate) label: &'static str,
    /// How to open a store on it.
    pub(crate) config: StoreConfig,
    _dir: Option<Arc<tempfile::TempDir>>,
}

/// A raw connection pool to the same database, with no store in between.
pub(crate) enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Backend {
    fn sqlite() -> Backend {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data").join("fieldsync.db");
        Backend {
            label: "sqlite",
            config: StoreConfig::Sqlite { path },
            _dir: Some(Arc::new(dir)),
        }
    }

    async fn postgres(url: &str) -> Backend {
        let schema = format!("fs_test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPool::connect(url)
            .await
            .expect("connect to FIELDSYNC_TEST_PG");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create schema");
        admin.close().await;
        Backend {
            label: "postgres",
            config: StoreConfig::Postgres {
                url: url.to_owned(),
                schema: Some(schema),
            },
            _dir: None,
        }
    }

    /// True on PostgreSQL.
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.config, StoreConfig::Postgres { .. })
    }

    /// The PostgreSQL schema of this test.
    pub(crate) fn schema(&self) -> &str {
        match &self.config {
            StoreConfig::Postgres {
                schema: Some(schema),
                ..
            } => schema,
            _ => panic!("not a PostgreSQL backend"),
        }
    }

    /// Opens a store (the first open migrates a fresh database).
    pub(crate) async fn open(&self) -> Store {
        Store::open(&self.config).await.expect("open store")
    }

    /// A direct connection pool, as someone with database access would have.
    pub(crate) async fn raw(&self) -> Raw {
        match &self.config {
            StoreConfig::Sqlite { path } => Raw::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(
                        sqlx::sqlite::SqliteConnectOptions::new()
                            .filename(path)
                            .busy_timeout(Duration::from_secs(10)),
                    )
                    .await
                    .expect("raw sqlite"),
            ),
            StoreConfig::Postgres { url, schema } => {
                let options: PgConnectOptions = url.parse().expect("url");
                let options =
                    options.options([("search_path", schema.as_deref().unwrap_or("public"))]);
                Raw::Postgres(
                    PgPoolOptions::new()
                        .max_connections(1)
                        .connect_with(options)
                        .await
                        .expect("raw pg"),
                )
            }
        }
    }

    /// Drops the test's schema and the `<schema>_other` one a test may have made.
    async fn drop_schema(&self) {
        if let StoreConfig::Postgres {
            url,
            schema: Some(schema),
        } = &self.config
            && let Ok(admin) = PgPool::connect(url).await
        {
            let _ = sqlx::query(&format!(
                "DROP SCHEMA IF EXISTS {schema}, {schema}_other CASCADE"
            ))
            .execute(&admin)
            .await;
            admin.close().await;
        }
    }
}

impl Raw {
    /// Runs one statement; returns the rows affected.
    pub(crate) async fn exec(&self, sql: &str) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Raw::Sqlite(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
            Raw::Postgres(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
        })
    }

    /// Runs a query returning one integer.
    pub(crate) async fn scalar_i64(&self, sql: &str) -> i64 {
        match self {
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.expect(sql),
            Raw::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.expect(sql),
        }
    }

    /// Drops the append-only triggers, as an attacker with DDL rights could.
    pub(crate) async fn drop_audit_triggers(&self) {
        let statements: &[&str] = match self {
            Raw::Sqlite(_) => &[
                "DROP TRIGGER audit_log_no_update",
                "DROP TRIGGER audit_log_no_delete",
            ],
            Raw::Postgres(_) => &["DROP TRIGGER audit_log_no_change ON audit_log"],
        };
        for sql in statements {
            self.exec(sql).await.expect(sql);
        }
    }

    pub(crate) async fn close(self) {
        match self {
            Raw::Sqlite(p) => p.close().await,
            Raw::Postgres(p) => p.close().await,
        }
    }
}

/// The backends to run on: SQLite always, PostgreSQL (its URL) when [`PG_ENV`] is set.
fn backend_kinds() -> Vec<Option<String>> {
    let mut out = vec![None];
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => out.push(Some(url)),
        _ => eprintln!("{PG_ENV} unset: skipping PostgreSQL"),
    }
    out
}

/// Runs `test` on every backend, each in its own task so that the PostgreSQL schema is
/// dropped even when the test panics; the panic is then re-raised. A backend's
/// database is made only when its turn comes, so a failure on SQLite leaves nothing
/// behind in PostgreSQL.
pub(crate) async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Backend) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for kind in backend_kinds() {
        let backend = match kind {
            None => Backend::sqlite(),
            Some(url) => Backend::postgres(&url).await,
        };
        eprintln!("--- backend: {}", backend.label);
        let outcome = tokio::spawn(test(backend.clone())).await;
        backend.drop_schema().await;
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("test task failed on {}: {e}", backend.label),
            }
        }
    }
}

/// Like [`each_backend`], PostgreSQL only (the multi-gateway cases); prints why it
/// skips SQLite.
pub(crate) async fn postgres_only<F, Fut>(why: &str, test: F)
where
    F: Fn(Backend) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    each_backend(|backend| {
        let run = (backend.is_postgres()).then(|| test(backend));
        if run.is_none() {
            eprintln!("sqlite: not applicable ({why})");
        }
        async move {
            if let Some(run) = run {
                run.await;
            }
        }
    })
    .await;
}

/// A distinct certificate fingerprint per `n`.
pub(crate) fn fp(n: u32) -> String {
    protocol::certificate_fingerprint(&n.to_be_bytes())
}

/// A valid device id.
pub(crate) fn id(s: &str) -> DeviceId {
    DeviceId::new(s).expect("device id")
}

/// A recorder to enroll.
pub(crate) fn device(device_id: &str, serial: &str, n: u32) -> NewDevice {
    NewDevice {
        id: id(device_id),
        kind: DeviceKind::Recorder,
        serial: serial.to_owned(),
        certificate_fingerprint: fp(n),
        certificate_not_after: NOT_AFTER,
        agency: None,
    }
}

/// A class A agency.
pub(crate) fn agency(name: &str) -> NewAgency {
    NewAgency {
        name: name.to_owned(),
        class: AgencyClass::A,
        class_c_target: None,
    }
}

/// A certified officer.
pub(crate) fn officer(number: &str, name: &str) -> OfficerRecord {
    OfficerRecord {
        certificate_number: number.to_owned(),
        name: name.to_owned(),
        unit: "Urban Management Bureau".to_owned(),
        post: "inspector".to_owned(),
        category: "urban management".to_owned(),
        certificate_status: CertificateStatus::Valid,
        auxiliary: false,
        agency: None,
        valid_until: None,
        effective_at: None,
    }
}

/// Number of audit entries (the head seq) through the store.
pub(crate) async fn audit_len(store: &Store) -> i64 {
    store
        .verify_audit_log()
        .await
        .expect("audit log verifies")
        .entries
}
