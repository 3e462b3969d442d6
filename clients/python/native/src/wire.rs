//! Direct I/O: HTTP/2 over a non-blocking socket, driven on the event loop's own thread.
//!
//! With the threaded transport every message costs two thread handoffs on the client (the
//! loop wakes the I/O thread to write, the I/O thread wakes the loop when the answer is in)
//! on top of the network round trip; on a busy machine each handoff waits for a CPU. Here the
//! loop's thread writes the frames itself and reads the answers when the socket is readable
//! (`loop.add_reader`), so a round trip is one write, one wakeup and one read.
//!
//! [`Wire`] is a small executor: `h2` futures are polled with a waker that only records that
//! it was woken, and the socket returns `Pending` when it would block. Python calls
//! [`crate::Connection`]'s `pump` when the socket is readable (or writable, while a write is
//! blocked) and after queuing frames; `poll` then runs every future until none makes
//! progress and returns what completed. It is used for plaintext targets; TLS goes through
//! the threaded transport.
//!
//! The socket is a TCP socket (`host:port`) or a Unix domain socket (`unix:PATH`, a sidecar
//! sharing a volume with its gateway): both are a `socket2::Socket`, connected without
//! blocking, so everything past [`Peer`] and `start_connect` is one code path.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    io::{self, ErrorKind, Read, Write},
    net::SocketAddr,
    os::fd::AsRawFd,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use chanlayer_proto::{
    frame::FrameBuilder,
    v1::{self as pb, session_operation::Operation},
};
use h2::{
    RecvStream, SendStream,
    client::{Connection as H2Connection, ResponseFuture, SendRequest},
};
use prost::Message;
use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::{Code, Status, metadata::AsciiMetadataValue};

use crate::completion::{Completion, Failure};

/// `EINPROGRESS` (Linux and macOS differ; both are checked).
const IN_PROGRESS: [i32; 2] = [115, 36];
/// `ENOTCONN` on Linux and macOS.
const NOT_CONNECTED: [i32; 2] = [107, 57];

type Handshake = Pin<
    Box<
        dyn Future<Output = Result<(SendRequest<Bytes>, H2Connection<Io, Bytes>), h2::Error>>
            + Send,
    >,
>;

/// Where the connection goes.
#[derive(Debug, Clone)]
pub(crate) enum Peer {
    /// A TCP address (the target's host resolved by the loop).
    Tcp(SocketAddr),
    /// The path of a Unix domain socket.
    Unix(PathBuf),
}

/// The connection's state.
enum State {
    Down,
    Connecting(Socket),
    Handshaking(Handshake),
    Up(Box<Up>),
}

/// An open HTTP/2 connection.
struct Up {
    send: SendRequest<Bytes>,
    connection: H2Connection<Io, Bytes>,
}

/// Whom a stream's end is reported to.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Session { engine: u64, generation: u64 },
    Call { id: u64 },
}

/// One gRPC call on the connection.
struct Call {
    owner: Owner,
    /// The request headers, until the connection can take a new stream.
    request: Option<http::Request<()>>,
    /// Frames written before the stream existed.
    queued: VecDeque<Bytes>,
    /// End the request after the queued frames (unary calls).
    end: bool,
    send: Option<SendStream<Bytes>>,
    response: Option<ResponseFuture>,
    recv: Option<RecvStream>,
    buf: BytesMut,
    /// The response message of a unary call.
    message: Option<Bytes>,
}

