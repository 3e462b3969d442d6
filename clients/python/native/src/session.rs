//! The session state machine of the native transport, without Python: operations waiting
//! for their in-order acknowledgement, receives and their waiters, prefetch buffers, standing
//! demand, the send window and what a resumed stream restores. The engine (`crate::engine`)
//! owns one [`State`] under its lock, feeds it the calls from Python and the stream's
//! events, and carries out the [`Effects`] it decides once the lock is released.
//!
//! The state holds Python objects (futures, exceptions) only as opaque handles `P`
//! ([`Handle`]); the rules themselves are described in the engine's module docs.

use std::{collections::VecDeque, time::Duration};

use bytes::Bytes;
use chanlayer_proto::v1::{self as pb, session_event::Event, session_operation::Operation};
// Channel names are looked up several times per delivered message: a fast hash (these
// maps are private to one process and filled by its own server).
use foldhash::{HashMap, HashSet as FastSet};
use tokio::{sync::mpsc, task::JoinHandle, time::Instant};

use crate::completion::Failure;

/// A Python object the state machine holds without looking into it (a future, an
/// exception).
pub(crate) trait Handle {
    /// The object's identity (its address).
    fn addr(&self) -> usize;
}

/// How long a specific channel keeps one receive pending after a receive was served.
pub(crate) const STANDING_DEMAND: Duration = Duration::from_secs(1);
/// How often buffers are swept of expired messages that no receive came for.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// At most this many sends complete before their result (see the module docs).
pub(crate) const WINDOW_LIMIT: usize = 1024;
/// How long what an acknowledgement said about a channel's room may be relied on.
pub(crate) const ROOM_FRESH: Duration = Duration::from_millis(100);
/// At most this many channels' room is remembered.
pub(crate) const ROOMS_LIMIT: usize = 4096;
/// At most this many received messages are handed to their `receive()`s per loop
/// iteration (see [`Handed`]).
pub(crate) const HAND_OVER_BURST: usize = 128;

/// What an operation's future resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// None.
    Plain,
    /// `(delivered, dropped)`.
    GroupSend,
}

/// A send or group operation waiting for its result.
pub(crate) struct PendingOp<P> {
    pub(crate) request_id: u64,
    /// None for a send in the window (its caller already has its result).
    pub(crate) future: Option<P>,
    pub(crate) kind: OpKind,
    /// The channel of a send, carried by `ChannelFull`.
    pub(crate) channel: Option<String>,
    /// The capacity a send was made with (0 for other operations).
    pub(crate) capacity: u32,
    /// Handed to a stream: if that stream breaks, the operation's outcome is unknown.
    pub(crate) written: bool,
    /// A membership restored after the server lost the session.
    pub(crate) replay: bool,
}

/// What the engine knows of how full a channel it sends to is (the send window).
pub(crate) struct Room {
    /// Free places at the last acknowledgement: capacity less the messages it reported.
    pub(crate) free: u32,
    /// When that acknowledgement came (None: no acknowledgement reported it yet).
    pub(crate) known_at: Option<Instant>,
    /// Sends to the channel written or queued and not acknowledged yet.
    pub(crate) inflight: u32,
    /// The first refusal of a windowed send not reported yet, and how many there were.
    pub(crate) refused: Option<(Failure, u32)>,
}

impl Room {
    /// True when one more send may complete before its result: fresh news that, with
    /// every send in flight and this one, at least half of `capacity` stays free.
    pub(crate) fn has_room(&self, capacity: u32, now: Instant) -> bool {
        self.refused.is_none()
            && self
                .known_at
                .is_some_and(|at| now.saturating_duration_since(at) < ROOM_FRESH)
            && self.free.saturating_sub(self.inflight + 1) >= capacity.div_ceil(2)
    }
}

/// How many messages one receive may fetch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefetch {
    /// On a specific channel (this process is its only reader).
    pub(crate) specific: u32,
    /// On a normal channel (only what is already queued is fetched ahead).
    pub(crate) normal: u32,
}

