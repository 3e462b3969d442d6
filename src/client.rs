//! A typed Rust client: unary calls on [`Client`], and a [`Session`] stream that
//! multiplexes receives and batches operations.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chanlayer::client::ClientError> {
//! use chanlayer::client::Client;
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

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::stream;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, ClientTlsConfig, Endpoint},
};
use tonic_types::StatusExt;

use crate::proto::{
    frame::FrameBuilder,
    v1::{
        self as pb, channel_layer_service_client::ChannelLayerServiceClient, session_event,
        session_operation::Operation,
    },
};

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
            ClientError::InvalidToken => Code::InvalidArgument,
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

fn expiry_ms(expiry: Option<Duration>) -> u64 {
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
    /// Connects to `endpoint` (for example `http://127.0.0.1:50051`), with no token and
    /// no TLS.
    pub async fn connect(
        endpoint: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Result<Self, ClientError> {
        Self::connect_with(endpoint, namespace, ConnectOptions::default()).await
    }

    /// Connects to `endpoint` (`https://` with [`ConnectOptions::tls`]) with `options`.
    pub async fn connect_with(
        endpoint: impl Into<String>,
        namespace: impl Into<String>,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let token = match &options.token {
            Some(token) => BearerToken::new(token)?,
            None => BearerToken::default(),
        };
        let mut endpoint = Endpoint::from_shared(endpoint.into())?
            .tcp_nodelay(true)
            .initial_stream_window_size(Some(4 * 1024 * 1024))
            .initial_connection_window_size(Some(16 * 1024 * 1024));
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
            .get_server_stats(pb::GetServerStatsRequest {})
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

enum Answer {
    Delivery(pb::Delivery),
    Failed(pb::ErrorDetail),
}

#[derive(Default)]
struct Dispatch {
    receives: HashMap<u64, (String, oneshot::Sender<Answer>)>,
    /// Operations awaiting their result, in the order they were queued, which is the
    /// order the server acknowledges them in.
    results: VecDeque<(u64, oneshot::Sender<pb::OperationResult>)>,
    cancels: HashMap<u64, VecDeque<oneshot::Sender<bool>>>,
    /// Messages delivered to receives whose caller had gone; the next receive of the
    /// channel takes them first.
    leftovers: HashMap<String, VecDeque<Received>>,
    closed: bool,
    closing: Option<i32>,
}

struct SessionShared {
    dispatch: Mutex<Dispatch>,
    /// The operations' queue; taken away when the session is dropped, which ends the
    /// request stream.
    ops: Mutex<Option<mpsc::UnboundedSender<Operation>>>,
    next_id: AtomicU64,
}

impl SessionShared {
    fn queue(&self, op: Operation) -> Result<(), ClientError> {
        match &*self.ops.lock() {
            Some(ops) => ops.send(op).map_err(|_| ClientError::SessionClosed),
            None => Err(ClientError::SessionClosed),
        }
    }
}

/// A session stream: receives multiplexed on one stream, and sends and group operations
/// batched into frames.
pub struct Session {
    shared: Arc<SessionShared>,
    opened: pb::SessionOpened,
}

impl Session {
    async fn open(mut grpc: GrpcClient, open: pb::OpenOperation) -> Result<Self, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel::<Operation>();
        tx.send(Operation::Open(open)).expect("receiver is alive");
        // One frame: what is queued now, within the frame limits; an operation that does not
        // fit opens the next frame.
        let frames = stream::unfold((rx, None), |(mut rx, next)| async move {
            let mut frame = FrameBuilder::new();
            frame.push(match next {
                Some(op) => op,
                None => rx.recv().await?,
            });
            let mut next = None;
            while let Ok(op) = rx.try_recv() {
                if !frame.has_room_for(&op) {
                    next = Some(op);
                    break;
                }
                frame.push(op);
            }
            Some((frame.into_request(), (rx, next)))
        });
        let mut inbound = grpc.session(frames).await?.into_inner();
        let first = inbound.message().await?.ok_or(ClientError::SessionClosed)?;
        let mut events = first.events.into_iter();
        let opened = match events.next().and_then(|e| e.event) {
            Some(session_event::Event::Opened(opened)) => opened,
            _ => {
                return Err(ClientError::Status(Status::internal(
                    "the server's first session event was not opened",
                )));
            }
        };
        let shared = Arc::new(SessionShared {
            dispatch: Mutex::new(Dispatch::default()),
            ops: Mutex::new(Some(tx)),
            next_id: AtomicU64::new(1),
        });
        let reader = Arc::clone(&shared);
        tokio::spawn(async move {
            let rest: Vec<_> = events.collect();
            dispatch(&reader, rest);
            while let Ok(Some(frame)) = inbound.message().await {
                dispatch(&reader, frame.events);
            }
            let mut d = reader.dispatch.lock();
            d.closed = true;
            d.receives.clear();
            d.results.clear();
            d.cancels.clear();
        });
        Ok(Self { shared, opened })
    }

    /// The session's client prefix.
    pub fn client_prefix(&self) -> &str {
        &self.opened.client_prefix
    }

    /// The token that resumes this session on a new stream.
    pub fn resume_token(&self) -> &str {
        &self.opened.resume_token
    }

    /// What the server answered to open.
    pub fn opened(&self) -> &pb::SessionOpened {
        &self.opened
    }

    /// A new process-specific channel name: `<prefix>.<client_prefix>!<random>`.
    pub fn new_channel(&self, prefix: &str) -> String {
        let random: u64 = rand::random();
        format!("{prefix}.{}!{random:016x}", self.opened.client_prefix)
    }

    /// How the server closed the stream, if it said.
    pub fn closing_reason(&self) -> Option<pb::SessionCloseReason> {
        self.shared
            .dispatch
            .lock()
            .closing
            .and_then(|r| pb::SessionCloseReason::try_from(r).ok())
    }

    /// True when the stream has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.dispatch.lock().closed
    }

    /// Receives one message from `channel`, waiting for it.
    pub async fn receive(&self, channel: &str) -> Result<Received, ClientError> {
        let mut messages = self.receive_many(channel, 1).await?;
        Ok(messages.remove(0))
    }

    /// Receives between one and `max` messages from `channel`, waiting for the first.
    /// Dropping the future cancels the receive; a message that was already on its way
    /// is kept for the next receive of the channel.
    pub async fn receive_many(
        &self,
        channel: &str,
        max: u32,
    ) -> Result<Vec<Received>, ClientError> {
        let pending = self.start_receive(channel, max)?;
        pending.wait().await
    }

    /// Registers a receive and returns a handle to wait for it or cancel it.
    pub fn start_receive(&self, channel: &str, max: u32) -> Result<PendingReceive, ClientError> {
        let receive_id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut d = self.shared.dispatch.lock();
            if d.closed {
                return Err(ClientError::SessionClosed);
            }
            if let Some(buffered) = d.leftovers.get_mut(channel)
                && let Some(first) = buffered.pop_front()
            {
                let mut messages = vec![first];
                while messages.len() < max.max(1) as usize {
                    match buffered.pop_front() {
                        Some(m) => messages.push(m),
                        None => break,
                    }
                }
                return Ok(PendingReceive {
                    receive_id,
                    ready: Some(messages),
                    rx: None,
                    shared: Arc::clone(&self.shared),
                    done: true,
                });
            }
            d.receives.insert(receive_id, (channel.to_owned(), tx));
        }
        self.shared.queue(Operation::Receive(pb::ReceiveOperation {
            receive_id,
            channel: channel.to_owned(),
            max_messages: max,
        }))?;
        Ok(PendingReceive {
            receive_id,
            ready: None,
            rx: Some(rx),
            shared: Arc::clone(&self.shared),
            done: false,
        })
    }

    fn next_request_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn request(
        &self,
        request_id: u64,
        op: Operation,
    ) -> impl Future<Output = Result<pb::OperationResult, ClientError>> + use<> {
        let (tx, rx) = oneshot::channel();
        let queued = {
            // Queue under the dispatch lock, so `results` stays in queue order.
            let mut d = self.shared.dispatch.lock();
            if d.closed {
                Err(ClientError::SessionClosed)
            } else {
                let queued = self.shared.queue(op);
                if queued.is_ok() {
                    d.results.push_back((request_id, tx));
                }
                queued
            }
        };
        async move {
            queued?;
            let result = rx.await.map_err(|_| ClientError::SessionClosed)?;
            match result.error {
                Some(detail) => Err(ClientError::from_detail(detail)),
                None => Ok(result),
            }
        }
    }

    /// Sends a message on the stream. The operation is queued when this is called; the
    /// future waits for its acknowledgement and gives whether the message went straight to
    /// a waiting receive.
    pub fn send(
        &self,
        channel: &str,
        message: Bytes,
        options: SendOptions,
    ) -> impl Future<Output = Result<bool, ClientError>> + use<> {
        let report = self.send_reporting(channel, message, options);
        async move { Ok(report.await?.delivered) }
    }

    /// [`send`](Self::send), giving the whole acknowledgement: also how many messages the
    /// channel holds after this one (see `OperationResult.queued`).
    pub fn send_reporting(
        &self,
        channel: &str,
        message: Bytes,
        options: SendOptions,
    ) -> impl Future<Output = Result<SendReport, ClientError>> + use<> {
        let request_id = self.next_request_id();
        let ack = self.request(
            request_id,
            Operation::Send(pb::SendOperation {
                request_id,
                channel: channel.to_owned(),
                message,
                capacity: options.capacity,
                expiry_ms: expiry_ms(options.expiry),
            }),
        );
        async move {
            let result = ack.await?;
            Ok(SendReport {
                delivered: result.delivered,
                queued: result.queued,
            })
        }
    }

    /// Adds a channel to a group on the stream.
    pub fn group_add(
        &self,
        group: &str,
        channel: &str,
    ) -> impl Future<Output = Result<bool, ClientError>> + use<> {
        let request_id = self.next_request_id();
        let ack = self.request(
            request_id,
            Operation::GroupAdd(pb::GroupAddOperation {
                request_id,
                group: group.to_owned(),
                channel: channel.to_owned(),
                group_expiry_seconds: 0,
            }),
        );
        async move { Ok(ack.await?.changed) }
    }

    /// Removes a channel from a group on the stream.
    pub fn group_discard(
        &self,
        group: &str,
        channel: &str,
    ) -> impl Future<Output = Result<bool, ClientError>> + use<> {
        let request_id = self.next_request_id();
        let ack = self.request(
            request_id,
            Operation::GroupDiscard(pb::GroupDiscardOperation {
                request_id,
                group: group.to_owned(),
                channel: channel.to_owned(),
            }),
        );
        async move { Ok(ack.await?.changed) }
    }

    /// Sends a message to a group on the stream.
    pub fn group_send(
        &self,
        group: &str,
        message: Bytes,
        options: SendOptions,
    ) -> impl Future<Output = Result<GroupSent, ClientError>> + use<> {
        let request_id = self.next_request_id();
        let ack = self.request(
            request_id,
            Operation::GroupSend(pb::GroupSendOperation {
                request_id,
                group: group.to_owned(),
                message,
                capacity: options.capacity,
                channel_capacity: Vec::new(),
                expiry_ms: expiry_ms(options.expiry),
            }),
        );
        async move {
            let result = ack.await?;
            Ok(GroupSent {
                delivered: result.delivered_count,
                dropped: result.dropped_count,
            })
        }
    }

    /// Queues a raw operation, for operations this type does not wrap.
    pub fn queue_raw(&self, op: Operation) -> Result<(), ClientError> {
        self.shared.queue(op)
    }

    /// Ends the session for good: the server releases its channels and memberships now.
    pub fn close(&self) -> Result<(), ClientError> {
        self.shared.queue(Operation::Close(pb::CloseOperation {}))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Ending the request stream ends the session's stream on the server, which keeps
        // the session resumable for its lease grace period.
        self.shared.ops.lock().take();
    }
}