/// Records that a future asked to be polled again.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A non-blocking socket as tokio's I/O traits, for `h2`: `Pending` when it would block
/// (the loop polls again when the socket is ready); a blocked write is remembered, so that
/// the loop also waits for writability.
pub(crate) struct Io {
    /// The connected socket, TCP or Unix.
    stream: Socket,
    write_blocked: Arc<AtomicBool>,
    /// False after a read found nothing, until the loop says the socket is readable: saves
    /// the system calls that would find nothing again.
    readable: Arc<AtomicBool>,
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.readable.load(Ordering::Relaxed) {
            return Poll::Pending;
        }
        loop {
            match (&this.stream).read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    this.readable.store(false, Ordering::Relaxed);
                    return Poll::Pending;
                }
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl Io {
    /// Runs a write on the non-blocking socket: `Pending` (and the write remembered as
    /// blocked) when it would block, retried when interrupted.
    fn write_with(
        &mut self,
        mut write: impl FnMut(&Socket) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match write(&self.stream) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    self.write_blocked.store(true, Ordering::Relaxed);
                    return Poll::Pending;
                }
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_with(|mut stream| stream.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .write_with(|mut stream| stream.write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        Poll::Ready(Ok(()))
    }
}

/// The HTTP/2 connection of one event loop, polled on the loop's thread.
pub(crate) struct Wire {
    /// `host:port`, the requests' authority.
    authority: String,
    authorization: Option<AsciiMetadataValue>,
    state: State,
    calls: HashMap<u64, Call>,
    next_key: u64,
    /// Calls (`connect`) waiting for the connection.
    connect_waiters: Vec<u64>,
    woken: Arc<Flag>,
    waker: Waker,
    write_blocked: Arc<AtomicBool>,
    readable: Arc<AtomicBool>,
    /// The connected socket's descriptor.
    fd: Option<i32>,
    /// Counts sockets, so that a new socket that reuses a closed one's descriptor number
    /// is registered with the loop anew.
    socket_id: u64,
}

impl Wire {
    pub(crate) fn new(authority: String, authorization: Option<AsciiMetadataValue>) -> Self {
        let woken = Arc::new(Flag(AtomicBool::new(false)));
        Self {
            authority,
            authorization,
            state: State::Down,
            calls: HashMap::new(),
            next_key: 1,
            connect_waiters: Vec::new(),
            waker: Waker::from(Arc::clone(&woken)),
            woken,
            write_blocked: Arc::new(AtomicBool::new(false)),
            readable: Arc::new(AtomicBool::new(true)),
            fd: None,
            socket_id: 0,
        }
    }

    /// True when the connection is up.
    pub(crate) fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_))
    }

    /// The socket to watch (descriptor, socket id), and whether for writing too.
    pub(crate) fn interest(&self) -> Option<(i32, u64, bool)> {
        match &self.state {
            State::Down => None,
            State::Connecting(socket) => Some((socket.as_raw_fd(), self.socket_id, true)),
            State::Handshaking(_) | State::Up(_) => self.fd.map(|fd| {
                (
                    fd,
                    self.socket_id,
                    self.write_blocked.load(Ordering::Relaxed),
                )
            }),
        }
    }

    /// Starts connecting to `peer`; the call `id` completes with `Ready` when it is up or
    /// failed. Joins an attempt already under way.
    pub(crate) fn connect(&mut self, peer: &Peer, id: u64, out: &mut Vec<Completion>) {
        match self.state {
            State::Up(_) => out.push(Completion::Ready { id, ok: true }),
            State::Connecting(_) | State::Handshaking(_) => self.connect_waiters.push(id),
            State::Down => match start_connect(peer) {
                Ok(socket) => {
                    self.socket_id += 1;
                    self.state = State::Connecting(socket);
                    self.connect_waiters.push(id);
                }
                Err(_) => out.push(Completion::Ready { id, ok: false }),
            },
        }
    }

    /// Opens a session stream and writes `open` on it; returns the stream's key.
    pub(crate) fn open_session(&mut self, engine: u64, generation: u64, open: Operation) -> u64 {
        let key = self.add_call(
            Owner::Session { engine, generation },
            "Session",
            None,
            false,
        );
        self.send_operations(key, vec![open]);
        key
    }

    /// Starts a unary call with an encoded request.
    pub(crate) fn unary(
        &mut self,
        id: u64,
        method: &str,
        body: &[u8],
        timeout: Duration,
        out: &mut Vec<Completion>,
    ) {
        if !self.is_up() {
            out.push(Completion::Call {
                id,
                result: Err(Failure::new(
                    Code::Unavailable,
                    "not connected to the chanlayer server",
                )),
            });
            return;
        }
        let key = self.add_call(Owner::Call { id }, method, Some(timeout), true);
        let call = self.calls.get_mut(&key).expect("just added");
        call.queued.push_back(grpc_frame(body));
    }

    fn add_call(
        &mut self,
        owner: Owner,
        method: &str,
        timeout: Option<Duration>,
        end: bool,
    ) -> u64 {
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(format!(
                "http://{}/chanlayer.v1.ChannelLayerService/{method}",
                self.authority
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header(
                "user-agent",
                concat!("chanlayer-native/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(value) = &self.authorization {
            request = request.header("authorization", value.as_encoded_bytes());
        }
        if let Some(timeout) = timeout {
            request = request.header("grpc-timeout", format!("{}m", timeout.as_millis().max(1)));
        }
        let key = self.next_key;
        self.next_key += 1;
        self.calls.insert(
            key,
            Call {
                owner,
                request: request.body(()).ok(),
                queued: VecDeque::new(),
                end,
                send: None,
                response: None,
                recv: None,
                buf: BytesMut::new(),
                message: None,
            },
        );
        key
    }

    /// Writes operations on a session stream, as frames within the frame limits.
    pub(crate) fn send_operations(&mut self, key: u64, operations: Vec<Operation>) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let mut frame = FrameBuilder::new();
        for op in operations {
            if !frame.has_room_for(&op) {
                call.write(session_frame(frame.take()));
            }
            frame.push(op);
        }
        if !frame.is_empty() {
            call.write(session_frame(frame.take()));
        }
    }

    /// Ends a stream now (reset), without reporting its end.
    pub(crate) fn abort(&mut self, key: u64) {
        if let Some(mut call) = self.calls.remove(&key)
            && let Some(send) = call.send.as_mut()
        {
            send.send_reset(h2::Reason::CANCEL);
        }
    }

    /// Drops the connection: every call and stream on it ends with `failure`.
    pub(crate) fn shut(&mut self, failure: &Failure, out: &mut Vec<Completion>) {
        self.state = State::Down;
        self.write_blocked.store(false, Ordering::Relaxed);
        self.fd = None;
        for id in self.connect_waiters.drain(..) {
            out.push(Completion::Ready { id, ok: false });
        }
        for (_, call) in self.calls.drain() {
            out.push(call.ended(Some(failure.clone())));
        }
    }

    /// Says the socket is readable (the loop's reader callback).
    pub(crate) fn set_readable(&self) {
        self.readable.store(true, Ordering::Relaxed);
    }

    /// Runs every future until none makes progress; returns what completed.
    pub(crate) fn poll(&mut self, out: &mut Vec<Completion>) {
        for _ in 0..64 {
            self.woken.0.store(false, Ordering::Relaxed);
            self.write_blocked.store(false, Ordering::Relaxed);
            let waker = self.waker.clone();
            let mut cx = Context::from_waker(&waker);
            self.poll_state(&mut cx, out);
            if self.is_up() {
                self.poll_calls(&mut cx, out);
            }
            if !self.woken.0.load(Ordering::Relaxed) {
                return;
            }
        }
    }

    fn poll_state(&mut self, cx: &mut Context<'_>, out: &mut Vec<Completion>) {
        loop {
            match &mut self.state {
                State::Down => return,
                State::Connecting(socket) => match connect_result(socket) {
                    Ok(false) => return,
                    Ok(true) => {
                        let State::Connecting(socket) =
                            std::mem::replace(&mut self.state, State::Down)
                        else {
                            unreachable!()
                        };
                        self.fd = Some(socket.as_raw_fd());
                        let io = Io {
                            stream: socket,
                            write_blocked: Arc::clone(&self.write_blocked),
                            readable: Arc::clone(&self.readable),
                        };
                        self.readable.store(true, Ordering::Relaxed);
                        let handshake = h2::client::Builder::new()
                            .initial_window_size(4 * 1024 * 1024)
                            .initial_connection_window_size(16 * 1024 * 1024)
                            .max_frame_size(1024 * 1024)
                            .handshake::<_, Bytes>(io);
                        self.state = State::Handshaking(Box::pin(handshake));
                    }
                    Err(err) => {
                        self.shut(&Failure::new(Code::Unavailable, err.to_string()), out);
                        return;
                    }
                },
                State::Handshaking(handshake) => match handshake.as_mut().poll(cx) {
                    Poll::Pending => return,
                    Poll::Ready(Ok((send, connection))) => {
                        self.state = State::Up(Box::new(Up { send, connection }));
                        for id in self.connect_waiters.drain(..) {
                            out.push(Completion::Ready { id, ok: true });
                        }
                    }
                    Poll::Ready(Err(err)) => {
                        self.shut(&Failure::new(Code::Unavailable, err.to_string()), out);
                        return;
                    }
                },
                State::Up(up) => {
                    match Pin::new(&mut up.connection).poll(cx) {
                        Poll::Pending => {}
                        Poll::Ready(result) => {
                            let message = match result {
                                Ok(()) => "the connection was closed".to_owned(),
                                Err(err) => err.to_string(),
                            };
                            self.shut(&Failure::new(Code::Unavailable, message), out);
                        }
                    }
                    return;
                }
            }
        }
    }

    fn poll_calls(&mut self, cx: &mut Context<'_>, out: &mut Vec<Completion>) {
        let State::Up(up) = &mut self.state else {
            return;
        };
        let send = &mut up.send;
        let mut finished = Vec::new();
        for (key, call) in self.calls.iter_mut() {
            if call.request.is_some() {
                match send.poll_ready(cx) {
                    Poll::Pending => continue,
                    Poll::Ready(Err(err)) => {
                        finished
                            .push((*key, Some(Failure::new(Code::Unavailable, err.to_string()))));
                        continue;
                    }
                    Poll::Ready(Ok(())) => {}
                }
                let request = call.request.take().expect("checked");
                match send.send_request(request, false) {
                    Ok((response, stream)) => {
                        call.response = Some(response);
                        call.send = Some(stream);
                        while let Some(frame) = call.queued.pop_front() {
                            call.write(frame);
                        }
                        if call.end {
                            call.finish_request();
                        }
                    }
                    Err(err) => {
                        finished
                            .push((*key, Some(Failure::new(Code::Unavailable, err.to_string()))));
                        continue;
                    }
                }
            }
            match call.poll_response(cx, out) {
                Poll::Pending => {}
                Poll::Ready(failure) => finished.push((*key, failure)),
            }
        }
        for (key, failure) in finished {
            if let Some(call) = self.calls.remove(&key) {
                out.push(call.ended(failure));
            }
        }
    }
}

impl Call {
    /// Writes one gRPC frame (or queues it until the stream exists).
    fn write(&mut self, frame: Bytes) {
        match self.send.as_mut() {
            Some(send) => {
                let _ = send.send_data(frame, false);
            }
            None => self.queued.push_back(frame),
        }
    }

    fn finish_request(&mut self) {
        if let Some(send) = self.send.as_mut() {
            let _ = send.send_data(Bytes::new(), true);
        }
    }

    /// Reads what arrived; `Ready` with the call's status when it ended.
    fn poll_response(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Completion>,
    ) -> Poll<Option<Failure>> {
        if let Some(response) = self.response.as_mut() {
            match Pin::new(response).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(err)) => return Poll::Ready(Some(h2_failure(&err))),
                Poll::Ready(Ok(response)) => {
                    self.response = None;
                    if response.status() != http::StatusCode::OK {
                        return Poll::Ready(Some(Failure::new(
                            Code::Unknown,
                            format!("HTTP status {}", response.status()),
                        )));
                    }
                    // A trailers-only response carries the status in its headers.
                    if let Some(status) = Status::from_header_map(response.headers()) {
                        return Poll::Ready(status_failure(&status));
                    }
                    self.recv = Some(response.into_body());
                }
            }
        }
        let Some(recv) = self.recv.as_mut() else {
            return Poll::Pending;
        };
        loop {
            match recv.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let _ = recv.flow_control().release_capacity(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                    if let Err(failure) =
                        take_messages(&mut self.buf, self.owner, &mut self.message, out)
                    {
                        return Poll::Ready(Some(failure));
                    }
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(h2_failure(&err))),
                Poll::Ready(None) => {
                    return match recv.poll_trailers(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(Ok(Some(trailers))) => Poll::Ready(
                            Status::from_header_map(&trailers)
                                .map_or_else(missing_status, |status| status_failure(&status)),
                        ),
                        Poll::Ready(Ok(None)) => Poll::Ready(missing_status()),
                        Poll::Ready(Err(err)) => Poll::Ready(Some(h2_failure(&err))),
                    };
                }
            }
        }
    }

    /// What reports the end of this call.
    fn ended(self, failure: Option<Failure>) -> Completion {
        match self.owner {
            Owner::Session { engine, generation } => Completion::Ended {
                engine,
                generation,
                failure,
            },
            Owner::Call { id } => Completion::Call {
                id,
                result: match failure {
                    Some(failure) => Err(failure),
                    None => Ok(self.message.unwrap_or_default()),
                },
            },
        }
    }
}

