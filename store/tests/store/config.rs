//! Configuration tests: what `Store::open` refuses before touching any table.

use store::{Store, StoreConfig, StoreError};

use crate::support::*;

#[tokio::test]
async fn a_missing_or_unsafe_schema_is_a_configuration_error() {
    postgres_only("schemas are a PostgreSQL notion", |b| async move {
        let StoreConfig::Postgres { url, .. } = &b.config else {
            unreachable!()
        };
        let missing = StoreConfig::Postgres {
            url: url.clone(),
            schema: Some(format!("{}_missing", b.schema())),
        };
        let err = Store::open(&missing).await.unwrap_err();
        assert!(
            matches!(err, StoreError::BadConfig(ref m) if m.contains("does not exist")),
            "{err:?}"
        );
        let unsafe_name = StoreConfig::Postgres {
            url: url.clone(),
            schema: Some("x; DROP TABLE y".into()),
        };
        let err = Store::open(&unsafe_name).await.unwrap_err();
        assert!(matches!(err, StoreError::BadConfig(_)), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn sqlite_creates_its_directory_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("fieldsync.db");
    let store = Store::open(&StoreConfig::Sqlite { path: path.clone() })
        .await
        .unwrap();
    assert!(path.exists());
    assert_eq!(store.verify_audit_log().await.unwrap().entries, 0);
    store.close().await;
}
