//! [`Connection`]: the tonic channel of one event loop, its unary calls, and the bridge that
//! hands completions from the tokio runtime back to the loop.

use std::{
    collections::HashMap,
    io::{ErrorKind, Read, Write},
    net::SocketAddr,
    os::{fd::AsRawFd, unix::net::UnixStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::{Buf, BufMut, Bytes};
use chanlayer_proto::v1 as pb;
use parking_lot::Mutex;
use pyo3::{exceptions::PyValueError, intern, prelude::*, types::PyBytes};
use tokio::{runtime::Handle, time::Instant};
use tonic::{
    Code, Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::{AsciiMetadataValue, MetadataValue},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{
    completion::{Completion, Failure},
    runtime,
    wire::{Peer, Wire},
};

/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The queue of completions and the socket that wakes the loop when it stops being empty.
pub(crate) struct Notifier {
    /// The completions, and whether the loop has been woken since it last drained them.
    inbox: Mutex<(Vec<Completion>, bool)>,
    /// The end of the socket pair the runtime writes to.
    wake: UnixStream,
}

impl Notifier {
    /// Queues a completion; wakes the loop unless it is already woken and has not drained.
    pub(crate) fn push(&self, item: Completion) {
        let signal = {
            let mut inbox = self.inbox.lock();
            inbox.0.push(item);
            !std::mem::replace(&mut inbox.1, true)
        };
        if signal {
            // A full socket buffer means the loop has a wakeup pending already.
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// What the runtime's tasks share with [`Connection`]: the channel and how to reach the loop.
pub(crate) struct Link {
    pub(crate) runtime: Handle,
    pub(crate) notifier: Notifier,
    endpoint: Endpoint,
    channel: Mutex<Option<Channel>>,
    /// False after a call or stream found the server unreachable: the next `wait_ready`
    /// connects anew instead of trusting the channel.
    healthy: AtomicBool,
    authorization: Option<AsciiMetadataValue>,
}

impl Link {
    pub(crate) fn channel(&self) -> Option<Channel> {
        self.channel.lock().clone()
    }

    pub(crate) fn mark_unhealthy(&self) {
        self.healthy.store(false, Ordering::Relaxed);
    }

    fn is_ready(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && self.channel.lock().is_some()
    }

    /// Adds the bearer token, if any, to a request.
    pub(crate) fn authorize<T>(&self, request: &mut Request<T>) {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
    }

    /// Connects anew, retrying with backoff until `timeout`; true on success.
    async fn connect(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut backoff = Duration::from_millis(100);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(Ok(channel)) = tokio::time::timeout(left, self.endpoint.connect()).await {
                *self.channel.lock() = Some(channel);
                self.healthy.store(true, Ordering::Relaxed);
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            tokio::time::sleep(backoff.min(left)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn unary(
        &self,
        path: http::uri::PathAndQuery,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, Failure> {
        let Some(channel) = self.channel() else {
            return Err(Failure::new(
                Code::Unavailable,
                "not connected to the chanlayer server",
            ));
        };
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let mut request = Request::new(body);
        request.set_timeout(timeout);
        self.authorize(&mut request);
        let call = async {
            grpc.ready()
                .await
                .map_err(|err| Status::unavailable(err.to_string()))?;
            grpc.unary(request, path, RawCodec).await
        };
        // The deadline travels with the call; this bound only covers a server that ignores it.
        match tokio::time::timeout(timeout + Duration::from_secs(1), call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Failure::from_status(&status)),
            Err(_) => Err(Failure::new(Code::DeadlineExceeded, "deadline exceeded")),
        }
    }
}

/// A codec that passes message bodies through: Python encodes requests and decodes
/// responses with its own generated types.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// How the connection does its network I/O.
pub(crate) enum Backend {
    /// On the runtime's thread, through tonic; completions come back through the socket
    /// pair (`drain`). Used for TLS.
    Threaded {
        link: Arc<Link>,
        /// The end of the socket pair the loop watches.
        reader: UnixStream,
    },
    /// On the loop's thread (`pump`); see [`crate::wire`].
    Direct(Box<Mutex<Wire>>),
}

/// Where the events of a session stream go: the stream's engine (`crate::engine`), which
/// registers itself in [`Connection::engines`] when it starts a stream.
pub(crate) trait SessionSink: Send + Sync {
    /// A frame of events of the stream of `generation`.
    fn on_events(
        &self,
        py: Python<'_>,
        generation: u64,
        events: Vec<pb::SessionEvent>,
    ) -> PyResult<()>;
    /// The stream of `generation` ended (`None`: cleanly).
    fn on_ended(&self, py: Python<'_>, generation: u64, failure: Option<Failure>) -> PyResult<()>;
}

/// The connection of one event loop to a chanlayer server.
///
/// Direct (plaintext targets): the connection registers its socket with the loop itself and
/// does its I/O in `pump`. Threaded (TLS): Python registers [`Connection::fileno`] with
/// `loop.add_reader` and [`Connection::drain`] as its callback. Every awaitable this type
/// and the engine return is a future of that loop.
#[pyclass(frozen, module = "chanlayer_native")]
pub struct Connection {
    pub(crate) backend: Backend,
    /// Futures of unary calls, `wait_ready` and `connect`, by call id.
    calls: Mutex<HashMap<u64, Py<PyAny>>>,
    next_call: AtomicU64,
    /// Engines with a stream, by id, for routing their events.
    pub(crate) engines: Mutex<HashMap<u64, Arc<dyn SessionSink>>>,
    next_engine: AtomicU64,
    /// `loop.create_future`, `call_soon`, `call_later`, `add_reader`, `remove_reader`,
    /// `add_writer`, `remove_writer`.
    create_future: Py<PyAny>,
    /// `set_result` of the type of the loop's futures, called unbound (`(future, value)`):
    /// a receive's future is resolved without making a bound method each time.
    future_set_result: Py<PyAny>,
    pub(crate) call_soon: Py<PyAny>,
    pub(crate) call_later: Py<PyAny>,
    add_reader: Py<PyAny>,
    remove_reader: Py<PyAny>,
    add_writer: Py<PyAny>,
    remove_writer: Py<PyAny>,
    /// The socket registered with the loop (descriptor, socket id), and whether for
    /// writing too (direct).
    registered: Mutex<Option<(i32, u64, bool)>>,
    /// A `pump` is running: a nested one only asks it to go round again.
    pumping: AtomicBool,
    repump: AtomicBool,
}

impl Connection {
    /// `future.set_result(value)` for a future of this connection's loop.
    pub(crate) fn set_future_result(
        &self,
        future: &Bound<'_, PyAny>,
        value: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.future_set_result.call1(future.py(), (future, value))?;
        Ok(())
    }

    pub(crate) fn new_future(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.create_future.call0(py)
    }

    pub(crate) fn engine_id(&self) -> u64 {
        self.next_engine.fetch_add(1, Ordering::Relaxed)
    }

    fn register_call(&self, py: Python<'_>) -> PyResult<(u64, Py<PyAny>)> {
        let future = self.new_future(py)?;
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.calls.lock().insert(id, future.clone_ref(py));
        Ok((id, future))
    }

    fn finish_call(&self, py: Python<'_>, id: u64, value: Bound<'_, PyAny>) -> PyResult<()> {
        let future = self.calls.lock().remove(&id);
        match future {
            Some(future) => set_result(py, &future, value),
            None => Ok(()),
        }
    }

    fn handle(&self, py: Python<'_>, item: Completion) -> PyResult<()> {
        match item {
            Completion::Call { id, result } => {
                let value = match result {
                    Ok(body) => PyBytes::new(py, &body).into_any(),
                    Err(failure) => failure.to_tuple(py)?,
                };
                self.finish_call(py, id, value)
            }
            Completion::Ready { id, ok } => {
                let value = pyo3::types::PyBool::new(py, ok).to_owned().into_any();
                self.finish_call(py, id, value)
            }
            Completion::Frame {
                engine,
                generation,
                events,
            } => match self.engine(engine) {
                Some(engine) => engine.on_events(py, generation, events),
                None => Ok(()),
            },
            Completion::Ended {
                engine,
                generation,
                failure,
            } => match self.engine(engine) {
                Some(engine) => engine.on_ended(py, generation, failure),
                None => Ok(()),
            },
        }
    }

    fn engine(&self, id: u64) -> Option<Arc<dyn SessionSink>> {
        self.engines.lock().get(&id).cloned()
    }

    fn dispatch(&self, py: Python<'_>, items: Vec<Completion>) {
        for item in items {
            if let Err(err) = self.handle(py, item) {
                err.write_unraisable(py, None);
            }
        }
    }

    /// The link of the threaded back end.
    pub(crate) fn link(&self) -> Option<&Arc<Link>> {
        match &self.backend {
            Backend::Threaded { link, .. } => Some(link),
            Backend::Direct(_) => None,
        }
    }

    /// Direct back end: starts connecting to `peer`; the future resolves to True once
    /// connected.
    fn connect_peer(slf: &Bound<'_, Self>, peer: &Peer) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let Backend::Direct(wire) = &this.backend else {
            return Err(PyValueError::new_err(
                "connect() is for the direct back end",
            ));
        };
        let (id, future) = this.register_call(py)?;
        let mut out = Vec::new();
        wire.lock().connect(peer, id, &mut out);
        this.dispatch(py, out);
        Self::pump_direct(slf)?;
        Ok(future)
    }

    /// Runs the direct back end until nothing makes progress, handing what completed to
    /// its owners; then watches the socket as the connection needs.
    pub(crate) fn pump_direct(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let Backend::Direct(wire) = &this.backend else {
            return Ok(());
        };
        if this.pumping.swap(true, Ordering::Relaxed) {
            this.repump.store(true, Ordering::Relaxed);
            return Ok(());
        }
        loop {
            this.repump.store(false, Ordering::Relaxed);
            let mut out = Vec::new();
            wire.lock().poll(&mut out);
            let progress = !out.is_empty();
            this.dispatch(slf.py(), out);
            if !progress && !this.repump.load(Ordering::Relaxed) {
                break;
            }
        }
        this.pumping.store(false, Ordering::Relaxed);
        let interest = wire.lock().interest();
        Self::watch(slf, interest)
    }

    /// Registers the socket with the loop for reading (and writing) as `interest` says.
    /// Removing a registration fails harmlessly when the socket is already closed.
    fn watch(slf: &Bound<'_, Self>, interest: Option<(i32, u64, bool)>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut registered = this.registered.lock();
        if *registered == interest {
            return Ok(());
        }
        let same_socket = matches!(
            (*registered, interest),
            (Some((_, old, _)), Some((_, new, _))) if old == new
        );
        if let Some((fd, _, writing)) = *registered {
            let keep_reader = same_socket;
            let keep_writer = same_socket && interest.is_some_and(|(_, _, w)| w);
            if writing && !keep_writer {
                let _ = this.remove_writer.call1(py, (fd,));
            }
            if !keep_reader {
                let _ = this.remove_reader.call1(py, (fd,));
            }
        }
        if let Some((fd, _, want_write)) = interest {
            let had_writer = same_socket && registered.is_some_and(|(_, _, w)| w);
            if !same_socket {
                let on_readable = slf.getattr(intern!(py, "on_readable"))?;
                this.add_reader.call1(py, (fd, on_readable))?;
            }
            if want_write && !had_writer {
                let pump = slf.getattr(intern!(py, "pump"))?;
                this.add_writer.call1(py, (fd, pump))?;
            }
        }
        *registered = interest;
        Ok(())
    }
}

#[pymethods]
impl Connection {
    /// Makes the connection of `event_loop` to the server at `uri` (`http://host:port`,
    /// `https://` for TLS, or `unix:PATH` for a Unix domain socket). Nothing is connected until [`Connection::connect`] (direct) or
    /// [`Connection::wait_ready`] (threaded). `threaded` forces the threaded back end.
    #[new]
    #[pyo3(signature = (event_loop, uri, token=None, ca=None, cert=None, key=None, server_name=None, threaded=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        event_loop: &Bound<'_, PyAny>,
        uri: &str,
        token: Option<&str>,
        ca: Option<&[u8]>,
        cert: Option<&[u8]>,
        key: Option<&[u8]>,
        server_name: Option<&str>,
        threaded: bool,
    ) -> PyResult<Self> {
        let py = event_loop.py();
        let bad = |err: &dyn std::fmt::Display| PyValueError::new_err(err.to_string());
        let authorization = match token {
            Some(token) => Some(
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| PyValueError::new_err("the token is not valid ASCII"))?,
            ),
            None => None,
        };
        let tls = uri.starts_with("https:");
        let backend = if tls || threaded {
            let mut endpoint = Endpoint::from_shared(uri.to_owned())
                .map_err(|e| bad(&e))?
                .tcp_nodelay(true)
                .initial_stream_window_size(Some(4 * 1024 * 1024))
                .initial_connection_window_size(Some(16 * 1024 * 1024))
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(10));
            if tls {
                let mut config = ClientTlsConfig::new();
                if let Some(ca) = ca {
                    config = config.ca_certificate(Certificate::from_pem(ca));
                }
                if let (Some(cert), Some(key)) = (cert, key) {
                    config = config.identity(Identity::from_pem(cert, key));
                }
                if let Some(name) = server_name {
                    config = config.domain_name(name);
                }
                endpoint = endpoint.tls_config(config).map_err(|e| bad(&e))?;
            }
            let (reader, wake) = UnixStream::pair().map_err(|e| bad(&e))?;
            reader.set_nonblocking(true).map_err(|e| bad(&e))?;
            wake.set_nonblocking(true).map_err(|e| bad(&e))?;
            let runtime = runtime::handle().map_err(|e| bad(&e))?;
            Backend::Threaded {
                link: Arc::new(Link {
                    runtime,
                    notifier: Notifier {
                        inbox: Mutex::new((Vec::new(), false)),
                        wake,
                    },
                    endpoint,
                    channel: Mutex::new(None),
                    healthy: AtomicBool::new(false),
                    authorization,
                }),
                reader,
            }
        } else {
            // A Unix socket's requests name `localhost`, as grpc-go, grpcio and grpc-js do.
            let authority = if uri.starts_with("unix:") {
                "localhost".to_owned()
            } else {
                uri.strip_prefix("http://")
                    .unwrap_or(uri)
                    .trim_end_matches('/')
                    .to_owned()
            };
            Backend::Direct(Box::new(Mutex::new(Wire::new(authority, authorization))))
        };
        let method = |name: &Bound<'_, pyo3::types::PyString>| -> PyResult<Py<PyAny>> {
            Ok(event_loop.getattr(name)?.unbind())
        };
        let future_set_result = event_loop
            .call_method0(intern!(py, "create_future"))?
            .get_type()
            .getattr(intern!(py, "set_result"))?
            .unbind();
        Ok(Self {
            backend,
            future_set_result,
            calls: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(1),
            engines: Mutex::new(HashMap::new()),
            next_engine: AtomicU64::new(1),
            create_future: method(intern!(py, "create_future"))?,
            call_soon: method(intern!(py, "call_soon"))?,
            call_later: method(intern!(py, "call_later"))?,
            add_reader: method(intern!(py, "add_reader"))?,
            remove_reader: method(intern!(py, "remove_reader"))?,
            add_writer: method(intern!(py, "add_writer"))?,
            remove_writer: method(intern!(py, "remove_writer"))?,
            registered: Mutex::new(None),
            pumping: AtomicBool::new(false),
            repump: AtomicBool::new(false),
        })
    }

    /// True when the I/O is done on the loop's thread (the loop then never needs to watch
    /// [`Connection::fileno`]).
    #[getter]
    fn direct(&self) -> bool {
        matches!(self.backend, Backend::Direct(_))
    }

    /// The file descriptor to watch with `loop.add_reader` (threaded), or -1.
    fn fileno(&self) -> i32 {
        match &self.backend {
            Backend::Threaded { reader, .. } => reader.as_raw_fd(),
            Backend::Direct(_) => -1,
        }
    }

    /// True when the connection is up and no call has found the server unreachable since.
    #[getter]
    fn ready(&self) -> bool {
        match &self.backend {
            Backend::Threaded { link, .. } => link.is_ready(),
            Backend::Direct(wire) => wire.lock().is_up(),
        }
    }

    /// Handles every completion queued since the last drain (the `add_reader` callback of
    /// the threaded back end).
    fn drain(&self, py: Python<'_>) {
        let Backend::Threaded { link, reader } = &self.backend else {
            return;
        };
        let mut sink = [0u8; 256];
        loop {
            match (&*reader).read(&mut sink) {
                Ok(n) if n == sink.len() => continue,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                _ => break,
            }
        }
        let items = {
            let mut inbox = link.notifier.inbox.lock();
            inbox.1 = false;
            std::mem::take(&mut inbox.0)
        };
        self.dispatch(py, items);
    }

    /// Does the direct back end's I/O (the socket's writer callback).
    fn pump(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::pump_direct(slf)
    }

    /// Does the direct back end's I/O after the socket became readable (its reader
    /// callback).
    fn on_readable(slf: &Bound<'_, Self>) -> PyResult<()> {
        if let Backend::Direct(wire) = &slf.get().backend {
            wire.lock().set_readable();
        }
        Self::pump_direct(slf)
    }

    /// Direct back end: starts connecting to `host` (an IP address) and `port`; the future
    /// resolves to True once connected, False when the attempt failed.
    fn connect(slf: &Bound<'_, Self>, host: &str, port: u16) -> PyResult<Py<PyAny>> {
        let ip: std::net::IpAddr = host
            .parse()
            .map_err(|_| PyValueError::new_err(format!("not an IP address: {host:?}")))?;
        Self::connect_peer(slf, &Peer::Tcp(SocketAddr::new(ip, port)))
    }

    /// Direct back end: starts connecting to the Unix domain socket at `path`; the future
    /// resolves to True once connected, False when the attempt failed (no socket there,
    /// nothing listening, no permission).
    fn connect_unix(slf: &Bound<'_, Self>, path: &str) -> PyResult<Py<PyAny>> {
        if path.is_empty() {
            return Err(PyValueError::new_err("a Unix socket path is needed"));
        }
        Self::connect_peer(slf, &Peer::Unix(path.into()))
    }

    /// Threaded back end: a future that resolves to True once the server is reachable, or
    /// False after `timeout` seconds.
    fn wait_ready(&self, py: Python<'_>, timeout: f64) -> PyResult<Py<PyAny>> {
        let Some(link) = self.link() else {
            return Err(PyValueError::new_err(
                "wait_ready() is for the threaded back end",
            ));
        };
        let (id, future) = self.register_call(py)?;
        let link = Arc::clone(link);
        let timeout = Duration::from_secs_f64(timeout.max(0.0));
        link.runtime.clone().spawn(async move {
            let ok = link.connect(timeout).await;
            link.notifier.push(Completion::Ready { id, ok });
        });
        Ok(future)
    }

    /// Calls the unary RPC `method` with an encoded request; the future resolves to the
    /// encoded response, or to `(code, reason, message)` when the call failed.
    fn unary(
        slf: &Bound<'_, Self>,
        method: &str,
        request: &[u8],
        timeout: f64,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let (id, future) = this.register_call(py)?;
        let timeout = Duration::from_secs_f64(timeout.max(0.0));
        match &this.backend {
            Backend::Threaded { link, .. } => {
                let path = http::uri::PathAndQuery::try_from(format!(
                    "/chanlayer.v1.ChannelLayerService/{method}"
                ))
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
                let body = Bytes::copy_from_slice(request);
                let link = Arc::clone(link);
                link.runtime.clone().spawn(async move {
                    let result = link.unary(path, body, timeout).await;
                    if matches!(&result, Err(f) if f.code == Code::Unavailable as i32) {
                        link.mark_unhealthy();
                    }
                    link.notifier.push(Completion::Call { id, result });
                });
            }
            Backend::Direct(wire) => {
                let mut out = Vec::new();
                wire.lock().unary(id, method, request, timeout, &mut out);
                this.dispatch(py, out);
                Self::pump_direct(slf)?;
            }
        }
        Ok(future)
    }

    /// Drops the connection and ends the calls still waiting (with CANCELLED).
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let cancelled = Failure::new(Code::Cancelled, "the connection was closed");
        match &this.backend {
            Backend::Threaded { link, .. } => {
                link.channel.lock().take();
                link.mark_unhealthy();
            }
            Backend::Direct(wire) => {
                let mut out = Vec::new();
                wire.lock().shut(&cancelled, &mut out);
                this.dispatch(py, out);
                Self::watch(slf, None)?;
            }
        }
        let calls: Vec<_> = this.calls.lock().drain().collect();
        for (_, future) in calls {
            set_result(py, &future, cancelled.to_tuple(py)?)?;
        }
        Ok(())
    }
}

/// Sets a future's result unless it is done (a cancelled caller).
pub(crate) fn set_result(
    py: Python<'_>,
    future: &Py<PyAny>,
    value: Bound<'_, PyAny>,
) -> PyResult<()> {
    let future = future.bind(py);
    if future.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    future.call_method1(intern!(py, "set_result"), (value,))?;
    Ok(())
}

/// Sets a future's exception unless it is done.
pub(crate) fn set_exception(
    py: Python<'_>,
    future: &Py<PyAny>,
    exception: Bound<'_, PyAny>,
) -> PyResult<()> {
    let future = future.bind(py);
    if future.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    future.call_method1(intern!(py, "set_exception"), (exception,))?;
    Ok(())
}
