//! A small fleet with one case in every condition a supervisor looks for, set up the
//! way the real parts do it: agencies, the roster and assignments through the admin
//! API; field records and recordings from a real device over mutual-TLS QUIC; the
//! deadline watcher run at the (manual) clock's time. Shared by the API tests and
//! the Chromium page tests, so both check the same facts.
//!
//! Case [`CASE`] about [`TARGET`]: an initiation record, a seizure by ZF-001 with
//! ZF-003 (withdrawn certificate: two-officer flag) whose linked recording does not
//! cover it (missing audio-video), a recording 6 hours overdue and one pending; a
//! refused record with a gap (tamper flag). Case [`OTHER_CASE`], same target: one
//! record with a recording uploaded on time.

use agent::GatewayConnection;
use agent::transport::UploadReply;
use clock::ManualClock;
use protocol::chain::{ChainHead, seal};
use protocol::domain::Stage;
use protocol::message::{
    FieldRecord, MediaKind, PushRecords, RecordAck, RecordContent, RecordingAnnouncement,
    UploadHeader,
};
use protocol::{DeviceId, Millis, RequestBody, ResponseBody, Sha256Hash};
use serde_json::json;
use test_support::{Backend, TestGateway};
use uuid::Uuid;

use crate::support::Api;

/// The gateway's clock at the start (2026-09-21).
pub(crate) const T0: Millis = 1_790_000_000_000;
/// An hour.
pub(crate) const H: Millis = 3_600_000;
/// The case with every flag.
pub(crate) const CASE: &str = "C-2026-0042";
/// The other case about the same target.
pub(crate) const OTHER_CASE: &str = "C-2026-0043";
/// The enforcement target of both cases.
pub(crate) const TARGET: &str = "Shop 7, Market Street";

/// The running gateway, the connected device and the recordings made.
pub(crate) struct Scenario {
    pub(crate) api: Api,
    /// The gateway's clock.
    pub(crate) clock: ManualClock,
    /// Device 1, still connected (a live connection in the fleet view).
    pub(crate) conn: GatewayConnection,
    /// Ended 30 h ago, never uploaded: overdue by 6 h.
    pub(crate) overdue: Uuid,
    /// Ended 2 h ago: pending.
    pub(crate) pending: Uuid,
    /// Ended 1 h ago, uploaded: on time.
    pub(crate) stored: Uuid,
}

fn content(
    case: &str,
    stage: Stage,
    action_kind: &str,
    text: &str,
    officers: &[&str],
    made_at: Millis,
    recordings: Vec<Uuid>,
) -> RecordContent {
    RecordContent {
        target: TARGET.into(),
        stage,
        action_kind: action_kind.into(),
        officers: officers.iter().map(|o| (*o).to_owned()).collect(),
        coordinates: None,
        recordings,
        ..protocol::test_util::record_content(case, text, made_at)
    }
}

fn announcement(case: &str, bytes: &[u8], ended_at: Millis) -> RecordingAnnouncement {
    RecordingAnnouncement {
        recording_id: Uuid::new_v4(),
        sha256: Sha256Hash::of(bytes),
        size: bytes.len() as u64,
        media: MediaKind::Video,
        started_at: ended_at - H,
        ended_at,
        case_number: Some(case.into()),
        officer: Some("ZF-001".into()),
    }
}

/// Pushes records; returns their acks.
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

async fn set_up_registry(api: &Api) {
    for (name, class) in [("East", "a"), ("West", "b")] {
        api.post(
            "/api/v1/agencies",
            json!({ "name": name, "class": class, "reason": "setup" }),
        )
        .await;
    }
    let officers = [
        ("ZF-001", "East", "valid"),
        ("ZF-002", "East", "valid"),
        ("ZF-003", "East", "withdrawn"),
        ("ZF-010", "West", "valid"),
    ];
    let rows: Vec<_> = officers
        .iter()
        .enumerate()
        .map(|(i, (number, agency, status))| {
            json!({ "line": i + 2, "certificate_number": number, "name": format!("officer {number}"),
                    "certificate_status": status, "auxiliary": "no", "agency": agency })
        })
        .collect();
    api.post(
        "/api/v1/officers/import",
        json!({ "rows": rows, "reason": "roster" }),
    )
    .await;
    for (device, agency, officer) in [
        ("dev-00001", "East", Some("ZF-001")),
        ("dev-00002", "West", Some("ZF-010")),
        ("dev-00003", "East", None),
    ] {
        api.post(
            &format!("/api/v1/devices/{device}/assign"),
            json!({ "agency": agency, "officer": officer, "reason": "issued" }),
        )
        .await;
    }
}