/// A receive registered on a session.
pub struct PendingReceive {
    receive_id: u64,
    ready: Option<Vec<Received>>,
    rx: Option<oneshot::Receiver<Answer>>,
    shared: Arc<SessionShared>,
    done: bool,
}

impl PendingReceive {
    /// The receive's id on the stream.
    pub fn id(&self) -> u64 {
        self.receive_id
    }

    /// Waits for the messages.
    pub async fn wait(mut self) -> Result<Vec<Received>, ClientError> {
        if let Some(ready) = self.ready.take() {
            return Ok(ready);
        }
        // The receiver stays in `self` while waiting, so that if this future is dropped,
        // `Drop` finds a delivery that already arrived and keeps it.
        let rx = self.rx.as_mut().expect("a pending receive has a receiver");
        let answer = rx.await.map_err(|_| ClientError::SessionClosed);
        self.done = true;
        match answer? {
            Answer::Delivery(delivery) => Ok(to_received(delivery)),
            Answer::Failed(detail) => Err(ClientError::from_detail(detail)),
        }
    }

    /// Cancels the receive. Returns the server's `was_pending`: false means the messages
    /// were already on their way; they are kept for the channel's next receive.
    pub async fn cancel(mut self) -> Result<bool, ClientError> {
        self.done = true;
        if self.ready.is_some() {
            // Served from the local buffer: give the messages back.
            let ready = self.ready.take().unwrap_or_default();
            let mut d = self.shared.dispatch.lock();
            for m in ready.into_iter().rev() {
                d.leftovers
                    .entry(m.channel.to_string())
                    .or_default()
                    .push_front(m);
            }
            return Ok(false);
        }
        cancel_receive(&self.shared, self.receive_id)?.await
    }
}

