//! [`Engine`]: the state machine of one session, run on its event loop's thread.
//!
//! The rules are those of the pure-Python session (`chanlayer._session`):
//!
//! - Send and group operations wait for their result, which the server gives in the order
//!   they were written. Operations queued while no stream is open wait for the next one;
//!   those written to a stream that broke before their result came fail (they may or may
//!   not have been applied, and are never sent twice).
//! - Each waiting `receive()` is one pending `Receive` on the server. Every delivery goes
//!   through the channel's local buffer; a waiter takes the oldest unexpired message. A
//!   receive cancelled after its message was handed over gives the message back to the
//!   front of the buffer, so nothing is lost.
//! - Receives on a normal channel ask for up to `normal_prefetch` messages (default 1): the
//!   server answers with what is already queued, so a busy channel's messages come in
//!   batches while an idle one hands each message to whichever process asks first.
//! - Specific channels (`!` in the name) have one reader, this process: their receives ask
//!   for up to `prefetch` messages, and after a receive is served one receive stays pending
//!   for a second (standing demand), so that the next message rides back with the
//!   acknowledgement of the send that caused it.
//! - Sends may complete before their result (the send window): a send to a channel whose
//!   last acknowledgement, less than [`ROOM_FRESH`] ago, said that even with every send
//!   still in flight at least half of its capacity would stay free, resolves at once, like
//!   channels-nats' publish, while its operation goes out in order as usual. A send whose
//!   room is unknown, stale or close to full waits for the server as before, so
//!   `ChannelFull` stays exact for a single sender and near capacity. If a windowed send is
//!   refused after all (other senders filled the channel), the next send to that channel
//!   raises the refusal and is not sent; windowed sends whose stream broke before their
//!   result are counted (`take_window_lost`) for the session to log. At most
//!   [`WINDOW_LIMIT`] sends are in the window; `drain()` waits until it is empty (the
//!   session calls it before a flush and when it closes).
//! - Receives given a message are resolved at most [`HAND_OVER_BURST`] per loop iteration,
//!   in order (see [`Handed`]): a group_send to thousands of local channels wakes their
//!   tasks in bursts instead of all at once.
//! - An operation queued while no acknowledgement is awaited is written at once; those
//!   queued while some are awaited are written as one frame at the end of the loop
//!   iteration, by a callback the engine schedules with `loop.call_soon` (the engine object
//!   is that callback).
//!
//! Calls into Python that may run Python code (`create_future`, `set_result`,
//! `call_soon`, building exceptions) are made with the engine's lock released.
//!
//! The state machine itself, with no Python in it, is [`crate::session`]; this module is its
//! PyO3 glue: the Python class, futures and exceptions, and the stream's I/O.
//!
//! [`ROOM_FRESH`]: crate::session::ROOM_FRESH
//! [`WINDOW_LIMIT`]: crate::session::WINDOW_LIMIT
//! [`HAND_OVER_BURST`]: crate::session::HAND_OVER_BURST
//! [`Handed`]: crate::session::Handed

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
};

use bytes::Bytes;
use chanlayer_client::Client;
use chanlayer_proto::{
    frame::FrameBuilder,
    v1::{self as pb, session_operation::Operation},
};
use futures_util::{Stream, stream};
use parking_lot::Mutex;
use pyo3::{
    intern,
    prelude::*,
    types::{PyBytes, PyTuple},
};
use tokio::{sync::mpsc, time::Instant};
use tonic::{Code, Request};

use crate::{
    completion::{Completion, Failure},
    connection::{Backend, Connection, Link, SessionSink, set_exception, set_result},
    session::{
        self, HAND_OVER_BURST, Handle, OpKind, Prefetch, ROOMS_LIMIT, Room, STANDING_DEMAND,
        SWEEP_INTERVAL, StreamHandle, Value, WINDOW_LIMIT, on_event,
    },
};

/// The session state with Python's objects (futures, exceptions) as its handles.
type State = session::State<Py<PyAny>>;
type Effects = session::Effects<Py<PyAny>>;
type Outcome = session::Outcome<Py<PyAny>>;
type Handed = session::Handed<Py<PyAny>>;
type PendingOp = session::PendingOp<Py<PyAny>>;

impl Handle for Py<PyAny> {
    fn addr(&self) -> usize {
        self.as_ptr() as usize
    }
}

/// Buffered messages handed back to Python: `[(channel, [(seconds_left, bytes)])]`.
type Buffered<'py> = Vec<(String, Vec<(f64, Bound<'py, PyBytes>)>)>;