/// Starts a gateway on `backend` with 3 devices and sets the scenario up.
pub(crate) async fn set_up(backend: &Backend) -> Scenario {
    let clock = ManualClock::new(T0);
    let api = Api::from_gateway(TestGateway::start_with_clock(backend, 3, clock.clone()).await);
    set_up_registry(&api).await;

    // Device 2 says hello once (last seen T0) and goes away.
    let (_, identity) = api.gw.device(2);
    let mut other = api.gw.connect(&identity).await.expect("device 2 connects");
    other.hello(T0, "pages-test/1").await.expect("hello");
    other.close();

    let (device, identity) = api.gw.device(1);
    let mut conn = api.gw.connect(&identity).await.expect("device 1 connects");
    conn.hello(T0, "pages-test/1").await.expect("hello");

    let overdue = announcement(CASE, b"seizure video", T0 - 30 * H);
    let pending = announcement(CASE, b"follow-up video", T0 - 2 * H);
    let stored_bytes = b"inspection video, uploaded".to_vec();
    let stored = announcement(OTHER_CASE, &stored_bytes, T0 - H);
    for a in [&overdue, &pending, &stored] {
        conn.announce_recording(a.clone()).await.expect("announce");
    }
    let header = UploadHeader {
        recording_id: stored.recording_id,
        offset: 0,
        length: stored_bytes.len() as u64,
    };
    let reply = conn
        .upload_chunk(header, stored_bytes.as_slice())
        .await
        .expect("upload");
    assert!(matches!(reply, UploadReply::Stored(_)), "{reply:?}");

    push_records(&conn, &device, &overdue, &stored).await;
    api.gw
        .gateway
        .state()
        .deadlines()
        .evaluate()
        .await
        .expect("deadline pass");
    Scenario {
        api,
        clock,
        conn,
        overdue: overdue.recording_id,
        pending: pending.recording_id,
        stored: stored.recording_id,
    }
}

async fn push_records(
    conn: &GatewayConnection,
    device: &DeviceId,
    overdue: &RecordingAnnouncement,
    stored: &RecordingAnnouncement,
) {
    let pair = ["ZF-001", "ZF-002"];
    let contents = [
        content(
            CASE,
            Stage::Initiation,
            "inspection",
            "shop inspected",
            &pair,
            T0 - 32 * H,
            vec![],
        ),
        content(
            CASE,
            Stage::ServiceExecution,
            "seizure",
            "goods seized",
            &["ZF-001", "ZF-003"],
            T0 - 29 * H,
            vec![overdue.recording_id],
        ),
        content(
            OTHER_CASE,
            Stage::Investigation,
            "inspection",
            "second visit",
            &pair,
            T0 - 3 * H,
            vec![stored.recording_id],
        ),
    ];
    let (records, head) = protocol::test_util::seal_chain(device, ChainHead::GENESIS, contents);
    let acks = push(conn, records).await;
    assert!(acks.iter().all(|a| a.outcome.is_durable()), "{acks:?}");

    // A record that skips a sequence number: refused and kept as tamper evidence.
    let skipped = seal(
        device,
        &head,
        content(
            CASE,
            Stage::Archive,
            "archive",
            "never sent",
            &pair,
            T0 - H,
            vec![],
        ),
    );
    let gap = seal(
        device,
        &head.advance(&skipped),
        content(
            CASE,
            Stage::Archive,
            "archive",
            "rewritten archive",
            &pair,
            T0 - H,
            vec![],
        ),
    );
    let acks = push(conn, vec![gap]).await;
    assert!(!acks[0].outcome.is_durable(), "{acks:?}");
}
