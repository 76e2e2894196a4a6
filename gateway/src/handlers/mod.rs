//! One module per request kind (as mini-redis's `cmd/`); [`dispatch`] routes a
//! request to its handler and turns a handler error into a typed error reply.

mod clock;
mod flags;
mod hello;
mod identity;
mod recordings;
mod records;
mod roster;

use std::sync::OnceLock;
use std::sync::atomic::AtomicU32;

use protocol::DeviceId;
use protocol::deadline::ClockSkew;
use protocol::{ErrorCode, ErrorReply, InvalidField, RequestBody, ResponseBody};

use crate::state::GatewayState;
use store::StoreError;

/// What the gateway keeps about one admitted connection, for as long as it lives: only
/// what handlers need, because thousands of idle devices each hold one.
pub struct ConnectionContext {
    /// The device, as admitted.
    pub device_id: DeviceId,
    /// The clock skew measured by this connection's hello; unset until then.
    pub skew: OnceLock<ClockSkew>,
    /// Malformed requests seen on this connection (too many close it).
    pub protocol_errors: AtomicU32,
}

impl ConnectionContext {
    /// A context for a freshly admitted device.
    pub fn new(device_id: DeviceId) -> Self {
        Self {
            device_id,
            skew: OnceLock::new(),
            protocol_errors: AtomicU32::new(0),
        }
    }
}

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// A request other than hello came first.
    #[error("say hello first: the gateway needs the device's clock before anything else")]
    HelloRequired,
    /// This gateway build does not serve that request kind.
    #[error("request kind {0} is not served by this gateway version")]
    NotServed(&'static str),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A push carries more items than the protocol limit.
    #[error("{count} {what} in one push; the limit is {limit}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many were sent.
        count: usize,
        /// The limit announced in the welcome.
        limit: u32,
    },
    /// The group commit of field records failed or stopped; nothing was acknowledged.
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    /// The gateway broke one of its own invariants.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A recording request was refused (it has its own codes).
    #[error(transparent)]
    Recording(recordings::RecordingError),
}

/// What a device hears when the gateway's storage is full (the details are logged).
pub(crate) const STORAGE_FULL_MESSAGE: &str =
    "the gateway's storage is full: nothing of this request was stored; keep it and retry later";
/// What a device hears once a storage failure stopped a component (see
/// [`crate::faults`]; the details are logged).
pub(crate) const STORAGE_FAILED_MESSAGE: &str = "the gateway's storage failed: it acknowledges nothing more until it is restarted; keep the data and retry later";

impl HandlerError {
    /// The typed error reply for the device.
    pub fn reply(&self) -> ErrorReply {
        if let HandlerError::Recording(e) = self {
            return e.reply();
        }
        let code = match self {
            HandlerError::Invalid(_) => ErrorCode::InvalidField,
            HandlerError::HelloRequired => ErrorCode::HelloRequired,
            HandlerError::NotServed(_) => ErrorCode::UnexpectedMessage,
            HandlerError::Store(_) => ErrorCode::Internal,
            HandlerError::TooMany { .. } => ErrorCode::TooManyItems,
            HandlerError::Ingest(crate::ingest::IngestError::Stopped) => ErrorCode::ShuttingDown,
            HandlerError::Ingest(crate::ingest::IngestError::StorageFull(_)) => {
                ErrorCode::StorageFull
            }
            HandlerError::Ingest(crate::ingest::IngestError::Halted(_)) => ErrorCode::StorageFailed,
            HandlerError::Ingest(crate::ingest::IngestError::Busy { .. }) => ErrorCode::Busy,
            HandlerError::Ingest(_) | HandlerError::Internal(_) => ErrorCode::Internal,
            HandlerError::Recording(e) => e.reply().code,
        };
        let message = match self {
            HandlerError::Ingest(crate::ingest::IngestError::StorageFull(_)) => {
                STORAGE_FULL_MESSAGE.into()
            }
            HandlerError::Ingest(crate::ingest::IngestError::Halted(_)) => {
                STORAGE_FAILED_MESSAGE.into()
            }
            HandlerError::Ingest(busy @ crate::ingest::IngestError::Busy { .. }) => {
                busy.to_string()
            }
            // Store internals are logged, not sent to devices.
            HandlerError::Store(_) | HandlerError::Ingest(_) | HandlerError::Internal(_) => {
                "the gateway could not complete the request; retry".into()
            }
            other => other.to_string(),
        };
        ErrorReply::new(code, message)
    }
}

/// Serves one request.
///
/// Each handler's future is boxed on its own, so a request allocates what its own
/// handler needs (a hello's is 592 bytes) rather than the largest handler's (3,776
/// bytes): the fewer large short-lived blocks a connection's first request leaves
/// behind, the less memory an idle device holds.
pub async fn dispatch(
    state: &GatewayState,
    ctx: &ConnectionContext,
    body: RequestBody,
) -> Result<ResponseBody, HandlerError> {
    if !matches!(body, RequestBody::Hello(_)) && ctx.skew.get().is_none() {
        return Err(HandlerError::HelloRequired);
    }
    match body {
        RequestBody::Hello(hello) => Box::pin(hello::handle(state, ctx, hello)).await,
        RequestBody::PushRecords(push) => Box::pin(records::handle(state, ctx, push)).await,
        RequestBody::CheckIdentity(check) => Box::pin(identity::check(state, ctx, check)).await,
        RequestBody::PushIdentityChecks(push) => Box::pin(identity::push(state, ctx, push)).await,
        RequestBody::RosterSince(since) => Box::pin(roster::handle(state, ctx, since)).await,
        RequestBody::AnnounceRecording(a) => Box::pin(recordings::announce(state, ctx, a)).await,
        RequestBody::UploadOffset(query) => Box::pin(recordings::offset(state, ctx, query)).await,
        RequestBody::FlagsSince(since) => Box::pin(flags::handle(state, ctx, since)).await,
        other => Err(HandlerError::NotServed(other.kind())),
    }
}

/// Serves an upload chunk, whose `header.length` raw bytes follow its frame on `recv`
/// (the only request with a body after its frame, so it cannot go through
/// [`dispatch`]).
pub async fn upload(
    state: &GatewayState,
    ctx: &ConnectionContext,
    header: protocol::message::UploadHeader,
    recv: &mut quinn::RecvStream,
) -> Result<ResponseBody, HandlerError> {
    if ctx.skew.get().is_none() {
        let _ = recv.stop(quinn::VarInt::from_u32(0));
        return Err(HandlerError::HelloRequired);
    }
    recordings::upload_chunk(state, ctx, header, recv).await
}
