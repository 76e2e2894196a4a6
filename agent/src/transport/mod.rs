//! The device's side of the wire: a QUIC client endpoint with mutual TLS, and a
//! connection that sends one request per stream and reads one reply.
//!
//! One [`GatewayEndpoint`] (one UDP socket) can carry many connections, which is how
//! `loadtest` simulates thousands of devices in one process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::frame::FrameDecoder;
use protocol::message::{Hello, Welcome};
use protocol::{
    CloseCode, ErrorReply, Limits, Millis, Request, RequestBody, Response, ResponseBody,
};
use quinn::crypto::rustls::QuicClientConfig;

use crate::identity::DeviceIdentity;

pub mod frames;

use frames::{read_message, write_message};

/// Why talking to the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TLS configuration cannot be built from the identity.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The UDP socket cannot be bound.
    #[error("cannot bind a UDP socket: {0}")]
    Bind(std::io::Error),
    /// The connection cannot be started.
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The connection failed or was closed; [`ClientError::close_code`] tells whether
    /// the gateway refused the device.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// A stream failed while writing.
    #[error("stream: {0}")]
    Write(#[from] quinn::WriteError),
    /// A stream failed while reading.
    #[error("stream: {0}")]
    Read(#[from] quinn::ReadError),
    /// A frame could not be read or written.
    #[error("frame: {0}")]
    Frame(#[from] protocol::frame::FrameError),
    /// The recording being uploaded could not be read (or ended early).
    #[error("recording file: {0}")]
    Body(std::io::Error),
    /// The gateway closed the stream without replying.
    #[error("the gateway closed the stream without a reply")]
    NoReply,
    /// The gateway refused the request.
    #[error("gateway refused the request: {0}")]
    Refused(ErrorReply),
    /// The gateway answered with a reply of the wrong kind.
    #[error("unexpected reply to {request}: {reply:?}")]
    UnexpectedReply {
        /// The request kind.
        request: &'static str,
        /// What came back.
        reply: Box<ResponseBody>,
    },
}

impl ClientError {
    /// The application close code, when the gateway closed the connection with one.
    pub fn close_code(&self) -> Option<CloseCode> {
        let err = match self {
            ClientError::Connection(e) => e,
            ClientError::Write(quinn::WriteError::ConnectionLost(e))
            | ClientError::Read(quinn::ReadError::ConnectionLost(e)) => e,
            _ => return None,
        };
        match err {
            quinn::ConnectionError::ApplicationClosed(close) => {
                u32::try_from(close.error_code.into_inner())
                    .ok()
                    .map(CloseCode::from_u32)
            }
            _ => None,
        }
    }
}

/// Transport settings of a device connection.
#[derive(Clone, Debug)]
pub struct TransportSettings {
    /// Keep-alive interval (keeps cellular NAT bindings open).
    pub keep_alive: Duration,
    /// Idle timeout.
    pub idle_timeout: Duration,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The UDP receive buffer a client endpoint asks for. Why not the kernel's default
/// (208 KiB): a burst of replies that arrives while the process is busy is dropped
/// once the buffer is full, and every dropped packet costs a retransmission timeout —
/// with a thousand simulated devices on one endpoint, the load test's paced pushes
/// lost thousands of packets and waited hundreds of milliseconds for them. The memory
/// is only used while packets wait.
pub const CLIENT_RECEIVE_BUFFER: usize = 4 << 20;

/// A client UDP endpoint from which devices connect.
#[derive(Clone)]
pub struct GatewayEndpoint {
    endpoint: quinn::Endpoint,
}

impl GatewayEndpoint {
    /// Binds a client endpoint on an ephemeral port of the given address family, with
    /// a UDP receive buffer of [`CLIENT_RECEIVE_BUFFER`] (the kernel caps it at
    /// `net.core.rmem_max`).
    pub fn bind(for_gateway: SocketAddr) -> Result<Self, ClientError> {
        let local: SocketAddr = if for_gateway.is_ipv6() {
            "[::]:0".parse().expect("valid address")
        } else {
            "0.0.0.0:0".parse().expect("valid address")
        };
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(local),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .map_err(ClientError::Bind)?;
        if local.is_ipv6() {
            // As `quinn::Endpoint::client` does: IPv4-mapped peers too.
            let _ = socket.set_only_v6(false);
        }
        socket
            .set_recv_buffer_size(CLIENT_RECEIVE_BUFFER)
            .map_err(ClientError::Bind)?;
        socket.bind(&local.into()).map_err(ClientError::Bind)?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| ClientError::Bind(std::io::Error::other("no async runtime")))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket.into(),
            runtime,
        )
        .map_err(ClientError::Bind)?;
        Ok(Self { endpoint })
    }

    /// Connects to the gateway as the device `identity`, authenticating the gateway's
    /// certificate for `server_name` against the fleet CA.
    pub async fn connect(
        &self,
        gateway: SocketAddr,
        server_name: &str,
        identity: &DeviceIdentity,
        settings: &TransportSettings,
    ) -> Result<GatewayConnection, ClientError> {
        let config = client_config(identity, settings)?;
        let connection = self
            .endpoint
            .connect_with(config, gateway, server_name)?
            .await?;
        Ok(GatewayConnection {
            connection,
            limits: Limits::default(),
        })
    }

    /// Waits until every connection of this endpoint is closed.
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }
}

