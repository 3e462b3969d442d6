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

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use chanlayer_client::Client;
use chanlayer_proto::{
    frame::FrameBuilder,
    v1::{self as pb, session_event::Event, session_operation::Operation},
};
// Channel names are looked up several times per delivered message: a fast hash (these
// maps are private to one process and filled by its own server).
use foldhash::{HashMap, HashSet as FastSet};
use futures_util::{Stream, stream};
use parking_lot::Mutex;
use pyo3::{
    intern,
    prelude::*,
    types::{PyBytes, PyTuple},
};
use tokio::{sync::mpsc, task::JoinHandle, time::Instant};
use tonic::{Code, Request};

use crate::{
    completion::{Completion, Failure},
    connection::{Backend, Connection, Link, SessionSink, set_exception, set_result},
};

/// How long a specific channel keeps one receive pending after a receive was served.
const STANDING_DEMAND: Duration = Duration::from_secs(1);
/// How often buffers are swept of expired messages that no receive came for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// At most this many sends complete before their result (see the module docs).
const WINDOW_LIMIT: usize = 1024;
/// How long what an acknowledgement said about a channel's room may be relied on.
const ROOM_FRESH: Duration = Duration::from_millis(100);
/// At most this many channels' room is remembered.
const ROOMS_LIMIT: usize = 4096;
/// At most this many received messages are handed to their `receive()`s per loop
/// iteration (see [`Handed`]).
const HAND_OVER_BURST: usize = 128;

/// Buffered messages handed back to Python: `[(channel, [(seconds_left, bytes)])]`.
type Buffered<'py> = Vec<(String, Vec<(f64, Bound<'py, PyBytes>)>)>;

/// What an operation's future resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    /// None.
    Plain,
    /// `(delivered, dropped)`.
    GroupSend,
}

/// A send or group operation waiting for its result.
struct PendingOp {
    request_id: u64,
    /// None for a send in the window (its caller already has its result).
    future: Option<Py<PyAny>>,
    kind: OpKind,
    /// The channel of a send, carried by `ChannelFull`.
    channel: Option<String>,
    /// The capacity a send was made with (0 for other operations).
    capacity: u32,
    /// Handed to a stream: if that stream breaks, the operation's outcome is unknown.
    written: bool,
    /// A membership restored after the server lost the session.
    replay: bool,
}

/// What the engine knows of how full a channel it sends to is (the send window).
struct Room {
    /// Free places at the last acknowledgement: capacity less the messages it reported.
    free: u32,
    /// When that acknowledgement came (None: no acknowledgement reported it yet).
    known_at: Option<Instant>,
    /// Sends to the channel written or queued and not acknowledged yet.
    inflight: u32,
    /// The first refusal of a windowed send not reported yet, and how many there were.
    refused: Option<(Failure, u32)>,
}

impl Room {
    /// True when one more send may complete before its result: fresh news that, with
    /// every send in flight and this one, at least half of `capacity` stays free.
    fn has_room(&self, capacity: u32, now: Instant) -> bool {
        self.refused.is_none()
            && self
                .known_at
                .is_some_and(|at| now.saturating_duration_since(at) < ROOM_FRESH)
            && self.free.saturating_sub(self.inflight + 1) >= capacity.div_ceil(2)
    }
}

/// How many messages one receive may fetch.
#[derive(Debug, Clone, Copy)]
struct Prefetch {
    /// On a specific channel (this process is its only reader).
    specific: u32,
    /// On a normal channel (only what is already queued is fetched ahead).
    normal: u32,
}

/// The receive state of one channel.
#[derive(Default)]
struct ChannelState {
    /// Futures of waiting `receive()` calls, oldest first.
    waiters: VecDeque<Py<PyAny>>,
    /// Receive ids pending on the server for this channel (cancelled ones excluded).
    active: Vec<u64>,
    /// Until when one receive stays pending without a waiter (specific channels).
    standing_until: Option<Instant>,
    /// Messages delivered and not yet taken, with their deadlines.
    buffer: VecDeque<(Instant, Bytes)>,
}

/// How many handed-over messages the engine remembers the deadline of.
const HANDED: usize = 16 * 1024;

