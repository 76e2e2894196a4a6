//! One module per request kind (as mini-redis's `cmd/`); [`dispatch`] routes a
//! request to its handler and turns a handler error into a typed error reply.

mod hello;

use std::sync::OnceLock;

use protocol::deadline::ClockSkew;
use protocol::{ErrorCode, ErrorReply, InvalidField, RequestBody, ResponseBody};

use crate::state::GatewayState;
use crate::store::{DeviceRow, StoreError};

/// What the gateway knows about one admitted connection.
pub struct ConnectionContext {
    /// The device, as enrolled.
    pub device: DeviceRow,
    /// The clock skew measured by this connection's hello; unset until then.
    pub skew: OnceLock<ClockSkew>,
}

impl ConnectionContext {
    /// A context for a freshly admitted device.
    pub fn new(device: DeviceRow) -> Self {
        Self {
            device,
            skew: OnceLock::new(),
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
}

impl HandlerError {
    /// The typed error reply for the device.
    pub fn reply(&self) -> ErrorReply {
        let code = match self {
            HandlerError::Invalid(_) => ErrorCode::InvalidField,
            HandlerError::HelloRequired => ErrorCode::HelloRequired,
            HandlerError::NotServed(_) => ErrorCode::UnexpectedMessage,
            HandlerError::Store(_) => ErrorCode::Internal,
        };
        let message = match self {
            // Store internals are logged, not sent to devices.
            HandlerError::Store(_) => "the gateway could not complete the request; retry".into(),
            other => other.to_string(),
        };
        ErrorReply::new(code, message)
    }
}

/// Serves one request.
pub async fn dispatch(
    state: &GatewayState,
    ctx: &ConnectionContext,
    body: RequestBody,
) -> Result<ResponseBody, HandlerError> {
    if !matches!(body, RequestBody::Hello(_)) && ctx.skew.get().is_none() {
        return Err(HandlerError::HelloRequired);
    }
    match body {
        RequestBody::Hello(hello) => hello::handle(state, ctx, hello).await,
        other => Err(HandlerError::NotServed(other.kind())),
    }
}
