//! One request to the gateway within the agent's request timeout, and how it can fail.
//!
//! Below both the sync steps ([`crate::sync`]) and the uploader ([`crate::uploader`]),
//! which send their requests this way: neither needs the other's errors, so the two
//! modules do not import each other.

use std::future::Future;

use protocol::{RequestBody, ResponseBody};

use crate::agent::Agent;
use crate::transport::{ClientError, GatewayConnection};

/// Why a request got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The connection failed, or the gateway refused the request or answered oddly.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No reply within the request timeout.
    #[error("the gateway did not answer {0} within the request timeout")]
    Timeout(&'static str),
}

/// Sends one request within the agent's request timeout.
pub(crate) async fn request(
    agent: &Agent,
    conn: &GatewayConnection,
    what: &'static str,
    body: RequestBody,
) -> Result<ResponseBody, RequestError> {
    within(agent, what, conn.request(body)).await
}

/// Runs a request future within the agent's request timeout.
pub(crate) async fn within<T>(
    agent: &Agent,
    what: &'static str,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, RequestError> {
    match tokio::time::timeout(agent.config().request_timeout(), fut).await {
        Err(_) => Err(RequestError::Timeout(what)),
        Ok(result) => Ok(result?),
    }
}

/// A reply of the wrong kind to `request`.
pub(crate) fn unexpected(request: &'static str, reply: ResponseBody) -> ClientError {
    ClientError::UnexpectedReply {
        request,
        reply: Box::new(reply),
    }
}