impl ChannelState {
    fn pop_buffered(&mut self, now: Instant) -> Option<(Instant, Bytes)> {
        while let Some((deadline, payload)) = self.buffer.pop_front() {
            if deadline > now {
                return Some((deadline, payload));
            }
        }
        None
    }

    fn idle(&self) -> bool {
        self.waiters.is_empty()
            && self.active.is_empty()
            && self.standing_until.is_none()
            && self.buffer.is_empty()
    }
}

/// The stream currently open.
enum StreamHandle {
    /// On the runtime's thread (threaded back end).
    Threaded {
        ops: mpsc::UnboundedSender<Vec<Operation>>,
        task: JoinHandle<()>,
    },
    /// On the connection's wire (direct back end), by its key.
    Direct(u64),
}

/// What a future is completed with once the lock is released.
enum Outcome {
    Value(Value),
    /// A server error, built into an exception by the layer's `make_error`.
    Error(Failure, Option<String>),
    /// An exception object from Python.
    Exception(Py<PyAny>),
    Cancel,
}

enum Value {
    None,
    Counts(u32, u32),
    Opened(pb::SessionOpened),
    Ended(Option<Failure>),
}

/// Everything the engine decided while holding its lock, done once it is released.
#[derive(Default)]
struct Effects {
    completions: Vec<(Py<PyAny>, Outcome)>,
    /// Messages given to waiting receives, handed over in bursts ([`Engine::hand_over`]).
    handed: Vec<Handed>,
    /// Write the outbox at the end of this loop iteration.
    flush: bool,
    /// Write the outbox now.
    flush_now: bool,
    tick: Option<Instant>,
    /// Windowed sends refused by the server, to log: `(channel, the server's message)`.
    refused: Vec<(String, String)>,
}

/// A message given to a waiting `receive()`, its future not resolved yet.
///
/// A large group_send wakes thousands of receives at once. Resolving all their futures in
/// one go would put as many task wake-ups (and their handles) on the loop's ready queue at
/// once: they all outlive a young-generation collection of the garbage collector, which
/// promotes them, and the older collections that follow dominate the cost of the fan-out.
/// Futures are therefore resolved [`HAND_OVER_BURST`] at a time, one burst per loop
/// iteration, in the order the messages came; a receive cancelled before its turn gives
/// its message back to the front of the channel's buffer.
struct Handed {
    channel: String,
    waiter: Py<PyAny>,
    deadline: Instant,
    payload: Bytes,
}

impl Effects {
    fn complete(&mut self, future: Py<PyAny>, outcome: Outcome) {
        self.completions.push((future, outcome));
    }
}

struct State {
    /// Bumped when a stream starts or is torn down: events of older streams are ignored.
    generation: u64,
    stream: Option<StreamHandle>,
    /// True between `activate` and the end of the stream.
    connected: bool,
    next_id: u64,
    /// Operations not written yet, in order.
    outbox: Vec<Operation>,
    flush_scheduled: bool,
    /// Operations waiting for their result, in the order they were queued.
    ops: VecDeque<PendingOp>,
    /// Pending receive id -> channel.
    receives: HashMap<u64, String>,
    /// Receive ids whose cancel is not answered yet.
    cancelling: FastSet<u64>,
    channels: HashMap<String, ChannelState>,
    opened: Option<Py<PyAny>>,
    ended: Option<Py<PyAny>>,
    closing_reason: Option<i32>,
    /// Restored memberships not acknowledged yet.
    replay_unacked: usize,
    /// True from a restore until all of it was acknowledged (a restore interrupted by a
    /// broken stream is made again on the next one).
    replay_incomplete: bool,
    tick_scheduled: bool,
    last_sweep: Instant,
    /// The deadlines of the last messages handed to waiters, by waiter (its address), for
    /// a message given back by a waiter cancelled before its caller took it.
    handed: VecDeque<(usize, Instant)>,
    /// What the last acknowledgements said about the channels sent to (the send window).
    rooms: HashMap<String, Room>,
    /// Sends completed before their result and not acknowledged yet.
    window: usize,
    /// Futures of `drain()` calls, resolved when the window is empty.
    drained: Vec<Py<PyAny>>,
    /// Windowed sends whose stream broke before their result, not reported yet.
    window_lost: u64,
    /// Windowed sends dropped before they were written (the session failed or closed).
    window_unsent: u64,
    /// Messages given to receives whose futures wait for their burst, oldest first.
    deferred: VecDeque<Handed>,
    /// A `_hand_over_more` call is scheduled (set whenever `deferred` is not empty).
    hand_over_scheduled: bool,
}

