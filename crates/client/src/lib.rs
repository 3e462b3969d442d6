//! A typed Rust client: unary calls on [`Client`], and a [`Session`] stream that
//! multiplexes receives and batches operations.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chanlayer_client::ClientError> {
//! use chanlayer_client::Client;
//! let client = Client::connect("http://127.0.0.1:50051", "asgi").await?;
//! let session = client.session().await?;
//! let me = session.new_channel("specific");
//! client.group_add("room", &me).await?;
//! client.group_send("room", &b"hello"[..]).await?;
//! let message = session.receive(&me).await?;
//! assert_eq!(&message.payload[..], b"hello");
//! # Ok(()) }
//! ```
//!
//! Operations made on a session are queued and written by one task, so that every
//! operation queued while the previous frame was written goes out in the next frame:
//! many concurrent sends cost one frame, not one each.
//!
//! The crate also builds `chanlayer-loadgen` (feature `loadgen`, on by default), the load
//! generator that drives a running server (`src/bin/loadgen/`, docs/benchmarks.md).
//!
//! Layout: this file holds the errors, the options, the received types and [`Client`]'s
//! unary calls; [`session`] holds the [`Session`] stream and its dispatch of events.

mod session;

pub use chanlayer_proto as proto;
pub use session::{PendingReceive, Session};

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, ClientTlsConfig, Endpoint},
};
use tonic_types::StatusExt;

use crate::proto::v1::{self as pb, channel_layer_service_client::ChannelLayerServiceClient};

/// What a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// The server refused the call.
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] Status),
    /// The server refused an operation made on a session.
    #[error("{reason} ({code:?}): {message}")]
    Operation {
        /// The canonical code.
        code: Code,
        /// The machine-readable reason, for example `CHANNEL_FULL`.
        reason: String,
        /// The explanation.
        message: String,
    },
    /// The session stream ended before the answer came.
    #[error("the session stream ended")]
    SessionClosed,
    /// The bearer token cannot be sent as a header value.
    #[error("the token is not a valid header value (visible ASCII only)")]
    InvalidToken,
    /// TLS was asked for a `unix:` endpoint.
    #[error("a unix: endpoint takes no TLS: the server serves none on a Unix socket")]
    UnixTls,
}

impl ClientError {
    /// The machine-readable reason (`ErrorInfo.reason`), when the server gave one.
    pub fn reason(&self) -> Option<String> {
        match self {
            ClientError::Status(status) => status.get_details_error_info().map(|info| info.reason),
            ClientError::Operation { reason, .. } => Some(reason.clone()),
            _ => None,
        }
    }

    /// The canonical status code.
    pub fn code(&self) -> Code {
        match self {
            ClientError::Status(status) => status.code(),
            ClientError::Operation { code, .. } => *code,
            ClientError::Connect(_) | ClientError::SessionClosed => Code::Unavailable,
            ClientError::InvalidToken | ClientError::UnixTls => Code::InvalidArgument,
        }
    }

    fn from_detail(detail: pb::ErrorDetail) -> Self {
        ClientError::Operation {
            code: Code::from_i32(detail.code),
            reason: detail.reason,
            message: detail.message,
        }
    }
}

/// The acknowledgement of a send on a session stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    /// True when the message went straight to a waiting receive.
    pub delivered: bool,
    /// How many messages the channel holds after this one (0 when it was handed to a
    /// waiting receive); None from a server that does not report it.
    pub queued: Option<u32>,
}

/// Options of a send.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions {
    /// The channel's capacity; zero means the server default (100).
    pub capacity: u32,
    /// The message's expiry; `None` means the server default (60 s).
    pub expiry: Option<Duration>,
}

/// A message received from a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The channel it came from.
    pub channel: Arc<str>,
    /// The encoded message.
    pub payload: Bytes,
    /// How long it had left before expiring when the server sent it.
    pub expires_in: Duration,
}

/// The result of a group send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSent {
    /// Members that got the message.
    pub delivered: u32,
    /// Members that were full.
    pub dropped: u32,
}

pub(crate) fn expiry_ms(expiry: Option<Duration>) -> u64 {
    expiry.map_or(0, |d| d.as_millis().max(1) as u64)
}

/// How to reach a server beyond its address: a bearer token and TLS.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// The token of a server started with `--auth-token-file`, sent with every call as
    /// `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// TLS for an `https://` endpoint: the CA to trust, the server's name, and a client
    /// certificate for a server started with `--tls-client-ca`.
    pub tls: Option<ClientTlsConfig>,
    /// How long connecting may take; `None` waits as long as the operating system does.
    pub connect_timeout: Option<Duration>,
}