fn cancel_receive(
    shared: &Arc<SessionShared>,
    receive_id: u64,
) -> Result<impl Future<Output = Result<bool, ClientError>> + use<>, ClientError> {
    let (tx, rx) = oneshot::channel();
    {
        let mut d = shared.dispatch.lock();
        if d.closed {
            return Err(ClientError::SessionClosed);
        }
        d.cancels.entry(receive_id).or_default().push_back(tx);
        // The receive's caller is gone: a delivery that still comes goes to leftovers.
        if let Some((_, sender)) = d.receives.get_mut(&receive_id) {
            let (dead, _) = oneshot::channel();
            *sender = dead;
        }
    }
    shared.queue(Operation::Cancel(pb::CancelOperation { receive_id }))?;
    Ok(async move { rx.await.map_err(|_| ClientError::SessionClosed) })
}

impl Drop for PendingReceive {
    fn drop(&mut self) {
        let mut back = self.ready.take().unwrap_or_default();
        if !self.done {
            // Withdraw the receive first: after this, a delivery that still comes goes to
            // the leftovers; then keep one that already arrived.
            if let Ok(ack) = cancel_receive(&self.shared, self.receive_id) {
                drop(ack);
            }
            if let Some(mut rx) = self.rx.take()
                && let Ok(Answer::Delivery(delivery)) = rx.try_recv()
            {
                back = to_received(delivery);
            }
        }
        if back.is_empty() {
            return;
        }
        let mut d = self.shared.dispatch.lock();
        for m in back.into_iter().rev() {
            d.leftovers
                .entry(m.channel.to_string())
                .or_default()
                .push_front(m);
        }
    }
}