/// The receive state of one channel.
pub(crate) struct ChannelState<P> {
    /// Futures of waiting `receive()` calls, oldest first.
    pub(crate) waiters: VecDeque<P>,
    /// Receive ids pending on the server for this channel (cancelled ones excluded).
    pub(crate) active: Vec<u64>,
    /// Until when one receive stays pending without a waiter (specific channels).
    pub(crate) standing_until: Option<Instant>,
    /// Messages delivered and not yet taken, with their deadlines.
    pub(crate) buffer: VecDeque<(Instant, Bytes)>,
}

/// How many handed-over messages the engine remembers the deadline of.
pub(crate) const HANDED: usize = 16 * 1024;

impl<P: Handle> ChannelState<P> {
    pub(crate) fn pop_buffered(&mut self, now: Instant) -> Option<(Instant, Bytes)> {
        while let Some((deadline, payload)) = self.buffer.pop_front() {
            if deadline > now {
                return Some((deadline, payload));
            }
        }
        None
    }

    pub(crate) fn idle(&self) -> bool {
        self.waiters.is_empty()
            && self.active.is_empty()
            && self.standing_until.is_none()
            && self.buffer.is_empty()
    }
}

/// The stream currently open.
pub(crate) enum StreamHandle {
    /// On the runtime's thread (threaded back end).
    Threaded {
        ops: mpsc::UnboundedSender<Vec<Operation>>,
        task: JoinHandle<()>,
    },
    /// On the connection's wire (direct back end), by its key.
    Direct(u64),
}

/// What a future is completed with once the lock is released.
pub(crate) enum Outcome<P> {
    Value(Value),
    /// A server error, built into an exception by the layer's `make_error`.
    Error(Failure, Option<String>),
    /// An exception object from Python.
    Exception(P),
    Cancel,
}

pub(crate) enum Value {
    None,
    Counts(u32, u32),
    Opened(pb::SessionOpened),
    Ended(Option<Failure>),
}

/// Everything the engine decided while holding its lock, done once it is released.
pub(crate) struct Effects<P> {
    pub(crate) completions: Vec<(P, Outcome<P>)>,
    /// Messages given to waiting receives, handed over in bursts (the engine's `hand_over`).
    pub(crate) handed: Vec<Handed<P>>,
    /// Write the outbox at the end of this loop iteration.
    pub(crate) flush: bool,
    /// Write the outbox now.
    pub(crate) flush_now: bool,
    pub(crate) tick: Option<Instant>,
    /// Windowed sends refused by the server, to log: `(channel, the server's message)`.
    pub(crate) refused: Vec<(String, String)>,
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
pub(crate) struct Handed<P> {
    pub(crate) channel: String,
    pub(crate) waiter: P,
    pub(crate) deadline: Instant,
    pub(crate) payload: Bytes,
}

impl<P: Handle> Effects<P> {
    pub(crate) fn complete(&mut self, future: P, outcome: Outcome<P>) {
        self.completions.push((future, outcome));
    }
}

pub(crate) struct State<P> {
    /// Bumped when a stream starts or is torn down: events of older streams are ignored.
    pub(crate) generation: u64,
    pub(crate) stream: Option<StreamHandle>,
    /// True between `activate` and the end of the stream.
    pub(crate) connected: bool,
    pub(crate) next_id: u64,
    /// Operations not written yet, in order.
    pub(crate) outbox: Vec<Operation>,
    pub(crate) flush_scheduled: bool,
    /// Operations waiting for their result, in the order they were queued.
    pub(crate) ops: VecDeque<PendingOp<P>>,
    /// Pending receive id -> channel.
    pub(crate) receives: HashMap<u64, String>,
    /// Receive ids whose cancel is not answered yet.
    pub(crate) cancelling: FastSet<u64>,
    pub(crate) channels: HashMap<String, ChannelState<P>>,
    pub(crate) opened: Option<P>,
    pub(crate) ended: Option<P>,
    pub(crate) closing_reason: Option<i32>,
    /// Restored memberships not acknowledged yet.
    pub(crate) replay_unacked: usize,
    /// True from a restore until all of it was acknowledged (a restore interrupted by a
    /// broken stream is made again on the next one).
    pub(crate) replay_incomplete: bool,
    pub(crate) tick_scheduled: bool,
    pub(crate) last_sweep: Instant,
    /// The deadlines of the last messages handed to waiters, by waiter (its address), for
    /// a message given back by a waiter cancelled before its caller took it.
    pub(crate) handed: VecDeque<(usize, Instant)>,
    /// What the last acknowledgements said about the channels sent to (the send window).
    pub(crate) rooms: HashMap<String, Room>,
    /// Sends completed before their result and not acknowledged yet.
    pub(crate) window: usize,
    /// Futures of `drain()` calls, resolved when the window is empty.
    pub(crate) drained: Vec<P>,
    /// Windowed sends whose stream broke before their result, not reported yet.
    pub(crate) window_lost: u64,
    /// Windowed sends dropped before they were written (the session failed or closed).
    pub(crate) window_unsent: u64,
    /// Messages given to receives whose futures wait for their burst, oldest first.
    pub(crate) deferred: VecDeque<Handed<P>>,
    /// A `_hand_over_more` call is scheduled (set whenever `deferred` is not empty).
    pub(crate) hand_over_scheduled: bool,
}

impl<P: Handle> State<P> {
    /// The state of an engine that has not started a stream yet.
    pub(crate) fn new() -> Self {
        Self {
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
        }
    }