/// Adds the bearer token, when there is one, to every call.
#[derive(Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// The header value for `token`.
    pub fn new(token: &str) -> Result<Self, ClientError> {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::InvalidToken)?;
        Ok(Self(Some(value)))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The generated client with the token interceptor.
pub type GrpcClient = ChannelLayerServiceClient<InterceptedService<Channel, BearerToken>>;

/// A connection to a chanlayer server, working in one namespace.
#[derive(Clone)]
pub struct Client {
    grpc: GrpcClient,
    namespace: String,
}

impl Client {
    /// Connects to `endpoint` (for example `http://127.0.0.1:50051`, or
    /// `unix:/run/chanlayer/chanlayer.sock` for a server started with `--listen unix:PATH`),
    /// with no token and no TLS.
    pub async fn connect(
        endpoint: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Result<Self, ClientError> {
        Self::connect_with(endpoint, namespace, ConnectOptions::default()).await
    }

    /// Connects to `endpoint` (`https://` with [`ConnectOptions::tls`]) with `options`.
    ///
    /// A `unix:PATH` endpoint (also `unix:///PATH`) connects to a Unix domain socket; TLS is
    /// refused there with [`ClientError::UnixTls`], as the server serves none on a socket.
    pub async fn connect_with(
        endpoint: impl Into<String>,
        namespace: impl Into<String>,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let endpoint = endpoint.into();
        if endpoint.starts_with("unix:") && options.tls.is_some() {
            return Err(ClientError::UnixTls);
        }
        let token = match &options.token {
            Some(token) => BearerToken::new(token)?,
            None => BearerToken::default(),
        };
        // tonic's `Endpoint` connects a `unix:` endpoint through a Unix socket itself.
        let mut endpoint = Endpoint::from_shared(endpoint)?
            .tcp_nodelay(true)
            .initial_stream_window_size(Some(4 * 1024 * 1024))
            .initial_connection_window_size(Some(16 * 1024 * 1024))
            .max_frame_size(1024 * 1024);
        if let Some(tls) = options.tls {
            endpoint = endpoint.tls_config(tls)?;
        }
        if let Some(timeout) = options.connect_timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        let channel = endpoint.connect().await?;
        Ok(Self::with_token(channel, namespace, token))
    }

    /// A client over an existing transport channel, with no token.
    pub fn from_channel(channel: Channel, namespace: impl Into<String>) -> Self {
        Self::with_token(channel, namespace, BearerToken::default())
    }

    /// A client over an existing transport channel that sends `token` with every call.
    pub fn with_token(channel: Channel, namespace: impl Into<String>, token: BearerToken) -> Self {
        Self {
            grpc: ChannelLayerServiceClient::with_interceptor(channel, token)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            namespace: namespace.into(),
        }
    }

    /// The generated client, for calls this type does not wrap.
    pub fn grpc(&self) -> GrpcClient {
        self.grpc.clone()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Sends a message with default capacity and expiry. Returns true when it went
    /// straight to a waiting receive.
    pub async fn send(
        &self,
        channel: &str,
        message: impl Into<Bytes>,
    ) -> Result<bool, ClientError> {
        self.send_with(channel, message, SendOptions::default())
            .await
    }

    /// Sends a message.
    pub async fn send_with(
        &self,
        channel: &str,
        message: impl Into<Bytes>,
        options: SendOptions,
    ) -> Result<bool, ClientError> {
        let response = self
            .grpc
            .clone()
            .send(pb::SendRequest {
                namespace: self.namespace.clone(),
                channel: channel.to_owned(),
                message: message.into(),
                capacity: options.capacity,
                expiry_ms: expiry_ms(options.expiry),
            })
            .await?;
        Ok(response.into_inner().delivered)
    }

    /// Adds a channel to a group with the default expiry.
    pub async fn group_add(&self, group: &str, channel: &str) -> Result<bool, ClientError> {
        self.group_add_with(group, channel, None).await
    }

    /// Adds a channel to a group.
    pub async fn group_add_with(
        &self,
        group: &str,
        channel: &str,
        group_expiry: Option<Duration>,
    ) -> Result<bool, ClientError> {
        let response = self
            .grpc
            .clone()
            .group_add(pb::GroupAddRequest {
                namespace: self.namespace.clone(),
                group: group.to_owned(),
                channel: channel.to_owned(),
                group_expiry_seconds: group_expiry.map_or(0, |d| d.as_secs().max(1)),
            })
            .await?;
        Ok(response.into_inner().added)
    }

    /// Removes a channel from a group.
    pub async fn group_discard(&self, group: &str, channel: &str) -> Result<bool, ClientError> {
        let response = self
            .grpc
            .clone()
            .group_discard(pb::GroupDiscardRequest {
                namespace: self.namespace.clone(),
                group: group.to_owned(),
                channel: channel.to_owned(),
            })
            .await?;
        Ok(response.into_inner().removed)
    }

    /// Sends a message to every member of a group.
    pub async fn group_send(
        &self,
        group: &str,
        message: impl Into<Bytes>,
    ) -> Result<GroupSent, ClientError> {
        self.group_send_with(group, message, SendOptions::default(), Vec::new())
            .await
    }

    /// Sends a message to every member of a group, with capacity rules.
    pub async fn group_send_with(
        &self,
        group: &str,
        message: impl Into<Bytes>,
        options: SendOptions,
        channel_capacity: Vec<pb::CapacityRule>,
    ) -> Result<GroupSent, ClientError> {
        let response = self
            .grpc
            .clone()
            .group_send(pb::GroupSendRequest {
                namespace: self.namespace.clone(),
                group: group.to_owned(),
                message: message.into(),
                capacity: options.capacity,
                channel_capacity,
                expiry_ms: expiry_ms(options.expiry),
            })
            .await?
            .into_inner();
        Ok(GroupSent {
            delivered: response.delivered,
            dropped: response.dropped,
        })
    }

    /// Clears the namespace.
    pub async fn flush(&self) -> Result<pb::FlushResponse, ClientError> {
        Ok(self
            .grpc
            .clone()
            .flush(pb::FlushRequest {
                namespace: self.namespace.clone(),
            })
            .await?
            .into_inner())
    }

    /// How many members a group has.
    pub async fn group_size(&self, group: &str) -> Result<u32, ClientError> {
        Ok(self
            .grpc
            .clone()
            .get_group(pb::GetGroupRequest {
                namespace: self.namespace.clone(),
                group: group.to_owned(),
            })
            .await?
            .into_inner()
            .member_count)
    }

    /// Every member of a group, in name order, fetched page by page.
    pub async fn group_members(&self, group: &str) -> Result<Vec<String>, ClientError> {
        let mut members = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .grpc
                .clone()
                .list_group_members(pb::ListGroupMembersRequest {
                    namespace: self.namespace.clone(),
                    group: group.to_owned(),
                    page_size: 0,
                    page_token,
                })
                .await?
                .into_inner();
            members.extend(page.members.into_iter().map(|m| m.channel));
            if page.next_page_token.is_empty() {
                return Ok(members);
            }
            page_token = page.next_page_token;
        }
    }

    /// The depth of a channel.
    pub async fn channel_info(&self, channel: &str) -> Result<pb::GetChannelResponse, ClientError> {
        Ok(self
            .grpc
            .clone()
            .get_channel(pb::GetChannelRequest {
                namespace: self.namespace.clone(),
                channel: channel.to_owned(),
            })
            .await?
            .into_inner())
    }

    /// The server's counters and gauges.
    pub async fn stats(&self) -> Result<pb::GetServerStatsResponse, ClientError> {
        Ok(self
            .grpc
            .clone()
            .get_server_stats(pb::GetServerStatsRequest::default())
            .await?
            .into_inner())
    }

    /// Opens a new session with a server-chosen client prefix.
    pub async fn session(&self) -> Result<Session, ClientError> {
        self.open_session(pb::OpenOperation {
            namespace: self.namespace.clone(),
            client_name: concat!("chanlayer-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            shared_deliveries: true,
            ..Default::default()
        })
        .await
    }

    /// Resumes a session with its resume token (or opens a new one if the server no longer
    /// knows the token).
    pub async fn resume_session(
        &self,
        client_prefix: &str,
        resume_token: &str,
    ) -> Result<Session, ClientError> {
        self.open_session(pb::OpenOperation {
            namespace: self.namespace.clone(),
            client_prefix: client_prefix.to_owned(),
            resume_token: resume_token.to_owned(),
            client_name: concat!("chanlayer-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            shared_deliveries: true,
        })
        .await
    }

    /// Opens a session with every field of `open` chosen by the caller.
    pub async fn open_session(&self, open: pb::OpenOperation) -> Result<Session, ClientError> {
        Session::open(self.grpc.clone(), open).await
    }
}