/// Builds the QUIC client config for a device identity.
pub fn client_config(
    identity: &DeviceIdentity,
    settings: &TransportSettings,
) -> Result<quinn::ClientConfig, ClientError> {
    let tls = |e: &dyn std::fmt::Display| ClientError::Tls(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for ca in &identity.ca {
        roots.add(ca.clone()).map_err(|e| tls(&e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls(&e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| tls(&e))?;
    config.alpn_protocols = vec![protocol::ALPN.to_vec()];
    config.enable_early_data = false;
    let crypto = QuicClientConfig::try_from(config).map_err(|e| tls(&e))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(settings.keep_alive));
    transport.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(settings.idle_timeout).map_err(|e| tls(&e))?,
    ));
    client.transport_config(Arc::new(transport));
    Ok(client)
}

/// An open connection to the gateway.
pub struct GatewayConnection {
    connection: quinn::Connection,
    limits: Limits,
}

impl GatewayConnection {
    /// Sends one request on a new stream and reads its reply. An error reply becomes
    /// [`ClientError::Refused`].
    pub async fn request(&self, body: RequestBody) -> Result<ResponseBody, ClientError> {
        self.exchange(body).await.map_err(|err| match err {
            // A stream error on a closed connection is reported as the close itself,
            // so the caller sees the gateway's close code.
            ClientError::Refused(_) | ClientError::UnexpectedReply { .. } => err,
            other => self.close_reason().unwrap_or(other),
        })
    }

    async fn exchange(&self, body: RequestBody) -> Result<ResponseBody, ClientError> {
        let (mut send, mut recv) = self.connection.open_bi().await?;
        let max = self.limits.max_frame_bytes;
        write_message(&mut send, &Request::new(body), max).await?;
        let _ = send.finish();
        match read_message::<Response>(&mut recv, FrameDecoder::new(max)).await? {
            Some(Response {
                body: ResponseBody::Error(e),
                ..
            }) => Err(ClientError::Refused(e)),
            Some(response) => Ok(response.body),
            None => Err(ClientError::NoReply),
        }
    }

    /// Says hello holding no rules (the welcome carries them); adopts the gateway's
    /// limits for later requests.
    pub async fn hello(
        &mut self,
        device_time: Millis,
        agent_version: &str,
    ) -> Result<Welcome, ClientError> {
        self.hello_holding(device_time, agent_version, None).await
    }

    /// Says hello naming the digest of the rules the device holds (the welcome carries
    /// the rules only when the gateway's differ); adopts the gateway's limits.
    pub async fn hello_holding(
        &mut self,
        device_time: Millis,
        agent_version: &str,
        rules_digest: Option<protocol::Sha256Hash>,
    ) -> Result<Welcome, ClientError> {
        let body = RequestBody::Hello(Hello {
            device_time,
            agent_version: agent_version.to_owned(),
            rules_digest,
        });
        match self.request(body).await? {
            ResponseBody::Welcome(welcome) => {
                self.limits = welcome.limits.clone();
                Ok(welcome)
            }
            other => Err(ClientError::UnexpectedReply {
                request: "hello",
                reply: Box::new(other),
            }),
        }
    }

    /// Waits until the connection is closed and returns why.
    pub async fn closed(&self) -> ClientError {
        ClientError::Connection(self.connection.closed().await)
    }

    /// Why the connection is closed, if it is.
    pub fn close_reason(&self) -> Option<ClientError> {
        self.connection.close_reason().map(ClientError::Connection)
    }

    /// The underlying QUIC connection.
    pub fn quic(&self) -> &quinn::Connection {
        &self.connection
    }

    /// Closes the connection normally.
    pub fn close(&self) {
        self.connection
            .close(quinn::VarInt::from_u32(CloseCode::Normal.to_u32()), b"bye");
    }
}

/// The gateway's answer to an upload chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadReply {
    /// The gateway holds this many bytes; send the next chunk from there.
    Offset(protocol::message::UploadOffset),
    /// The recording is complete, verified and durable: the device may delete its copy
    /// (and must, DOMAIN R2).
    Stored(protocol::message::RecordingStored),
}

