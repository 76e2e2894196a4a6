//! Shared set-up of the recording tests: a gateway on a manual clock, content with a
//! known hash, announcements, and an uploader that plays the agent's part.

use std::sync::Arc;
use std::time::Duration;

use agent::GatewayConnection;
use agent::transport::UploadReply;
use agent::transport::frames::write_message;
use clock::ManualClock;
use gateway::config::Config;
use protocol::message::{MediaKind, RecordingAnnouncement, UploadHeader};
use protocol::{ErrorReply, Millis, Request, RequestBody, Sha256Hash};
use test_support::{Backend, TestGateway, eventually, test_config};
use uuid::Uuid;

/// 2026-09-21T…, the tests' "now".
pub(crate) const T0: Millis = 1_790_000_000_000;
/// One hour in milliseconds.
pub(crate) const H: Millis = 3_600_000;

/// How long the tests wait for an asynchronous effect.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A gateway on a manual clock, with the clock.
pub(crate) struct Fixture {
    pub(crate) gw: TestGateway,
    pub(crate) clock: ManualClock,
}

impl Fixture {
    /// A gateway with 3 enrolled devices, its clock at [`T0`].
    pub(crate) async fn start(backend: &Backend) -> Fixture {
        Self::start_with(backend, |_| {}).await
    }

    /// A gateway whose configuration `tune` adjusts first.
    pub(crate) async fn start_with(backend: &Backend, tune: impl FnOnce(&mut Config)) -> Fixture {
        let clock = ManualClock::new(T0);
        let data = Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut config = test_config(data.path(), backend, 3);
        tune(&mut config);
        let gw = TestGateway::start_with(config, data, Arc::new(clock.clone())).await;
        gateway::deadlines::first_pass(&gw.gateway.state().recording_metrics).await;
        Fixture { gw, clock }
    }

    /// Stops the gateway (gracefully) and starts it again on the same data folder,
    /// store and clock.
    pub(crate) async fn restart(self) -> Fixture {
        let Fixture { gw, clock } = self;
        let (data, config) = gw.stop().await;
        let gw = TestGateway::start_with(config, data, Arc::new(clock.clone())).await;
        gateway::deadlines::first_pass(&gw.gateway.state().recording_metrics).await;
        Fixture { gw, clock }
    }

    /// Connects as development device `n` and says hello with the device clock
    /// `device_offset` ahead of the gateway's.
    pub(crate) async fn device(&self, n: u32, device_offset: Millis) -> GatewayConnection {
        let (_, identity) = self.gw.device(n);
        let mut conn = self.gw.connect(&identity).await.expect("device connects");
        conn.hello(self.clock_now() + device_offset, "recordings-test/1")
            .await
            .expect("hello");
        conn
    }

    pub(crate) fn clock_now(&self) -> Millis {
        use clock::Clock;
        self.clock.now()
    }

    pub(crate) fn state(&self) -> &Arc<gateway::state::GatewayState> {
        self.gw.gateway.state()
    }

    /// One pass of the deadline watcher at the clock's time.
    pub(crate) async fn evaluate(&self) -> gateway::deadlines::PassSummary {
        self.state()
            .deadlines()
            .evaluate()
            .await
            .expect("deadline pass")
    }
}

/// `len` bytes of deterministic pseudo-random content, distinct per seed.
pub(crate) use test_support::pseudo_random_bytes as content;

/// An announcement of `bytes` recorded over the hour before `ended_at` (device clock).
pub(crate) fn announcement(bytes: &[u8], ended_at: Millis) -> RecordingAnnouncement {
    RecordingAnnouncement {
        recording_id: Uuid::new_v4(),
        sha256: Sha256Hash::of(bytes),
        size: bytes.len() as u64,
        media: MediaKind::Video,
        started_at: ended_at - H,
        ended_at,
        case_number: Some("CASE-2026-001".into()),
        officer: Some("OFF-001".into()),
    }
}

/// Sends `bytes[from..]` in chunks of `chunk` bytes; returns the last reply.
pub(crate) async fn upload_from(
    conn: &GatewayConnection,
    id: Uuid,
    bytes: &[u8],
    from: u64,
    chunk: usize,
) -> Result<UploadReply, agent::ClientError> {
    upload_sized(conn, id, bytes, from, chunk, |_, _| chunk).await
}