fn to_received(delivery: pb::Delivery) -> Vec<Received> {
    let channel: Arc<str> = delivery.channel.into();
    delivery
        .messages
        .into_iter()
        .map(|m| Received {
            channel: channel.clone(),
            payload: m.message,
            expires_in: Duration::from_millis(m.expires_in_ms),
        })
        .collect()
}

/// Hands `delivery` to the receive waiting on `tx`; keeps its messages for the channel's
/// next receive when that one is gone.
fn answer(d: &mut Dispatch, tx: oneshot::Sender<Answer>, delivery: pb::Delivery) {
    if let Err(Answer::Delivery(delivery)) = tx.send(Answer::Delivery(delivery)) {
        let channel = delivery.channel.clone();
        d.leftovers
            .entry(channel)
            .or_default()
            .extend(to_received(delivery));
    }
}

fn dispatch(shared: &SessionShared, events: Vec<pb::SessionEvent>) {
    let mut d = shared.dispatch.lock();
    for event in events.into_iter().filter_map(|e| e.event) {
        match event {
            session_event::Event::Delivery(delivery) => {
                if let Some((_, tx)) = d.receives.remove(&delivery.receive_id) {
                    answer(&mut d, tx, delivery);
                }
            }
            session_event::Event::SharedDelivery(one) => {
                for receive_id in one.receive_ids {
                    if let Some((channel, tx)) = d.receives.remove(&receive_id) {
                        let delivery = pb::Delivery {
                            receive_id,
                            channel,
                            messages: vec![pb::DeliveredMessage {
                                message: one.message.clone(),
                                expires_in_ms: one.expires_in_ms,
                            }],
                        };
                        answer(&mut d, tx, delivery);
                    }
                }
            }
            session_event::Event::ReceiveFailed(failed) => {
                if let Some((_, tx)) = d.receives.remove(&failed.receive_id) {
                    let _ = tx.send(Answer::Failed(failed.error.unwrap_or_default()));
                }
            }
            session_event::Event::Result(result) => {
                let position = match d.results.front() {
                    Some((id, _)) if *id == result.request_id => Some(0),
                    _ => d
                        .results
                        .iter()
                        .position(|(id, _)| *id == result.request_id),
                };
                if let Some((_, tx)) = position.and_then(|p| d.results.remove(p)) {
                    let _ = tx.send(result);
                }
            }
            session_event::Event::Cancelled(cancelled) => {
                if cancelled.was_pending {
                    d.receives.remove(&cancelled.receive_id);
                }
                if let Some(waiting) = d.cancels.get_mut(&cancelled.receive_id) {
                    if let Some(tx) = waiting.pop_front() {
                        let _ = tx.send(cancelled.was_pending);
                    }
                    if waiting.is_empty() {
                        d.cancels.remove(&cancelled.receive_id);
                    }
                }
            }
            session_event::Event::Closing(closing) => d.closing = Some(closing.reason),
            session_event::Event::Opened(_) => {}
        }
    }
}