impl GatewayConnection {
    /// Announces a recording; the gateway tracks its deadline from now on and says how
    /// many bytes it already holds (or that it is stored).
    pub async fn announce_recording(
        &self,
        announcement: protocol::message::RecordingAnnouncement,
    ) -> Result<protocol::message::RecordingTracked, ClientError> {
        match self
            .request(RequestBody::AnnounceRecording(announcement))
            .await?
        {
            ResponseBody::RecordingTracked(tracked) => Ok(tracked),
            other => Err(ClientError::UnexpectedReply {
                request: "announce_recording",
                reply: Box::new(other),
            }),
        }
    }

    /// Asks how many bytes of a recording the gateway holds (resume from there).
    pub async fn upload_offset(
        &self,
        recording_id: uuid::Uuid,
    ) -> Result<protocol::message::UploadOffset, ClientError> {
        let query = protocol::message::UploadOffsetQuery { recording_id };
        match self.request(RequestBody::UploadOffset(query)).await? {
            ResponseBody::UploadOffset(offset) => Ok(offset),
            other => Err(ClientError::UnexpectedReply {
                request: "upload_offset",
                reply: Box::new(other),
            }),
        }
    }

    /// Uploads one chunk: the header frame, then exactly `header.length` raw bytes read
    /// from `body` (streamed, never held whole in memory), then the gateway's reply.
    ///
    /// If the gateway refuses the chunk before reading it all (wrong offset, full
    /// disk), it stops the stream; the refusal is still read and returned as
    /// [`ClientError::Refused`].
    pub async fn upload_chunk<R>(
        &self,
        header: protocol::message::UploadHeader,
        body: R,
    ) -> Result<UploadReply, ClientError>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        self.send_chunk(header, body)
            .await
            .map_err(|err| match err {
                ClientError::Refused(_) | ClientError::UnexpectedReply { .. } => err,
                other => self.close_reason().unwrap_or(other),
            })
    }

    async fn send_chunk<R>(
        &self,
        header: protocol::message::UploadHeader,
        mut body: R,
    ) -> Result<UploadReply, ClientError>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        use tokio::io::AsyncReadExt;
        let (mut send, mut recv) = self.connection.open_bi().await?;
        let max = self.limits.max_frame_bytes;
        write_message(
            &mut send,
            &Request::new(RequestBody::UploadChunk(header)),
            max,
        )
        .await?;
        // Each piece is read into a buffer that quinn then takes as it is (`write_chunk`
        // does not copy, `write_all` would): one copy per byte on the device's side.
        const PIECE: usize = 64 << 10;
        let mut left = header.length;
        let mut buf = bytes::BytesMut::new();
        while left > 0 {
            let want = usize::try_from(left.min(PIECE as u64)).unwrap_or(PIECE);
            buf.reserve(want);
            let n = (&mut body)
                .take(want as u64)
                .read_buf(&mut buf)
                .await
                .map_err(ClientError::Body)?;
            if n == 0 {
                let _ = send.reset(quinn::VarInt::from_u32(0));
                return Err(ClientError::Body(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the recording ended {left} bytes before the chunk's length"),
                )));
            }
            match send.write_chunk(buf.split().freeze()).await {
                Ok(()) => left -= n as u64,
                // The gateway refused the chunk and stopped reading: its reply says why.
                Err(quinn::WriteError::Stopped(_)) => break,
                Err(e) => return Err(e.into()),
            }
        }
        let _ = send.finish();
        match read_message::<Response>(&mut recv, FrameDecoder::new(max)).await? {
            Some(Response {
                body: ResponseBody::Error(e),
                ..
            }) => Err(ClientError::Refused(e)),
            Some(Response {
                body: ResponseBody::UploadOffset(offset),
                ..
            }) => Ok(UploadReply::Offset(offset)),
            Some(Response {
                body: ResponseBody::RecordingStored(stored),
                ..
            }) => Ok(UploadReply::Stored(stored)),
            Some(other) => Err(ClientError::UnexpectedReply {
                request: "upload_chunk",
                reply: Box::new(other.body),
            }),
            None => Err(ClientError::NoReply),
        }
    }
}