/// Sends `bytes[from..]`, the first chunk of `first` bytes and each later one of
/// `next(bytes sent, time taken)` of the chunk before.
async fn upload_sized(
    conn: &GatewayConnection,
    id: Uuid,
    bytes: &[u8],
    from: u64,
    first: usize,
    next: impl Fn(usize, std::time::Duration) -> usize,
) -> Result<UploadReply, agent::ClientError> {
    let mut offset = from as usize;
    let mut chunk = first;
    loop {
        let end = offset.saturating_add(chunk).min(bytes.len());
        let header = UploadHeader {
            recording_id: id,
            offset: offset as u64,
            length: (end - offset) as u64,
        };
        let started = std::time::Instant::now();
        let reply = conn.upload_chunk(header, &bytes[offset..end]).await?;
        match &reply {
            UploadReply::Offset(o) if (o.offset as usize) < bytes.len() => {
                assert_eq!(o.offset as usize, end, "the gateway holds every byte sent");
                chunk = next(end - offset, started.elapsed());
                offset = end;
            }
            _ => return Ok(reply),
        }
    }
}

/// The typed refusal inside a client error (panics on any other error).
pub(crate) fn refusal(err: agent::ClientError) -> ErrorReply {
    match err {
        agent::ClientError::Refused(reply) => reply,
        other => panic!("expected a typed refusal, got {other}"),
    }
}

/// The stored recording's row.
pub(crate) async fn row(fx: &Fixture, id: Uuid) -> store::RecordingRow {
    fx.state()
        .store
        .recording(id)
        .await
        .expect("store")
        .expect("the recording is tracked")
}

/// A field record's content for the recording tests.
pub(crate) fn record(
    case: &str,
    stage: protocol::domain::Stage,
    action_kind: &str,
    made_at: Millis,
    recordings: Vec<Uuid>,
) -> protocol::message::RecordContent {
    protocol::message::RecordContent {
        stage,
        action_kind: action_kind.into(),
        officers: vec!["OFF-001".into(), "OFF-002".into()],
        location: None,
        coordinates: None,
        recordings,
        ..protocol::test_util::record_content(case, &format!("{action_kind} at {made_at}"), made_at)
    }
}

/// Seals `contents` onto the device's chain (from `head`) and pushes them; asserts each
/// is stored and returns the new head.
pub(crate) async fn push_records(
    conn: &GatewayConnection,
    device: &protocol::DeviceId,
    head: protocol::chain::ChainHead,
    contents: Vec<protocol::message::RecordContent>,
) -> protocol::chain::ChainHead {
    let (records, head) = protocol::test_util::seal_chain(device, head, contents);
    let push = protocol::message::PushRecords { records };
    match conn
        .request(protocol::RequestBody::PushRecords(push))
        .await
        .expect("push")
    {
        protocol::ResponseBody::RecordAcks(acks) => {
            for ack in acks.acks {
                assert!(ack.outcome.is_durable(), "record not stored: {ack:?}");
            }
        }
        other => panic!("unexpected reply {other:?}"),
    }
    head
}

/// Opens a chunk stream for `length` bytes from `offset` and sends only `partial` of
/// them, leaving the stream open (a device that stopped mid-chunk).
pub(crate) async fn start_chunk(
    conn: &agent::GatewayConnection,
    id: uuid::Uuid,
    offset: u64,
    length: u64,
    partial: &[u8],
) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut send, recv) = conn.quic().open_bi().await.expect("stream");
    let header = UploadHeader {
        recording_id: id,
        offset,
        length,
    };
    write_message(
        &mut send,
        &Request::new(RequestBody::UploadChunk(header)),
        1 << 20,
    )
    .await
    .expect("header");
    send.write_all(partial).await.expect("bytes");
    (send, recv)
}

/// Reads the gateway's reply to a chunk started by hand.
pub(crate) async fn read_reply(recv: &mut quinn::RecvStream) -> protocol::Response {
    agent::transport::frames::read_message(recv, protocol::frame::FrameDecoder::new(1 << 20))
        .await
        .expect("a reply frame")
        .expect("a reply before the stream ended")
}

/// Waits until this gateway has read `len` recording bytes from upload streams in all
/// (they reach the staging file in 1 MiB pieces and at the chunk's end, and are kept
/// however the chunk ends).
pub(crate) async fn streamed_at_least(fx: &Fixture, len: u64) {
    let streamed = fx.state().recording_metrics.bytes_streamed.clone();
    let got = eventually(WAIT, || {
        let streamed = streamed.clone();
        async move { streamed.get() >= len }
    })
    .await;
    assert!(
        got,
        "the gateway did not receive {len} bytes ({} read)",
        streamed.get()
    );
}