impl State {
    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Marks that the outbox should be written: at once when no acknowledgement is
    /// awaited (a lone operation pays no extra loop iteration), else at the end of this loop
    /// iteration, so that what the iteration queues behind it shares one frame.
    fn want_flush(&mut self, effects: &mut Effects) {
        if !self.connected || self.flush_scheduled || self.outbox.is_empty() {
            return;
        }
        if self.ops.front().is_some_and(|op| op.written) {
            self.flush_scheduled = true;
            effects.flush = true;
        } else {
            effects.flush_now = true;
        }
    }

    /// Makes the server-side demand of `channel` match its waiters and standing demand.
    ///
    /// A standing receive (no waiter yet) is not urgent: it waits in the outbox for the next
    /// frame written for another reason, typically the send whose message it will catch.
    fn reconcile(
        &mut self,
        channel: &str,
        prefetch: Prefetch,
        now: Instant,
        effects: &mut Effects,
    ) {
        if !self.connected {
            return;
        }
        let Some(state) = self.channels.get_mut(channel) else {
            return;
        };
        let waiting = state.waiters.len();
        let mut want = waiting;
        if want == 0 {
            match state.standing_until {
                Some(until) if until > now => want = 1,
                _ => {}
            }
        }
        let mut urgent = waiting > 0;
        if state.active.len() == want {
            if urgent {
                self.want_flush(effects);
            }
            return;
        }
        let max_messages = if channel.contains('!') {
            prefetch.specific
        } else {
            prefetch.normal
        };
        let mut added = Vec::new();
        while state.active.len() < want {
            let receive_id = self.next_id;
            self.next_id += 1;
            state.active.push(receive_id);
            added.push(receive_id);
        }
        let mut withdrawn = Vec::new();
        while state.active.len() > want {
            let (index, _) = state
                .active
                .iter()
                .enumerate()
                .max_by_key(|(_, id)| **id)
                .expect("active is not empty");
            withdrawn.push(state.active.swap_remove(index));
            urgent = true;
        }
        for receive_id in added {
            self.receives.insert(receive_id, channel.to_owned());
            self.outbox.push(Operation::Receive(pb::ReceiveOperation {
                receive_id,
                channel: channel.to_owned(),
                max_messages,
            }));
        }
        for receive_id in withdrawn {
            self.cancelling.insert(receive_id);
            self.outbox
                .push(Operation::Cancel(pb::CancelOperation { receive_id }));
        }
        if urgent {
            self.want_flush(effects);
        }
    }

    /// A send of the window is settled (acknowledged, or lost with its stream).
    fn settle_windowed(&mut self, effects: &mut Effects) {
        self.window = self.window.saturating_sub(1);
        if self.window == 0 {
            for future in self.drained.drain(..) {
                effects.complete(future, Outcome::Value(Value::None));
            }
        }
    }

    /// Learns from the result of a send to `channel` (made with `capacity`; 0: untracked).
    fn on_send_result(
        &mut self,
        channel: &str,
        capacity: u32,
        result: &pb::OperationResult,
        windowed: bool,
        effects: &mut Effects,
    ) {
        if capacity == 0 {
            return;
        }
        let Some(room) = self.rooms.get_mut(channel) else {
            return;
        };
        room.inflight = room.inflight.saturating_sub(1);
        match (&result.error, result.queued) {
            (None, Some(queued)) => {
                room.free = capacity.saturating_sub(queued);
                room.known_at = Some(Instant::now());
            }
            (None, None) => {} // a server that does not report it: the room stays unknown
            (Some(error), _) => {
                room.free = 0;
                room.known_at = Some(Instant::now());
                if windowed {
                    match &mut room.refused {
                        Some((_, count)) => *count += 1,
                        None => {
                            effects
                                .refused
                                .push((channel.to_owned(), error.message.clone()));
                            let failure = Failure {
                                code: error.code,
                                reason: error.reason.clone(),
                                message: error.message.clone(),
                            };
                            room.refused = Some((failure, 1));
                        }
                    }
                }
            }
        }
    }