/// The state machine of one session stream (see the module docs).
///
/// Python drives the stream's life: [`Engine::start`] opens a stream, [`Engine::activate`]
/// lets operations flow once the session is open, [`Engine::teardown`] forgets a stream that
/// ended. Calling the engine writes the operations queued by this loop iteration.
#[pyclass(frozen, module = "chanlayer_native")]
pub struct Engine {
    id: u64,
    connection: Py<Connection>,
    prefetch: Prefetch,
    capacity_rules: Vec<pb::CapacityRule>,
    /// `make_error(code, reason, message, channel) -> Exception`.
    make_error: Py<PyAny>,
    state: Mutex<State>,
}

impl Engine {
    fn finish(slf: &Bound<'_, Self>, effects: Effects) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        if let Some(deadline) = effects.tick {
            let delay = deadline.saturating_duration_since(Instant::now());
            let tick = slf.getattr(intern!(py, "_tick"))?;
            this.connection
                .get()
                .call_later
                .call1(py, (delay.as_secs_f64(), tick))?;
        }
        if !effects.refused.is_empty() {
            let logger = py
                .import(intern!(py, "logging"))?
                .call_method1(intern!(py, "getLogger"), ("chanlayer",))?;
            for (channel, message) in effects.refused {
                logger.call_method1(
                    intern!(py, "warning"),
                    (
                        "chanlayer: a message to %s was refused after send() had returned (%s); \
                         the next send() to that channel raises the refusal",
                        channel,
                        message,
                    ),
                )?;
            }
        }
        let mut first_error = None;
        for (future, outcome) in effects.completions {
            let done = match outcome {
                Outcome::Value(value) => value
                    .into_py(py)
                    .and_then(|value| set_result(py, &future, value)),
                Outcome::Error(failure, channel) => this
                    .make_error
                    .call1(py, (failure.code, failure.reason, failure.message, channel))
                    .and_then(|exc| set_exception(py, &future, exc.into_bound(py))),
                Outcome::Exception(exc) => set_exception(py, &future, exc.into_bound(py)),
                Outcome::Cancel => future.call_method0(py, intern!(py, "cancel")).map(|_| ()),
            };
            if let Err(err) = done
                && first_error.is_none()
            {
                first_error = Some(err);
            }
        }
        if !effects.handed.is_empty()
            && let Err(err) = Self::queue_hand_over(slf, effects.handed)
            && first_error.is_none()
        {
            first_error = Some(err);
        }
        if effects.flush_now {
            Self::flush(slf)?;
        }
        if effects.flush {
            this.connection.get().call_soon.call1(py, (slf.clone(),))?;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Resolves the futures of `handed` now if they fit in one burst and none wait before
    /// them, else queues them behind those waiting (see [`Handed`]).
    fn queue_hand_over(slf: &Bound<'_, Self>, handed: Vec<Handed>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let (now, schedule) = {
            let mut state = this.state.lock();
            if state.deferred.is_empty() && handed.len() <= HAND_OVER_BURST {
                (handed, false)
            } else {
                state.deferred.extend(handed);
                if state.hand_over_scheduled {
                    (Vec::new(), false)
                } else {
                    state.hand_over_scheduled = true;
                    let burst = HAND_OVER_BURST.min(state.deferred.len());
                    (state.deferred.drain(..burst).collect(), true)
                }
            }
        };
        if schedule {
            let more = slf.getattr(intern!(py, "_hand_over_more"))?;
            this.connection.get().call_soon.call1(py, (more,))?;
        }
        Self::hand_over(slf, now)
    }

