//! Fixtures of the records suite: a gateway on a manual clock, sealed chains, pushes.

use std::sync::Arc;

use agent::GatewayConnection;
use clock::ManualClock;
use protocol::chain::{ChainHead, seal};
use protocol::domain::CertificateStatus;
use protocol::message::{FieldRecord, PushRecords, RecordAck, RecordContent, RecordOutcome};
use protocol::{DeviceId, RequestBody, ResponseBody};
use store::OfficerRecord;
use test_support::{Backend, TestGateway, test_config};

/// Gateway time at the start of every test (2026-09-21).
pub(crate) const T0: i64 = 1_790_000_000_000;

/// A gateway on a manual clock at [`T0`], with `devices` enrolled bundles and the
/// configuration changed by `tune`.
pub(crate) async fn gateway(
    backend: &Backend,
    devices: u32,
    tune: impl FnOnce(&mut gateway::Config),
) -> (TestGateway, ManualClock) {
    let clock = ManualClock::new(T0);
    let data = Arc::new(tempfile::tempdir().expect("tempdir"));
    let mut config = test_config(data.path(), backend, devices);
    tune(&mut config);
    let gw = TestGateway::start_with(config, data, Arc::new(clock.clone())).await;
    (gw, clock)
}

/// Connects as development device `n` and says hello with the device's clock at
/// `device_time`.
pub(crate) async fn device(
    gw: &TestGateway,
    n: u32,
    device_time: i64,
) -> (DeviceId, GatewayConnection) {
    let (id, identity) = gw.device(n);
    let mut conn = gw.connect(&identity).await.expect("device connects");
    conn.hello(device_time, "records-test/1")
        .await
        .expect("hello");
    (id, conn)
}

/// Content of a record of `case` at device time `made_at`.
pub(crate) use protocol::test_util::record_content as content;

/// A device's chain being written, as its outbox would.
pub(crate) struct Chain {
    pub(crate) device: DeviceId,
    pub(crate) head: ChainHead,
}

impl Chain {
    pub(crate) fn new(device: &DeviceId) -> Self {
        Self {
            device: device.clone(),
            head: ChainHead::GENESIS,
        }
    }

    /// Seals the next record.
    pub(crate) fn seal(&mut self, content: RecordContent) -> FieldRecord {
        let record = seal(&self.device, &self.head, content);
        self.head = self.head.advance(&record);
        record
    }

    /// Seals `n` records of `case`, one second apart from device time `from`.
    pub(crate) fn records(&mut self, case: &str, n: u64, from: i64) -> Vec<FieldRecord> {
        (0..n)
            .map(|i| self.seal(content(case, &format!("entry {i}"), from + i as i64 * 1000)))
            .collect()
    }
}

/// Pushes records and returns the acks.
pub(crate) async fn push(conn: &GatewayConnection, records: Vec<FieldRecord>) -> Vec<RecordAck> {
    match conn
        .request(RequestBody::PushRecords(PushRecords { records }))
        .await
        .expect("push answered")
    {
        ResponseBody::RecordAcks(acks) => acks.acks,
        other => panic!("expected record acks, got {other:?}"),
    }
}

/// The outcomes of a list of acks.
pub(crate) fn outcomes(acks: &[RecordAck]) -> Vec<RecordOutcome> {
    acks.iter().map(|a| a.outcome.clone()).collect()
}

/// An officer with a valid certificate.
pub(crate) fn officer(number: &str) -> OfficerRecord {
    OfficerRecord {
        certificate_number: number.into(),
        name: format!("Officer {number}"),
        unit: "Market Supervision Team 2".into(),
        post: "inspector".into(),
        category: "market supervision".into(),
        certificate_status: CertificateStatus::Valid,
        auxiliary: false,
        agency: None,
        valid_until: None,
        effective_at: None,
    }
}

/// A raw pool on the gateway's database, behind the store's back (to play the
/// attacker who edits rows directly).
pub(crate) enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    pub(crate) async fn open(gw: &TestGateway) -> Raw {
        match gw.config.store_config() {
            store::StoreConfig::Sqlite { path } => Raw::Sqlite(
                sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("raw sqlite"),
            ),
            store::StoreConfig::Postgres { url, schema } => {
                let schema = schema.expect("test schema");
                let options: sqlx::postgres::PgConnectOptions = url.parse().expect("url");
                let options = options.options([("search_path", schema.as_str())]);
                Raw::Postgres(
                    sqlx::postgres::PgPoolOptions::new()
                        .max_connections(1)
                        .connect_with(options)
                        .await
                        .expect("raw postgres"),
                )
            }
        }
    }

    /// Runs a statement; returns the database's error text if it refused.
    pub(crate) async fn execute(&self, sql: &str) -> Result<u64, String> {
        match self {
            Raw::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
            Raw::Postgres(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
        }
        .map_err(|e| e.to_string())
    }

    pub(crate) async fn close(self) {
        match self {
            Raw::Sqlite(p) => p.close().await,
            Raw::Postgres(p) => p.close().await,
        }
    }
}