    /// A send to `channel` (tracked when `capacity` > 0) left with a broken stream.
    fn send_lost(&mut self, channel: Option<&str>, capacity: u32) {
        if capacity == 0 {
            return;
        }
        if let Some(room) = channel.and_then(|name| self.rooms.get_mut(name)) {
            room.inflight = room.inflight.saturating_sub(1);
        }
    }

    fn forget_if_idle(&mut self, channel: &str) {
        if self.channels.get(channel).is_some_and(ChannelState::idle) {
            self.channels.remove(channel);
        }
    }

    /// Hands buffered messages to the waiters of `channel`; true when one was served.
    fn serve_waiters(&mut self, channel: &str, now: Instant, effects: &mut Effects) -> bool {
        let Some(state) = self.channels.get_mut(channel) else {
            return false;
        };
        let mut served = false;
        while !state.waiters.is_empty() {
            let Some((deadline, payload)) = state.pop_buffered(now) else {
                break;
            };
            // A waiter whose caller is gone (cancelled) gives the message back when its
            // turn comes (`Engine::hand_over`).
            let waiter = state.waiters.pop_front().expect("a waiter");
            if self.handed.len() == HANDED {
                self.handed.pop_front();
            }
            self.handed.push_back((waiter.as_ptr() as usize, deadline));
            effects.handed.push(Handed {
                channel: channel.to_owned(),
                waiter,
                deadline,
                payload,
            });
            served = true;
        }
        served
    }