/// Takes the complete gRPC messages out of a call's buffer: a session's frames go to `out`,
/// a unary call's message to `message`.
fn take_messages(
    buf: &mut BytesMut,
    owner: Owner,
    message: &mut Option<Bytes>,
    out: &mut Vec<Completion>,
) -> Result<(), Failure> {
    while buf.len() >= 5 {
        if buf[0] != 0 {
            return Err(Failure::new(
                Code::Internal,
                "compressed messages are not supported",
            ));
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            buf.reserve(5 + len - buf.len());
            return Ok(());
        }
        buf.advance(5);
        let body = buf.split_to(len).freeze();
        match owner {
            Owner::Session { engine, generation } => {
                let frame = pb::SessionResponse::decode(body)
                    .map_err(|err| Failure::new(Code::Internal, err.to_string()))?;
                out.push(Completion::Frame {
                    engine,
                    generation,
                    events: frame.events,
                });
            }
            Owner::Call { .. } => *message = Some(body),
        }
    }
    Ok(())
}

/// None for OK (and CANCELLED, a stream we ended), else the failure.
fn status_failure(status: &Status) -> Option<Failure> {
    match status.code() {
        Code::Ok | Code::Cancelled => None,
        _ => Some(Failure::from_status(status)),
    }
}

fn missing_status() -> Option<Failure> {
    Some(Failure::new(
        Code::Unknown,
        "the call ended without a status",
    ))
}