    /// Resolves the futures of `handed`. A future already done (its receive was cancelled
    /// before its turn) gives its message back to the front of its channel's buffer.
    fn hand_over(slf: &Bound<'_, Self>, handed: Vec<Handed>) -> PyResult<()> {
        if handed.is_empty() {
            return Ok(());
        }
        let py = slf.py();
        let this = slf.get();
        let connection = this.connection.get();
        let mut given_back = Vec::new();
        let mut first_error = None;
        // One `bytes` object per message: the members of a group that wait here share it
        // (their payloads are one buffer), so it is built and later decoded once.
        let mut last: Option<(Bytes, Bound<'_, PyBytes>)> = None;
        for entry in handed {
            let waiter = entry.waiter.bind(py);
            let payload = match &last {
                Some((buffer, bytes))
                    if buffer.as_ptr() == entry.payload.as_ptr()
                        && buffer.len() == entry.payload.len() =>
                {
                    bytes.clone()
                }
                _ => {
                    let bytes = PyBytes::new(py, &entry.payload);
                    last = Some((entry.payload.clone(), bytes.clone()));
                    bytes
                }
            };
            // Set first, asked after: a future is rarely done (cancelled) before its turn.
            if let Err(err) = connection.set_future_result(waiter, payload.into_any()) {
                if waiter.call_method0(intern!(py, "done"))?.is_truthy()? {
                    given_back.push(entry);
                } else {
                    first_error.get_or_insert(err);
                }
            }
        }
        if !given_back.is_empty() {
            let mut effects = Effects::default();
            {
                let mut state = this.state.lock();
                let now = Instant::now();
                // Newest first, so that each goes in front of the later ones.
                for entry in given_back.iter().rev() {
                    state
                        .channels
                        .entry(entry.channel.clone())
                        .or_default()
                        .buffer
                        .push_front((entry.deadline, entry.payload.clone()));
                }
                let mut seen = HashSet::new();
                for entry in &given_back {
                    if seen.insert(entry.channel.as_str()) {
                        state.serve_waiters(&entry.channel, now, &mut effects);
                        state.reconcile(&entry.channel, this.prefetch, now, &mut effects);
                    }
                }
            }
            Self::finish(slf, effects)?;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Resolves every future still waiting for its burst (the session is closing or failed).
    fn hand_over_all(slf: &Bound<'_, Self>) -> PyResult<()> {
        let handed: Vec<Handed> = {
            let mut state = slf.get().state.lock();
            state.deferred.drain(..).collect()
        };
        Self::hand_over(slf, handed)
    }

    fn new_future(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.connection.get().new_future(py)
    }

    /// Queues an acknowledged operation; returns its future.
    fn request(
        slf: &Bound<'_, Self>,
        kind: OpKind,
        channel: Option<String>,
        make: impl FnOnce(u64) -> Operation,
    ) -> PyResult<Py<PyAny>> {
        let this = slf.get();
        let future = this.new_future(slf.py())?;
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            let request_id = state.new_id();
            state.outbox.push(make(request_id));
            state.ops.push_back(PendingOp {
                request_id,
                future: Some(future.clone_ref(slf.py())),
                kind,
                channel,
                capacity: 0,
                written: false,
                replay: false,
            });
            state.want_flush(&mut effects);
        }
        Self::finish(slf, effects)?;
        Ok(future)
    }

    fn on_events(
        slf: &Bound<'_, Self>,
        generation: u64,
        events: Vec<pb::SessionEvent>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            if state.generation != generation {
                return Ok(());
            }
            let now = Instant::now();
            for event in events.into_iter().filter_map(|e| e.event) {
                on_event(
                    &mut state,
                    event,
                    this.prefetch,
                    now,
                    &mut effects,
                    &mut |future| is_done(py, future),
                )?;
            }
            if now.duration_since(state.last_sweep) > SWEEP_INTERVAL {
                state.sweep(now);
            }
        }
        Self::finish(slf, effects)
    }

    fn on_ended(slf: &Bound<'_, Self>, generation: u64, failure: Option<Failure>) -> PyResult<()> {
        let this = slf.get();
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            if state.generation != generation {
                return Ok(());
            }
            state.connected = false;
            state.stream = None;
            let shutdown = state.closing_reason == Some(pb::SessionCloseReason::Shutdown as i32);
            if (failure.is_some() || shutdown)
                && let Some(link) = this.connection.get().link()
            {
                link.mark_unhealthy();
            }
            if let Some(future) = state.opened.take() {
                let failure = failure.clone().unwrap_or_else(|| {
                    Failure::new(Code::Unavailable, "the session stream ended before opened")
                });
                effects.complete(future, Outcome::Value(Value::Ended(Some(failure))));
            }
            if let Some(future) = state.ended.take() {
                effects.complete(future, Outcome::Value(Value::Ended(failure)));
            }
        }
        Self::finish(slf, effects)
    }

    pub(crate) fn on_tick(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            state.tick_scheduled = false;
            let now = Instant::now();
            let mut expired = Vec::new();
            let mut next: Option<Instant> = None;
            for (name, channel) in &state.channels {
                match channel.standing_until {
                    Some(until) if until <= now => expired.push(name.clone()),
                    Some(until) => next = Some(next.map_or(until, |n| n.min(until))),
                    None => {}
                }
            }
            for name in expired {
                if let Some(channel) = state.channels.get_mut(&name) {
                    channel.standing_until = None;
                }
                state.reconcile(&name, this.prefetch, now, &mut effects);
                state.forget_if_idle(&name);
            }
            if let Some(next) = next {
                state.tick_scheduled = true;
                effects.tick = Some(next);
            }
        }
        Self::finish(slf, effects)
    }

    /// Ends the current stream, if any, and ignores its events from now on.
    fn drop_stream(&self, state: &mut State) {
        state.generation += 1;
        state.connected = false;
        match state.stream.take() {
            Some(StreamHandle::Threaded { task, .. }) => task.abort(),
            Some(StreamHandle::Direct(key)) => {
                if let Backend::Direct(wire) = &self.connection.get().backend {
                    wire.lock().abort(key);
                }
            }
            None => {}
        }
    }

    /// Writes the outbox on the stream.
    fn flush(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let direct = {
            let mut state = this.state.lock();
            state.flush_scheduled = false;
            if !state.connected || state.outbox.is_empty() {
                return Ok(());
            }
            let operations = std::mem::take(&mut state.outbox);
            for op in state.ops.iter_mut().rev() {
                if op.written {
                    break;
                }
                op.written = true;
            }
            match &state.stream {
                Some(StreamHandle::Threaded { ops, .. }) => {
                    // A closed stream fails the operations as written when it is torn down.
                    let _ = ops.send(operations);
                    None
                }
                Some(StreamHandle::Direct(key)) => Some((*key, operations)),
                None => None,
            }
        };
        if let Some((key, operations)) = direct {
            let connection = this.connection.bind(slf.py());
            if let Backend::Direct(wire) = &connection.get().backend {
                wire.lock().send_operations(key, operations);
            }
            Connection::pump_direct(connection)?;
        }
        Ok(())
    }
}