    fn stand(&mut self, channel: &str, now: Instant, effects: &mut Effects) {
        if let Some(state) = self.channels.get_mut(channel) {
            state.standing_until = Some(now + STANDING_DEMAND);
            if !self.tick_scheduled {
                self.tick_scheduled = true;
                effects.tick = Some(now + STANDING_DEMAND);
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.last_sweep = now;
        self.rooms.retain(|_, room| {
            room.inflight > 0
                || room.refused.is_some()
                || room
                    .known_at
                    .is_some_and(|at| now.saturating_duration_since(at) < ROOM_FRESH)
        });
        for state in self.channels.values_mut() {
            state.buffer.retain(|(deadline, _)| *deadline > now);
        }
        self.channels.retain(|_, state| !state.idle());
    }
}

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
                match event {
                    Event::Opened(opened) => {
                        if let Some(future) = state.opened.take() {
                            effects.complete(future, Outcome::Value(Value::Opened(opened)));
                        }
                    }
                    Event::Result(result) => on_result(&mut state, result, &mut effects),
                    Event::Delivery(delivery) => {
                        let pb::Delivery {
                            receive_id,
                            channel,
                            messages,
                        } = delivery;
                        let messages = messages
                            .into_iter()
                            .map(|m| (now + Duration::from_millis(m.expires_in_ms), m.message));
                        this.on_delivery(
                            &mut state,
                            receive_id,
                            channel,
                            messages,
                            now,
                            &mut effects,
                        );
                    }
                    Event::SharedDelivery(shared) => {
                        let deadline = now + Duration::from_millis(shared.expires_in_ms);
                        for receive_id in shared.receive_ids {
                            let message = std::iter::once((deadline, shared.message.clone()));
                            this.on_delivery(
                                &mut state,
                                receive_id,
                                String::new(),
                                message,
                                now,
                                &mut effects,
                            );
                        }
                    }
                    Event::Cancelled(cancelled) => {
                        state.cancelling.remove(&cancelled.receive_id);
                        state.receives.remove(&cancelled.receive_id);
                    }
                    Event::ReceiveFailed(failed) => {
                        on_receive_failed(py, &mut state, failed, &mut effects)?;
                    }
                    Event::Closing(closing) => state.closing_reason = Some(closing.reason),
                }
            }
            if now.duration_since(state.last_sweep) > SWEEP_INTERVAL {
                state.sweep(now);
            }
        }
        Self::finish(slf, effects)
    }

    /// Takes the messages the server delivered to `receive_id`: into the channel's buffer,
    /// then to its waiters. `channel` is empty when the event did not name it (a shared
    /// delivery): the receive's own channel is used.
    fn on_delivery(
        &self,
        state: &mut State,
        receive_id: u64,
        channel: String,
        messages: impl Iterator<Item = (Instant, Bytes)>,
        now: Instant,
        effects: &mut Effects,
    ) {
        let known = state.receives.remove(&receive_id);
        state.cancelling.remove(&receive_id);
        let channel = if channel.is_empty() {
            known.unwrap_or_default()
        } else {
            channel
        };
        if !state.channels.contains_key(&channel) {
            state
                .channels
                .insert(channel.clone(), ChannelState::default());
        }
        let channel_state = state.channels.get_mut(&channel).expect("inserted above");
        channel_state.active.retain(|id| *id != receive_id);
        channel_state.buffer.extend(messages);
        if state.serve_waiters(&channel, now, effects) && channel.contains('!') {
            state.stand(&channel, now, effects);
        }
        state.reconcile(&channel, self.prefetch, now, effects);
        state.forget_if_idle(&channel);
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

fn on_result(state: &mut State, result: pb::OperationResult, effects: &mut Effects) {
    let position = match state.ops.front() {
        Some(op) if op.request_id == result.request_id => Some(0),
        _ => state
            .ops
            .iter()
            .position(|op| op.request_id == result.request_id),
    };
    let Some(op) = position.and_then(|p| state.ops.remove(p)) else {
        return;
    };
    if op.replay {
        state.replay_unacked = state.replay_unacked.saturating_sub(1);
        if state.replay_unacked == 0 {
            state.replay_incomplete = false;
        }
    }
    if let Some(channel) = op.channel.as_deref() {
        state.on_send_result(channel, op.capacity, &result, op.future.is_none(), effects);
    }
    let Some(future) = op.future else {
        state.settle_windowed(effects);
        return;
    };
    let outcome = match result.error {
        Some(error) => Outcome::Error(
            Failure {
                code: error.code,
                reason: error.reason,
                message: error.message,
            },
            op.channel,
        ),
        None if op.kind == OpKind::GroupSend => {
            Outcome::Value(Value::Counts(result.delivered_count, result.dropped_count))
        }
        None => Outcome::Value(Value::None),
    };
    effects.complete(future, outcome);
}

fn on_receive_failed(
    py: Python<'_>,
    state: &mut State,
    failed: pb::ReceiveFailed,
    effects: &mut Effects,
) -> PyResult<()> {
    let channel = state.receives.remove(&failed.receive_id);
    if state.cancelling.remove(&failed.receive_id) {
        return Ok(());
    }
    let Some(channel) = channel else {
        return Ok(());
    };
    let Some(channel_state) = state.channels.get_mut(&channel) else {
        return Ok(());
    };
    channel_state.active.retain(|id| *id != failed.receive_id);
    let error = failed.error.unwrap_or_default();
    while let Some(waiter) = channel_state.waiters.pop_front() {
        if !is_done(py, &waiter)? {
            let failure = Failure {
                code: error.code,
                reason: error.reason,
                message: error.message,
            };
            effects.complete(waiter, Outcome::Error(failure, Some(channel)));
            break;
        }
    }
    Ok(())
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
            state: Mutex::new(State {
                generation: 0,
                stream: None,
                connected: false,
                next_id: 1,
                outbox: Vec::new(),
                flush_scheduled: false,
                ops: VecDeque::new(),
                receives: HashMap::default(),
                cancelling: FastSet::default(),
                channels: HashMap::default(),
                opened: None,
                ended: None,
                closing_reason: None,
                replay_unacked: 0,
                replay_incomplete: false,
                tick_scheduled: false,
                last_sweep: Instant::now(),
                handed: VecDeque::new(),
                rooms: HashMap::default(),
                window: 0,
                drained: Vec::new(),
                window_lost: 0,
                window_unsent: 0,
                deferred: VecDeque::new(),
                hand_over_scheduled: false,
            }),
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