fn h2_failure(err: &h2::Error) -> Failure {
    let code = match err.reason() {
        Some(h2::Reason::CANCEL) => Code::Cancelled,
        Some(h2::Reason::REFUSED_STREAM) | None => Code::Unavailable,
        Some(_) => Code::Internal,
    };
    Failure::new(code, err.to_string())
}

/// A gRPC message frame (uncompressed) around an encoded message.
fn grpc_frame(body: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + body.len());
    frame.put_u8(0);
    frame.put_u32(body.len() as u32);
    frame.put_slice(body);
    frame.freeze()
}

fn session_frame(operations: Vec<pb::SessionOperation>) -> Bytes {
    let request = pb::SessionRequest { operations };
    let len = request.encoded_len();
    let mut frame = BytesMut::with_capacity(5 + len);
    frame.put_u8(0);
    frame.put_u32(len as u32);
    request.encode(&mut frame).expect("the buffer has the room");
    frame.freeze()
}

/// Starts a non-blocking connect.
fn start_connect(peer: &Peer) -> io::Result<Socket> {
    let (socket, address) = match peer {
        Peer::Tcp(addr) => {
            let socket = Socket::new(
                Domain::for_address(*addr),
                Type::STREAM,
                Some(Protocol::TCP),
            )?;
            socket.set_tcp_nodelay(true)?;
            let keepalive = TcpKeepalive::new().with_time(Duration::from_secs(30));
            let _ = socket.set_tcp_keepalive(&keepalive);
            (socket, SockAddr::from(*addr))
        }
        Peer::Unix(path) => (
            Socket::new(Domain::UNIX, Type::STREAM, None)?,
            SockAddr::unix(path)?,
        ),
    };
    socket.set_nonblocking(true)?;
    match socket.connect(&address) {
        Ok(()) => Ok(socket),
        Err(err) if err.raw_os_error().is_some_and(|e| IN_PROGRESS.contains(&e)) => Ok(socket),
        // A Unix socket whose listener's backlog is full says EAGAIN and never connects:
        // the attempt fails, and the caller's backoff tries again.
        Err(err) if err.kind() == ErrorKind::WouldBlock && matches!(peer, Peer::Tcp(_)) => {
            Ok(socket)
        }
        Err(err) => Err(err),
    }
}

/// Ok(true) once connected, Ok(false) while connecting.
fn connect_result(socket: &Socket) -> io::Result<bool> {
    if let Some(err) = socket.take_error()? {
        return Err(err);
    }
    match socket.peer_addr() {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .raw_os_error()
                .is_some_and(|e| NOT_CONNECTED.contains(&e)) =>
        {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}