/// The engine receives its stream's events from the connection, which routes them by id.
impl SessionSink for Py<Engine> {
    fn on_events(
        &self,
        py: Python<'_>,
        generation: u64,
        events: Vec<pb::SessionEvent>,
    ) -> PyResult<()> {
        Engine::on_events(self.bind(py), generation, events)
    }

    fn on_ended(&self, py: Python<'_>, generation: u64, failure: Option<Failure>) -> PyResult<()> {
        Engine::on_ended(self.bind(py), generation, failure)
    }
}

fn is_done(py: Python<'_>, future: &Py<PyAny>) -> PyResult<bool> {
    future
        .bind(py)
        .call_method0(intern!(py, "done"))?
        .is_truthy()
}

impl Value {
    fn into_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(match self {
            Value::None => py.None().into_bound(py),
            Value::Counts(delivered, dropped) => (delivered, dropped).into_pyobject(py)?.into_any(),
            Value::Opened(opened) => PyTuple::new(
                py,
                [
                    "opened".into_pyobject(py)?.into_any(),
                    opened.client_prefix.into_pyobject(py)?.into_any(),
                    opened.resume_token.into_pyobject(py)?.into_any(),
                    opened.resumed.into_pyobject(py)?.to_owned().into_any(),
                    opened.max_message_bytes.into_pyobject(py)?.into_any(),
                ],
            )?
            .into_any(),
            Value::Ended(None) => py.None().into_bound(py),
            Value::Ended(Some(failure)) => failure.to_tuple(py)?,
        })
    }
}

/// The request stream of a session: each item of `rx` is what one loop iteration queued;
/// what is queued when the stream is polled goes out as one frame, up to the frame limits.
fn frames(
    rx: mpsc::UnboundedReceiver<Vec<Operation>>,
) -> impl Stream<Item = pb::SessionRequest> + Send + 'static {
    stream::unfold(
        (rx, VecDeque::<Operation>::new()),
        |(mut rx, mut queued)| async move {
            if queued.is_empty() {
                queued.extend(rx.recv().await?);
            }
            while let Ok(more) = rx.try_recv() {
                queued.extend(more);
            }
            let mut frame = FrameBuilder::new();
            while let Some(op) = queued.front() {
                if !frame.has_room_for(op) {
                    break;
                }
                frame.push(queued.pop_front().expect("an operation"));
            }
            Some((frame.into_request(), (rx, queued)))
        },
    )
}

/// Runs one session stream; returns why it ended (`None`: cleanly).
async fn run_stream(
    link: &Link,
    namespace: String,
    rx: mpsc::UnboundedReceiver<Vec<Operation>>,
    engine: u64,
    generation: u64,
) -> Option<Failure> {
    let Some(channel) = link.channel() else {
        return Some(Failure::new(
            Code::Unavailable,
            "not connected to the chanlayer server",
        ));
    };
    let mut grpc = Client::from_channel(channel, namespace).grpc();
    let mut request = Request::new(frames(rx));
    link.authorize(&mut request);
    let mut inbound = match grpc.session(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Some(Failure::from_status(&status)),
    };
    loop {
        match inbound.message().await {
            Ok(Some(frame)) => link.notifier.push(Completion::Frame {
                engine,
                generation,
                events: frame.events,
            }),
            Ok(None) => return None,
            Err(status) if status.code() == Code::Cancelled => return None,
            Err(status) => return Some(Failure::from_status(&status)),
        }
    }
}

#[pymethods]
impl Engine {
    /// An engine on `connection`. `capacity_rules` are `(glob, regex, capacity)` triples
    /// (one of glob and regex set) sent with every group send; `make_error(code, reason,
    /// message, channel)` builds the exception of a failed operation.
    #[new]
    #[pyo3(signature = (connection, prefetch, capacity_rules, make_error, normal_prefetch = 1))]
    fn new(
        py: Python<'_>,
        connection: Py<Connection>,
        prefetch: u32,
        capacity_rules: Vec<(Option<String>, Option<String>, u32)>,
        make_error: Py<PyAny>,
        normal_prefetch: u32,
    ) -> Self {
        let id = connection.bind(py).get().engine_id();
        let capacity_rules = capacity_rules
            .into_iter()
            .map(|(glob, regex, capacity)| pb::CapacityRule {
                pattern: match (glob, regex) {
                    (Some(glob), _) => Some(pb::capacity_rule::Pattern::Glob(glob)),
                    (None, Some(regex)) => Some(pb::capacity_rule::Pattern::Regex(regex)),
                    (None, None) => None,
                },
                capacity,
            })
            .collect();
        Self {
            id,
            connection,
            prefetch: Prefetch {
                specific: prefetch.max(1),
                normal: normal_prefetch.max(1),
            },
            capacity_rules,
            make_error,
            state: Mutex::new(State::new()),
        }
    }