    pub(crate) fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Marks that the outbox should be written: at once when no acknowledgement is
    /// awaited (a lone operation pays no extra loop iteration), else at the end of this loop
    /// iteration, so that what the iteration queues behind it shares one frame.
    pub(crate) fn want_flush(&mut self, effects: &mut Effects<P>) {
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
    pub(crate) fn reconcile(
        &mut self,
        channel: &str,
        prefetch: Prefetch,
        now: Instant,
        effects: &mut Effects<P>,
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
    pub(crate) fn settle_windowed(&mut self, effects: &mut Effects<P>) {
        self.window = self.window.saturating_sub(1);
        if self.window == 0 {
            for future in self.drained.drain(..) {
                effects.complete(future, Outcome::Value(Value::None));
            }
        }
    }

    /// Learns from the result of a send to `channel` (made with `capacity`; 0: untracked).
    pub(crate) fn on_send_result(
        &mut self,
        channel: &str,
        capacity: u32,
        result: &pb::OperationResult,
        windowed: bool,
        effects: &mut Effects<P>,
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
    pub(crate) fn send_lost(&mut self, channel: Option<&str>, capacity: u32) {
        if capacity == 0 {
            return;
        }
        if let Some(room) = channel.and_then(|name| self.rooms.get_mut(name)) {
            room.inflight = room.inflight.saturating_sub(1);
        }
    }

    pub(crate) fn forget_if_idle(&mut self, channel: &str) {
        if self.channels.get(channel).is_some_and(ChannelState::idle) {
            self.channels.remove(channel);
        }
    }

    /// Hands buffered messages to the waiters of `channel`; true when one was served.
    pub(crate) fn serve_waiters(
        &mut self,
        channel: &str,
        now: Instant,
        effects: &mut Effects<P>,
    ) -> bool {
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
            self.handed.push_back((waiter.addr(), deadline));
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

    pub(crate) fn stand(&mut self, channel: &str, now: Instant, effects: &mut Effects<P>) {
        if let Some(state) = self.channels.get_mut(channel) {
            state.standing_until = Some(now + STANDING_DEMAND);
            if !self.tick_scheduled {
                self.tick_scheduled = true;
                effects.tick = Some(now + STANDING_DEMAND);
            }
        }
    }

    pub(crate) fn sweep(&mut self, now: Instant) {
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

impl<P> Default for ChannelState<P> {
    fn default() -> Self {
        Self {
            waiters: VecDeque::new(),
            active: Vec::new(),
            standing_until: None,
            buffer: VecDeque::new(),
        }
    }
}

impl<P> Default for Effects<P> {
    fn default() -> Self {
        Self {
            completions: Vec::new(),
            handed: Vec::new(),
            flush: false,
            flush_now: false,
            tick: None,
            refused: Vec::new(),
        }
    }
}

/// The result of an operation: resolves its future (or settles a windowed send), in the
/// order the server acknowledges them.
pub(crate) fn on_result<P: Handle>(
    state: &mut State<P>,
    result: pb::OperationResult,
    effects: &mut Effects<P>,
) {
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

/// A pending receive was refused: its channel's oldest waiter still waiting (`is_done`
/// false) gets the error.
pub(crate) fn on_receive_failed<P: Handle, E>(
    state: &mut State<P>,
    failed: pb::ReceiveFailed,
    effects: &mut Effects<P>,
    is_done: &mut impl FnMut(&P) -> Result<bool, E>,
) -> Result<(), E> {
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
        if !is_done(&waiter)? {
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

/// Takes the messages the server delivered to `receive_id`: into the channel's buffer,
/// then to its waiters. `channel` is empty when the event did not name it (a shared
/// delivery): the receive's own channel is used.
pub(crate) fn on_delivery<P: Handle>(
    state: &mut State<P>,
    prefetch: Prefetch,
    receive_id: u64,
    channel: String,
    messages: impl Iterator<Item = (Instant, Bytes)>,
    now: Instant,
    effects: &mut Effects<P>,
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
    state.reconcile(&channel, prefetch, now, effects);
    state.forget_if_idle(&channel);
}

/// One event of the stream: resolves what it answers and updates the receive state.
/// `is_done` tells whether a waiter's future is already resolved (its caller gone).
pub(crate) fn on_event<P: Handle, E>(
    state: &mut State<P>,
    event: Event,
    prefetch: Prefetch,
    now: Instant,
    effects: &mut Effects<P>,
    is_done: &mut impl FnMut(&P) -> Result<bool, E>,
) -> Result<(), E> {
    match event {
        Event::Opened(opened) => {
            if let Some(future) = state.opened.take() {
                effects.complete(future, Outcome::Value(Value::Opened(opened)));
            }
        }
        Event::Result(result) => on_result(state, result, effects),
        Event::Delivery(delivery) => {
            let pb::Delivery {
                receive_id,
                channel,
                messages,
            } = delivery;
            let messages = messages
                .into_iter()
                .map(|m| (now + Duration::from_millis(m.expires_in_ms), m.message));
            on_delivery(state, prefetch, receive_id, channel, messages, now, effects);
        }
        Event::SharedDelivery(shared) => {
            let deadline = now + Duration::from_millis(shared.expires_in_ms);
            for receive_id in shared.receive_ids {
                let message = std::iter::once((deadline, shared.message.clone()));
                on_delivery(
                    state,
                    prefetch,
                    receive_id,
                    String::new(),
                    message,
                    now,
                    effects,
                );
            }
        }
        Event::Cancelled(cancelled) => {
            state.cancelling.remove(&cancelled.receive_id);
            state.receives.remove(&cancelled.receive_id);
        }
        Event::ReceiveFailed(failed) => {
            on_receive_failed(state, failed, effects, is_done)?;
        }
        Event::Closing(closing) => state.closing_reason = Some(closing.reason),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// A stand-in for a Python future: its number is its identity.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Fut(u32);

    impl Handle for Fut {
        fn addr(&self) -> usize {
            self.0 as usize
        }
    }

    const PREFETCH: Prefetch = Prefetch {
        specific: 10,
        normal: 1,
    };

    fn connected() -> State<Fut> {
        let mut state = State::new();
        state.connected = true;
        state
    }

    /// Feeds one event; futures listed in `done` count as already resolved.
    fn feed(state: &mut State<Fut>, event: Event, done: &[u32]) -> Effects<Fut> {
        let mut effects = Effects::default();
        on_event(
            state,
            event,
            PREFETCH,
            Instant::now(),
            &mut effects,
            &mut |f: &Fut| Ok::<_, Infallible>(done.contains(&f.0)),
        )
        .unwrap();
        effects
    }

    fn pending(state: &mut State<Fut>, future: u32, kind: OpKind, replay: bool) -> u64 {
        let request_id = state.new_id();
        state.ops.push_back(PendingOp {
            request_id,
            future: Some(Fut(future)),
            kind,
            channel: Some("c".to_owned()),
            capacity: 0,
            written: true,
            replay,
        });
        request_id
    }

    fn result(request_id: u64) -> Event {
        Event::Result(pb::OperationResult {
            request_id,
            ..Default::default()
        })
    }

    fn delivery(receive_id: u64, channel: &str, messages: &[&'static [u8]]) -> Event {
        Event::Delivery(pb::Delivery {
            receive_id,
            channel: channel.to_owned(),
            messages: messages
                .iter()
                .map(|m| pb::DeliveredMessage {
                    message: Bytes::from_static(m),
                    expires_in_ms: 60_000,
                })
                .collect(),
        })
    }

    /// A channel with one waiting receive; returns its receive id.
    fn waiting(state: &mut State<Fut>, channel: &str, waiter: u32) -> u64 {
        let mut effects = Effects::default();
        state
            .channels
            .entry(channel.to_owned())
            .or_default()
            .waiters
            .push_back(Fut(waiter));
        state.reconcile(channel, PREFETCH, Instant::now(), &mut effects);
        assert!(effects.flush_now, "a lone receive is written at once");
        state.channels[channel].active[0]
    }

    #[test]
    fn results_resolve_their_operations_in_order() {
        let mut state = connected();
        let first = pending(&mut state, 1, OpKind::Plain, false);
        let second = pending(&mut state, 2, OpKind::GroupSend, false);
        let effects = feed(&mut state, result(first), &[]);
        assert!(matches!(
            effects.completions[..],
            [(Fut(1), Outcome::Value(Value::None))]
        ));
        let effects = feed(
            &mut state,
            Event::Result(pb::OperationResult {
                request_id: second,
                delivered_count: 3,
                dropped_count: 1,
                ..Default::default()
            }),
            &[],
        );
        assert!(matches!(
            effects.completions[..],
            [(Fut(2), Outcome::Value(Value::Counts(3, 1)))]
        ));
        assert!(state.ops.is_empty());
    }

    #[test]
    fn a_refused_operation_fails_with_the_servers_reason_and_its_channel() {
        let mut state = connected();
        let id = pending(&mut state, 1, OpKind::Plain, false);
        let effects = feed(
            &mut state,
            Event::Result(pb::OperationResult {
                request_id: id,
                error: Some(pb::ErrorDetail {
                    code: 8,
                    reason: "CHANNEL_FULL".to_owned(),
                    message: "full".to_owned(),
                }),
                ..Default::default()
            }),
            &[],
        );
        match &effects.completions[..] {
            [(Fut(1), Outcome::Error(failure, Some(channel)))] => {
                assert_eq!((failure.code, failure.reason.as_str()), (8, "CHANNEL_FULL"));
                assert_eq!(channel, "c");
            }
            _ => panic!("not a refusal"),
        }
    }

    #[test]
    fn a_delivery_serves_the_oldest_waiter_and_buffers_the_rest() {
        let mut state = connected();
        let receive_id = waiting(&mut state, "c", 7);
        assert!(matches!(
            &state.outbox[..],
            [Operation::Receive(pb::ReceiveOperation {
                max_messages: 1,
                ..
            })]
        ));
        let effects = feed(
            &mut state,
            delivery(receive_id, "c", &[b"one", b"two"]),
            &[],
        );
        assert_eq!(effects.handed.len(), 1);
        assert_eq!(effects.handed[0].waiter, Fut(7));
        assert_eq!(&effects.handed[0].payload[..], b"one");
        let channel = &state.channels["c"];
        assert!(channel.active.is_empty() && channel.waiters.is_empty());
        assert_eq!(channel.buffer.len(), 1);
        assert!(!state.receives.contains_key(&receive_id));
    }

    #[test]
    fn a_served_specific_channel_keeps_standing_demand() {
        let mut state = connected();
        let receive_id = waiting(&mut state, "x!abc", 1);
        state.outbox.clear();
        let effects = feed(&mut state, delivery(receive_id, "x!abc", &[b"m"]), &[]);
        assert_eq!(effects.handed.len(), 1);
        assert!(
            effects.tick.is_some(),
            "the standing demand expires on a tick"
        );
        // One receive stays pending, with the specific prefetch, not urgent (no flush).
        assert!(matches!(
            &state.outbox[..],
            [Operation::Receive(pb::ReceiveOperation {
                max_messages: 10,
                ..
            })]
        ));
        assert!(!effects.flush && !effects.flush_now);
    }

    #[test]
    fn a_receive_without_waiter_is_cancelled_and_its_cancel_answered() {
        let mut state = connected();
        let receive_id = waiting(&mut state, "c", 1);
        state.outbox.clear();
        state.channels.get_mut("c").unwrap().waiters.clear();
        let mut effects = Effects::default();
        state.reconcile("c", PREFETCH, Instant::now(), &mut effects);
        assert!(matches!(
            &state.outbox[..],
            [Operation::Cancel(pb::CancelOperation { receive_id: id })] if *id == receive_id
        ));
        assert!(state.cancelling.contains(&receive_id));
        // A refusal of the cancelled receive fails nobody.
        let effects = feed(
            &mut state,
            Event::ReceiveFailed(pb::ReceiveFailed {
                receive_id,
                error: None,
            }),
            &[],
        );
        assert!(effects.completions.is_empty());
        assert!(!state.cancelling.contains(&receive_id));
        assert!(!state.receives.contains_key(&receive_id));
    }

    #[test]
    fn a_cancelled_answer_forgets_the_receive() {
        let mut state = connected();
        let receive_id = waiting(&mut state, "c", 1);
        state.cancelling.insert(receive_id);
        feed(
            &mut state,
            Event::Cancelled(pb::ReceiveCancelled {
                receive_id,
                was_pending: true,
            }),
            &[],
        );
        assert!(!state.cancelling.contains(&receive_id));
        assert!(!state.receives.contains_key(&receive_id));
    }

    #[test]
    fn a_failed_receive_fails_the_oldest_waiter_still_waiting() {
        let mut state = connected();
        let receive_id = waiting(&mut state, "c", 1);
        state
            .channels
            .get_mut("c")
            .unwrap()
            .waiters
            .push_back(Fut(2));
        let effects = feed(
            &mut state,
            Event::ReceiveFailed(pb::ReceiveFailed {
                receive_id,
                error: Some(pb::ErrorDetail {
                    code: 8,
                    reason: "TOO_MANY_PENDING_RECEIVES".to_owned(),
                    message: "m".to_owned(),
                }),
            }),
            &[1],
        );
        match &effects.completions[..] {
            [(Fut(2), Outcome::Error(failure, Some(channel)))] => {
                assert_eq!(failure.reason, "TOO_MANY_PENDING_RECEIVES");
                assert_eq!(channel, "c");
            }
            _ => panic!("the waiter still waiting is failed"),
        }
    }

    #[test]
    fn a_restore_is_complete_once_every_replayed_membership_is_acknowledged() {
        let mut state = connected();
        let first = pending(&mut state, 1, OpKind::Plain, true);
        let second = pending(&mut state, 2, OpKind::Plain, true);
        state.replay_unacked = 2;
        state.replay_incomplete = true;
        feed(&mut state, result(first), &[]);
        assert!(state.replay_incomplete);
        feed(&mut state, result(second), &[]);
        assert!(!state.replay_incomplete);
        assert_eq!(state.replay_unacked, 0);
    }

    #[test]
    fn opened_resolves_the_open_future_once() {
        let mut state = connected();
        state.opened = Some(Fut(9));
        let opened = pb::SessionOpened {
            client_prefix: "p".to_owned(),
            ..Default::default()
        };
        let effects = feed(&mut state, Event::Opened(opened.clone()), &[]);
        assert!(matches!(
            &effects.completions[..],
            [(Fut(9), Outcome::Value(Value::Opened(o)))] if o.client_prefix == "p"
        ));
        assert!(
            feed(&mut state, Event::Opened(opened), &[])
                .completions
                .is_empty()
        );
    }

    #[test]
    fn operations_queued_behind_an_awaited_result_wait_for_the_loops_flush() {
        let mut state = connected();
        state
            .outbox
            .push(Operation::Cancel(pb::CancelOperation { receive_id: 1 }));
        let mut effects = Effects::default();
        state.want_flush(&mut effects);
        assert!(
            effects.flush_now && !effects.flush,
            "nothing awaited: written at once"
        );
        pending(&mut state, 1, OpKind::Plain, false);
        let mut effects = Effects::default();
        state.want_flush(&mut effects);
        assert!(
            effects.flush && !effects.flush_now,
            "one frame at the end of the iteration"
        );
        assert!(state.flush_scheduled);
    }
}