    /// Writes the operations queued so far as one frame (the `call_soon` callback).
    fn __call__(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::flush(slf)
    }

    /// The standing-demand timer (a `call_later` callback).
    fn _tick(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::on_tick(slf)
    }

    /// Resolves the next burst of receives given a message (a `call_soon` callback).
    fn _hand_over_more(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let (burst, again) = {
            let mut state = this.state.lock();
            let burst = HAND_OVER_BURST.min(state.deferred.len());
            let burst: Vec<Handed> = state.deferred.drain(..burst).collect();
            state.hand_over_scheduled = !state.deferred.is_empty();
            (burst, state.hand_over_scheduled)
        };
        if again {
            let more = slf.getattr(intern!(py, "_hand_over_more"))?;
            this.connection.get().call_soon.call1(py, (more,))?;
        }
        Self::hand_over(slf, burst)
    }

    /// True while a stream is open and activated.
    #[getter]
    fn connected(&self) -> bool {
        self.state.lock().connected
    }

    /// True while restored memberships wait for their acknowledgement.
    #[getter]
    fn replay_incomplete(&self) -> bool {
        self.state.lock().replay_incomplete
    }

    /// Opens a stream with `open`; returns `(opened, ended)` futures. `opened` resolves to
    /// `("opened", client_prefix, resume_token, resumed, max_message_bytes)`, or to
    /// `(code, reason, message)` if the stream ended first; `ended` resolves when the
    /// stream ends, to None or `(code, reason, message)`.
    fn start(
        slf: &Bound<'_, Self>,
        namespace: String,
        client_prefix: String,
        resume_token: String,
        client_name: String,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        let py = slf.py();
        let this = slf.get();
        let opened = this.new_future(py)?;
        let ended = this.new_future(py)?;
        this.connection
            .get()
            .engines
            .lock()
            .insert(this.id, Arc::new(slf.clone().unbind()));
        let open = Operation::Open(pb::OpenOperation {
            namespace: namespace.clone(),
            client_prefix,
            resume_token,
            client_name,
            shared_deliveries: true,
        });
        let connection = this.connection.bind(py);
        {
            let mut state = this.state.lock();
            this.drop_stream(&mut state);
            state.closing_reason = None;
            let generation = state.generation;
            let engine = this.id;
            let handle = match &connection.get().backend {
                Backend::Threaded { link, .. } => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let _ = tx.send(vec![open]);
                    let link = Arc::clone(link);
                    let task = link.runtime.clone().spawn(async move {
                        let failure = run_stream(&link, namespace, rx, engine, generation).await;
                        link.notifier.push(Completion::Ended {
                            engine,
                            generation,
                            failure,
                        });
                    });
                    StreamHandle::Threaded { ops: tx, task }
                }
                Backend::Direct(wire) => {
                    StreamHandle::Direct(wire.lock().open_session(engine, generation, open))
                }
            };
            state.stream = Some(handle);
            state.opened = Some(opened.clone_ref(py));
            state.ended = Some(ended.clone_ref(py));
        }
        Connection::pump_direct(connection)?;
        Ok((opened, ended))
    }

    /// Lets operations flow on the opened stream: the memberships to restore first (each
    /// `(group, channel, group_expiry_seconds)`; returns their futures), then what was
    /// queued while disconnected, then the receives of the current waiters.
    fn activate(
        slf: &Bound<'_, Self>,
        replay: Vec<(String, String, u64)>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let py = slf.py();
        let this = slf.get();
        let futures = replay
            .iter()
            .map(|_| this.new_future(py))
            .collect::<PyResult<Vec<_>>>()?;
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            state.connected = true;
            state.replay_incomplete = !replay.is_empty();
            state.replay_unacked = replay.len();
            let mut head = Vec::with_capacity(replay.len());
            for ((group, channel, expiry), future) in replay.into_iter().zip(&futures).rev() {
                let request_id = state.new_id();
                head.push(Operation::GroupAdd(pb::GroupAddOperation {
                    request_id,
                    group,
                    channel,
                    group_expiry_seconds: expiry,
                }));
                state.ops.push_front(PendingOp {
                    request_id,
                    future: Some(future.clone_ref(py)),
                    kind: OpKind::Plain,
                    channel: None,
                    capacity: 0,
                    written: false,
                    replay: true,
                });
            }
            head.reverse();
            // The request ids of a restore are not in order with the ops behind it; results
            // are matched by id, so that only costs a search.
            let rest = std::mem::take(&mut state.outbox);
            head.extend(rest);
            state.outbox = head;
            let now = Instant::now();
            let names: Vec<String> = state.channels.keys().cloned().collect();
            for name in names {
                state.reconcile(&name, this.prefetch, now, &mut effects);
            }
            state.want_flush(&mut effects);
        }
        Self::finish(slf, effects)?;
        Ok(futures)
    }

    /// Forgets the current stream after it ended (or ends it): operations written to it
    /// without a result fail with `lost`; receives are registered again on the next stream.
    fn teardown(slf: &Bound<'_, Self>, lost: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            this.drop_stream(&mut state);
            state.receives.clear();
            state.cancelling.clear();
            for channel in state.channels.values_mut() {
                channel.active.clear();
            }
            let mut kept = VecDeque::new();
            for op in std::mem::take(&mut state.ops) {
                if op.written {
                    state.send_lost(op.channel.as_deref(), op.capacity);
                    match op.future {
                        Some(future) => {
                            effects.complete(future, Outcome::Exception(lost.clone_ref(py)));
                        }
                        None => {
                            state.window_lost += 1;
                            state.settle_windowed(&mut effects);
                        }
                    }
                } else if op.replay {
                    if let Some(future) = op.future {
                        effects.complete(future, Outcome::Cancel);
                    }
                } else {
                    kept.push_back(op);
                }
            }
            for room in state.rooms.values_mut() {
                room.known_at = None; // news from the old stream
            }
            let kept_ids: HashSet<u64> = kept.iter().map(|op| op.request_id).collect();
            state.ops = kept;
            state.replay_unacked = 0;
            state.outbox.retain(|op| match op {
                Operation::Send(op) => kept_ids.contains(&op.request_id),
                Operation::GroupAdd(op) => kept_ids.contains(&op.request_id),
                Operation::GroupDiscard(op) => kept_ids.contains(&op.request_id),
                Operation::GroupSend(op) => kept_ids.contains(&op.request_id),
                _ => false,
            });
            for future in [state.opened.take(), state.ended.take()]
                .into_iter()
                .flatten()
            {
                effects.complete(future, Outcome::Cancel);
            }
        }
        Self::finish(slf, effects)
    }

    /// Fails every waiting receive and operation with `exc` and drops what was queued (the
    /// session keeps trying to reconnect).
    fn fail_all(slf: &Bound<'_, Self>, exc: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        // Receives already given a message get it.
        Self::hand_over_all(slf)?;
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            for channel in state.channels.values_mut() {
                for waiter in channel.waiters.drain(..) {
                    effects.complete(waiter, Outcome::Exception(exc.clone_ref(py)));
                }
            }
            for op in std::mem::take(&mut state.ops) {
                let outcome = if op.replay {
                    Outcome::Cancel
                } else {
                    Outcome::Exception(exc.clone_ref(py))
                };
                match op.future {
                    Some(future) => effects.complete(future, outcome),
                    None => {
                        if op.written {
                            state.window_lost += 1;
                        } else {
                            state.window_unsent += 1;
                        }
                        state.settle_windowed(&mut effects);
                    }
                }
            }
            state.rooms.clear();
            state.outbox.clear();
            state.replay_unacked = 0;
        }
        Self::finish(slf, effects)
    }

    /// Sends `payload` to `channel`; the future resolves to None or raises the server's
    /// error. It is already resolved when the send joins the window (see the module docs).
    fn send(
        slf: &Bound<'_, Self>,
        channel: &str,
        payload: &[u8],
        capacity: u32,
        expiry_ms: u64,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let message = Bytes::copy_from_slice(payload);
        let future = this.new_future(py)?;
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            let now = Instant::now();
            // The capacity the server applies (0 means its default).
            let limit = if capacity == 0 { 100 } else { capacity };
            let tracked = state.rooms.len() < ROOMS_LIMIT || state.rooms.contains_key(channel);
            let mut windowed = false;
            let mut refusal = None;
            if tracked {
                let open = state.connected && state.window < WINDOW_LIMIT;
                let room = state.rooms.entry(channel.to_owned()).or_insert(Room {
                    free: 0,
                    known_at: None,
                    inflight: 0,
                    refused: None,
                });
                if let Some((failure, count)) = room.refused.take() {
                    refusal = Some(Failure {
                        code: failure.code,
                        reason: failure.reason,
                        message: format!(
                            "{} ({count} earlier message(s) to this channel were refused after \
                             send() had returned; this message was not sent)",
                            failure.message
                        ),
                    });
                } else {
                    windowed = open && room.has_room(limit, now);
                    room.inflight += 1;
                }
            }
            if let Some(failure) = refusal {
                effects.complete(
                    future.clone_ref(py),
                    Outcome::Error(failure, Some(channel.to_owned())),
                );
            } else {
                let request_id = state.new_id();
                state.outbox.push(Operation::Send(pb::SendOperation {
                    request_id,
                    channel: channel.to_owned(),
                    message,
                    capacity,
                    expiry_ms,
                }));
                state.ops.push_back(PendingOp {
                    request_id,
                    future: (!windowed).then(|| future.clone_ref(py)),
                    kind: OpKind::Plain,
                    channel: Some(channel.to_owned()),
                    capacity: if tracked { limit } else { 0 },
                    written: false,
                    replay: false,
                });
                if windowed {
                    state.window += 1;
                    effects.complete(future.clone_ref(py), Outcome::Value(Value::None));
                }
                state.want_flush(&mut effects);
            }
        }
        Self::finish(slf, effects)?;
        Ok(future)
    }

    /// A future resolved once every send of the window has its result (or was lost), or
    /// None when the window is empty.
    fn drain(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyAny>>> {
        let this = slf.get();
        if this.state.lock().window == 0 {
            return Ok(None);
        }
        let future = this.new_future(slf.py())?;
        let mut state = this.state.lock();
        if state.window == 0 {
            return Ok(None);
        }
        state.drained.push(future.clone_ref(slf.py()));
        Ok(Some(future))
    }

    /// `(lost, unsent)`: windowed sends whose stream broke before their result (they may or
    /// may not have been applied) and those dropped before they were written, since the
    /// last call.
    fn take_window_lost(&self) -> (u64, u64) {
        let mut state = self.state.lock();
        (
            std::mem::take(&mut state.window_lost),
            std::mem::take(&mut state.window_unsent),
        )
    }

    /// Adds `channel` to `group`.
    fn group_add(
        slf: &Bound<'_, Self>,
        group: String,
        channel: String,
        group_expiry_seconds: u64,
    ) -> PyResult<Py<PyAny>> {
        Self::request(slf, OpKind::Plain, None, |request_id| {
            Operation::GroupAdd(pb::GroupAddOperation {
                request_id,
                group,
                channel,
                group_expiry_seconds,
            })
        })
    }

    /// Removes `channel` from `group`.
    fn group_discard(slf: &Bound<'_, Self>, group: String, channel: String) -> PyResult<Py<PyAny>> {
        Self::request(slf, OpKind::Plain, None, |request_id| {
            Operation::GroupDiscard(pb::GroupDiscardOperation {
                request_id,
                group,
                channel,
            })
        })
    }

    /// Sends `payload` to every member of `group`; the future resolves to
    /// `(delivered, dropped)`.
    fn group_send(
        slf: &Bound<'_, Self>,
        group: String,
        payload: &[u8],
        capacity: u32,
        expiry_ms: u64,
    ) -> PyResult<Py<PyAny>> {
        let message = Bytes::copy_from_slice(payload);
        let channel_capacity = slf.get().capacity_rules.clone();
        Self::request(slf, OpKind::GroupSend, None, |request_id| {
            Operation::GroupSend(pb::GroupSendOperation {
                request_id,
                group,
                message,
                capacity,
                channel_capacity,
                expiry_ms,
            })
        })
    }

    /// The next message of `channel`: its bytes when one is buffered, else a future of
    /// them. A caller that stops waiting calls [`Engine::abandon`].
    fn receive(slf: &Bound<'_, Self>, channel: &str) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let now = Instant::now();
        {
            let mut state = this.state.lock();
            if let Some(channel_state) = state.channels.get_mut(channel)
                && let Some((_, payload)) = channel_state.pop_buffered(now)
            {
                drop(state);
                return Ok(PyBytes::new(py, &payload).into_any().unbind());
            }
        }
        let waiter = this.new_future(py)?;
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            state
                .channels
                .entry(channel.to_owned())
                .or_default()
                .waiters
                .push_back(waiter.clone_ref(py));
            state.reconcile(channel, this.prefetch, now, &mut effects);
        }
        Self::finish(slf, effects)?;
        Ok(waiter)
    }

    /// Withdraws the waiter of a `receive()` whose caller stopped waiting (`cancelled`:
    /// it was cancelled, so the channel's standing demand ends too). A message the waiter
    /// had already been given goes back to the front of the buffer, for the next receive.
    fn abandon(
        slf: &Bound<'_, Self>,
        channel: &str,
        waiter: &Bound<'_, PyAny>,
        cancelled: bool,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut given_back = None;
        if waiter.call_method0(intern!(py, "done"))?.is_truthy()?
            && !waiter.call_method0(intern!(py, "cancelled"))?.is_truthy()?
            && waiter.call_method0(intern!(py, "exception"))?.is_none()
        {
            let result = waiter.call_method0(intern!(py, "result"))?;
            if let Ok(payload) = result.cast::<PyBytes>() {
                given_back = Some(Bytes::copy_from_slice(payload.as_bytes()));
            }
        }
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            let now = Instant::now();
            let target = waiter.as_ptr();
            if let Some(channel_state) = state.channels.get_mut(channel) {
                channel_state.waiters.retain(|w| w.as_ptr() != target);
                if cancelled {
                    channel_state.standing_until = None;
                }
            }
            // A message given to it whose burst had not come yet.
            let mut deadline = None;
            if given_back.is_none()
                && let Some(at) = state
                    .deferred
                    .iter()
                    .position(|h| h.waiter.as_ptr() == target)
                && let Some(entry) = state.deferred.remove(at)
            {
                deadline = Some(entry.deadline);
                given_back = Some(entry.payload);
            }
            if let Some(payload) = given_back {
                // Its deadline is remembered unless many newer messages were handed over
                // since; then it keeps one more second.
                let deadline = deadline.unwrap_or_else(|| {
                    state
                        .handed
                        .iter()
                        .rev()
                        .find(|(w, _)| *w == target as usize)
                        .map_or(now + STANDING_DEMAND, |(_, deadline)| *deadline)
                });
                state
                    .channels
                    .entry(channel.to_owned())
                    .or_default()
                    .buffer
                    .push_front((deadline, payload));
                state.serve_waiters(channel, now, &mut effects);
            }
            state.reconcile(channel, this.prefetch, now, &mut effects);
            state.forget_if_idle(channel);
        }
        Self::finish(slf, effects)
    }

    /// Asks the server to end the session now (release); true when it could be written.
    fn write_close(slf: &Bound<'_, Self>) -> PyResult<bool> {
        let this = slf.get();
        let close = || vec![Operation::Close(pb::CloseOperation {})];
        let key = {
            let state = this.state.lock();
            match (&state.stream, state.connected) {
                (Some(StreamHandle::Threaded { ops, .. }), true) => {
                    return Ok(ops.send(close()).is_ok());
                }
                (Some(StreamHandle::Direct(key)), true) => *key,
                _ => return Ok(false),
            }
        };
        let connection = this.connection.bind(slf.py());
        if let Backend::Direct(wire) = &connection.get().backend {
            wire.lock().send_operations(key, close());
        }
        Connection::pump_direct(connection)?;
        Ok(true)
    }

    /// The reason of the last `closing` event of the stream, once.
    fn take_closing(&self) -> Option<i32> {
        self.state.lock().closing_reason.take()
    }

    /// Removes and returns the buffered messages: `[(channel, [(seconds_left, bytes)])]`.
    fn take_buffers<'py>(&self, py: Python<'py>) -> PyResult<Buffered<'py>> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut state = self.state.lock();
        for (name, channel) in state.channels.iter_mut() {
            let messages: Vec<_> = channel
                .buffer
                .drain(..)
                .filter(|(deadline, _)| *deadline > now)
                .map(|(deadline, payload)| {
                    (
                        deadline.duration_since(now).as_secs_f64(),
                        PyBytes::new(py, &payload),
                    )
                })
                .collect();
            if !messages.is_empty() {
                out.push((name.clone(), messages));
            }
        }
        state.channels.retain(|_, channel| !channel.idle());
        Ok(out)
    }

    /// Drops every buffered message (flush).
    fn clear_buffers(&self) {
        let mut state = self.state.lock();
        for channel in state.channels.values_mut() {
            channel.buffer.clear();
        }
        state.channels.retain(|_, channel| !channel.idle());
    }

    /// Ends the stream and forgets everything; the engine is not used after this.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        // Receives already given a message get it.
        Self::hand_over_all(slf)?;
        let mut effects = Effects::default();
        {
            let mut state = this.state.lock();
            this.drop_stream(&mut state);
            for channel in state.channels.values_mut() {
                for waiter in channel.waiters.drain(..) {
                    effects.complete(waiter, Outcome::Cancel);
                }
            }
            for op in std::mem::take(&mut state.ops) {
                match op.future {
                    Some(future) => effects.complete(future, Outcome::Cancel),
                    None if op.written => state.window_lost += 1,
                    None => state.window_unsent += 1,
                }
            }
            state.window = 0;
            for future in state.drained.drain(..) {
                effects.complete(future, Outcome::Value(Value::None));
            }
            state.rooms.clear();
            for future in [state.opened.take(), state.ended.take()]
                .into_iter()
                .flatten()
            {
                effects.complete(future, Outcome::Cancel);
            }
            state.channels.clear();
            state.outbox.clear();
            state.receives.clear();
            state.cancelling.clear();
        }
        this.connection.get().engines.lock().remove(&this.id);
        Self::finish(slf, effects)
    }
}
