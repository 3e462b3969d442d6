//! The async facade over the engine: sessions and their leases, waiting receives,
//! delivery into each session's outbox, and the sweeper task.
//!
//! A session is what a gateway process holds for its whole life: a namespace, a client
//! prefix (which names its process-specific channels) and a resume token. It is attached
//! to at most one stream at a time. Each attached stream has an [`Outbox`]: the events
//! waiting to be written to the client, and the receives waiting for a message.
//!
//! Delivery never holds a shard lock: the engine hands back the waiter a message went to
//! ([`Handoff`]); the hub then puts it in that waiter's outbox. If the outbox no longer
//! wants it (the receive was cancelled meanwhile, or the stream ended), the message goes
//! back to the front of its channel, so nothing is lost to a race.
//!
//! Leases: when a session's stream ends it is detached. A stream that opens with its
//! resume token within the grace period takes it over, with everything it had. After the
//! grace period the session is released: its specific channels (and their queued
//! messages) and their group memberships are removed. This deviates from "memberships
//! added through the session" in DESIGN.md on purpose: the lease follows the channel's
//! owner, so a membership added for a specific channel by anyone (a unary `GroupAdd`
//! from a view, another event loop) is released with the process that reads it, and a
//! membership of a normal (worker) channel is never released by a session ending.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::core::{
    self, CapacityRules, CoreError, Handoff, Layer, Limits, Message, Namespace, Received,
    names::validate_client_prefix,
};

/// Settings of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Limits of the engine.
    pub limits: Limits,
    /// Shards per namespace.
    pub shards: usize,
    /// How long a session survives without a stream.
    pub lease_grace: Duration,
    /// The most receives one session may have pending.
    pub max_pending_receives: usize,
    /// The most sessions (attached or detached) the server holds.
    pub max_sessions: usize,
    /// How often expired messages and memberships are swept and leases checked.
    pub sweep_interval: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            shards: 64,
            lease_grace: Duration::from_secs(30),
            max_pending_receives: 250_000,
            max_sessions: 10_000,
            sweep_interval: Duration::from_secs(1),
        }
    }
}

/// Why a hub operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// The engine refused it.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Another live session of the namespace holds the proposed client prefix.
    #[error("client prefix {prefix:?} is held by another session of namespace {namespace:?}")]
    ClientPrefixInUse {
        /// The namespace.
        namespace: String,
        /// The prefix.
        prefix: String,
    },
    /// The session already has as many pending receives as allowed.
    #[error("the session already has {limit} pending receives, its limit")]
    TooManyPendingReceives {
        /// The limit.
        limit: usize,
    },
    /// A receive id was reused while its receive is still pending.
    #[error("receive id {receive_id} is already pending on this session")]
    DuplicateReceiveId {
        /// The id.
        receive_id: u64,
    },
    /// The server holds as many sessions as allowed.
    #[error("the server already holds {limit} sessions, its limit")]
    TooManySessions {
        /// The limit.
        limit: usize,
    },
    /// The server is shutting down and accepts no new sessions.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Why a session stream ends from the server's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The server shuts down.
    Shutdown,
    /// The client asked.
    ClientClose,
    /// Another stream resumed the session.
    ResumedElsewhere,
}

/// The outcome of a send or group operation made on a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    /// `send`: whether the message went straight to a waiting receive.
    Sent {
        /// True when handed to a waiting receive.
        delivered: bool,
        /// Messages the channel holds afterwards (0 when handed to a waiting receive).
        queued: usize,
    },
    /// `group_add` or `group_discard`: whether the membership changed.
    Changed(bool),
    /// `group_send`: how many members got the message and how many were full.
    GroupSent {
        /// Members that got it.
        delivered: u32,
        /// Members that were full.
        dropped: u32,
    },
}

/// What a session stream tells its client.
#[derive(Debug)]
pub enum Event {
    /// Messages for a receive.
    Delivery {
        /// The receive.
        receive_id: u64,
        /// Its channel.
        channel: Arc<str>,
        /// The messages, oldest first.
        messages: Vec<Message>,
    },
    /// The result of an operation with a request id.
    Result {
        /// The request id.
        request_id: u64,
        /// What happened.
        outcome: Result<OpOutcome, HubError>,
    },
    /// A receive that failed.
    ReceiveFailed {
        /// The receive.
        receive_id: u64,
        /// Why.
        error: HubError,
    },
    /// The answer to a cancel.
    Cancelled {
        /// The receive.
        receive_id: u64,
        /// True when it was pending and is now withdrawn.
        was_pending: bool,
    },
    /// The stream ends after this event.
    Closing(CloseReason),
}

/// The waiter the engine stores for a pending receive.
pub struct HubWaiter {
    id: u64,
    receive_id: u64,
    channel: Arc<str>,
    outbox: Arc<Outbox>,
}

impl core::Waiter for HubWaiter {
    fn id(&self) -> u64 {
        self.id
    }
}

struct PendingReceive {
    waiter_id: u64,
    channel: Arc<str>,
}

#[derive(Default)]
struct OutboxState {
    events: VecDeque<Event>,
    pending: HashMap<u64, PendingReceive>,
    /// No more events are accepted: the stream is gone or going.
    closed: bool,
    /// The stream ends once the queued events are written.
    finishing: bool,
}

/// Messages of a delivery that was never written, with their channel.
type Unsent = (Arc<str>, Vec<Message>);

/// The events a stream has yet to write, and the receives it has pending.
pub struct Outbox {
    state: Mutex<OutboxState>,
    notify: Notify,
}

/// What [`Outbox::next_batch`] gives the writer.
pub enum Batch {
    /// Events to write now.
    Events(Vec<Event>),
    /// The stream is over.
    End,
}

impl Outbox {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(OutboxState::default()),
            notify: Notify::new(),
        })
    }

    fn push(&self, event: Event) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        state.events.push_back(event);
        drop(state);
        self.notify.notify_one();
    }

    fn push_all(&self, events: impl IntoIterator<Item = Event>) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        state.events.extend(events);
        drop(state);
        self.notify.notify_one();
    }

    /// Delivers `messages` to the pending receive `receive_id` if it is still the one
    /// registered as `waiter_id`; otherwise gives the messages back.
    fn deliver(&self, waiter: &HubWaiter, messages: Vec<Message>) -> Result<(), Vec<Message>> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(messages);
        }
        match state.pending.get(&waiter.receive_id) {
            Some(p) if p.waiter_id == waiter.id => {}
            _ => return Err(messages),
        }
        state.pending.remove(&waiter.receive_id);
        state.events.push_back(Event::Delivery {
            receive_id: waiter.receive_id,
            channel: Arc::clone(&waiter.channel),
            messages,
        });
        drop(state);
        self.notify.notify_one();
        Ok(())
    }

    /// Waits for events and takes up to `max_bytes` of payload of them (at least one
    /// event), or says the stream is over.
    pub async fn next_batch(&self, max_bytes: usize) -> Batch {
        loop {
            {
                let mut state = self.state.lock();
                if !state.events.is_empty() {
                    let mut batch = Vec::with_capacity(state.events.len().min(1024));
                    let mut bytes = 0;
                    while let Some(event) = state.events.front() {
                        let size = event_size(event);
                        if !batch.is_empty() && bytes + size > max_bytes {
                            break;
                        }
                        bytes += size;
                        batch.push(state.events.pop_front().expect("front exists"));
                    }
                    if !state.events.is_empty() {
                        // More than one frame's worth is queued: come back without waiting.
                        self.notify.notify_one();
                    }
                    return Batch::Events(batch);
                }
                if state.finishing || state.closed {
                    return Batch::End;
                }
            }
            self.notify.notified().await;
            // Woken by the first event of a burst: let the task that pushed it finish its
            // frame (an acknowledgement and the delivery it caused, say), so they leave
            // in one frame instead of two.
            tokio::task::yield_now().await;
        }
    }

    /// How many receives are pending.
    pub fn pending_receives(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Ends the stream once queued events are written; accepts no more events.
    fn finish(&self, last: Option<Event>) {
        let mut state = self.state.lock();
        if !state.closed {
            if let Some(event) = last {
                state.events.push_back(event);
            }
            state.closed = true;
        }
        state.finishing = true;
        drop(state);
        self.notify.notify_one();
    }

    /// Queues the stream's last event after [`Outbox::close`], so the writer still sends it.
    fn push_last(&self, event: Event) {
        self.state.lock().events.push_back(event);
        self.notify.notify_one();
    }

    /// Closes the outbox for good: returns the pending receives (to withdraw from the
    /// engine) and the deliveries never written (to put back in their channels).
    fn close(&self) -> (Vec<PendingReceive>, Vec<Unsent>) {
        let mut state = self.state.lock();
        state.closed = true;
        state.finishing = true;
        let pending = state.pending.drain().map(|(_, p)| p).collect();
        let unsent = state
            .events
            .drain(..)
            .filter_map(|event| match event {
                Event::Delivery {
                    channel, messages, ..
                } => Some((channel, messages)),
                _ => None,
            })
            .collect();
        drop(state);
        self.notify.notify_one();
        (pending, unsent)
    }
}

fn event_size(event: &Event) -> usize {
    match event {
        Event::Delivery { messages, .. } => {
            messages.iter().map(|m| m.payload.len() + 16).sum::<usize>() + 32
        }
        _ => 32,
    }
}

/// Hooks the hub calls as things happen, so that an exporter (see `metrics`) can count
/// them without the hub knowing about it. Every method does nothing by default.
pub trait Observer: Send + Sync {
    /// A message was delivered to a receive, `latency` after it was sent.
    fn delivered(&self, latency: Duration) {
        let _ = latency;
    }
    /// A group send reached `delivered` members and dropped `dropped` full ones.
    fn group_sent(&self, delivered: usize, dropped: usize) {
        let _ = (delivered, dropped);
    }
    /// An operation or a receive on a session stream was refused; the refusal goes to the
    /// client inside the stream, not as a call's status.
    fn refused(&self, error: &HubError) {
        let _ = error;
    }
    /// A session was opened (`resumed` when an existing one was taken over).
    fn session_opened(&self, resumed: bool) {
        let _ = resumed;
    }
    /// A session was released after its lease ran out (`expired`) or on close.
    fn session_released(&self, expired: bool, report: &core::ReleaseReport) {
        let _ = (expired, report);
    }
    /// A frame of a session stream was applied: `operations` counts its operations by
    /// kind, and applying them took `elapsed`.
    fn frame_handled(&self, operations: &OperationCounts, elapsed: Duration) {
        let _ = (operations, elapsed);
    }
}

/// The operations of one session frame, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OperationCounts {
    /// Receive operations.
    pub receive: u32,
    /// Cancel operations.
    pub cancel: u32,
    /// Send operations.
    pub send: u32,
    /// Group add operations.
    pub group_add: u32,
    /// Group discard operations.
    pub group_discard: u32,
    /// Group send operations.
    pub group_send: u32,
    /// Close operations.
    pub close: u32,
}

/// The observer that observes nothing.
pub struct NoObserver;

impl Observer for NoObserver {}

/// Counters the hub keeps beside the engine's.
#[derive(Debug, Default)]
struct HubCounters {
    delivered: AtomicU64,
    sessions_opened: AtomicU64,
    sessions_resumed: AtomicU64,
    sessions_released: AtomicU64,
}

/// A snapshot of the hub's counters and gauges with the engine's.
#[derive(Debug, Clone, Default)]
pub struct HubStats {
    /// The engine's counters and gauges.
    pub core: core::Stats,
    /// How long the hub has run.
    pub uptime: Duration,
    /// Sessions with a live stream.
    pub sessions_open: u64,
    /// Sessions waiting to be resumed.
    pub sessions_detached: u64,
    /// Messages delivered to receives.
    pub delivered_total: u64,
    /// Sessions opened (new, not resumed).
    pub sessions_opened_total: u64,
    /// Sessions resumed by a new stream.
    pub sessions_resumed_total: u64,
    /// Sessions released after their lease ran out or on close.
    pub sessions_released_total: u64,
}

type SessionKey = (Arc<str>, Arc<str>);

struct SessionEntry {
    token: Arc<str>,
    /// The stream attached now, with its id.
    attached: Option<(u64, Arc<Outbox>)>,
    detached_at: Option<Instant>,
}

#[derive(Default)]
struct Sessions {
    by_key: HashMap<SessionKey, SessionEntry>,
    by_token: HashMap<Arc<str>, SessionKey>,
}

/// What a client asks when it opens a session.
#[derive(Debug, Clone, Default)]
pub struct OpenRequest {
    /// The namespace.
    pub namespace: String,
    /// The proposed client prefix, or empty.
    pub client_prefix: String,
    /// The resume token of an earlier stream, or empty.
    pub resume_token: String,
}

/// What the hub answers to an open.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The session's client prefix.
    pub client_prefix: String,
    /// Its resume token.
    pub resume_token: String,
    /// True when an existing session was taken over.
    pub resumed: bool,
}

/// The channel layer: the engine, the sessions and the sweeper.
pub struct Hub {
    layer: Layer<HubWaiter>,
    sessions: Mutex<Sessions>,
    config: HubConfig,
    counters: HubCounters,
    next_id: AtomicU64,
    started: Instant,
    shutting_down: watch::Sender<bool>,
    observer: Arc<dyn Observer>,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn random_hex() -> String {
    let value: u128 = rand::random();
    format!("{value:032x}")
}

impl Hub {
    /// A hub with no state.
    pub fn new(config: HubConfig) -> Arc<Self> {
        Self::with_observer(config, Arc::new(NoObserver))
    }

    /// A hub with no state that reports events to `observer`.
    pub fn with_observer(config: HubConfig, observer: Arc<dyn Observer>) -> Arc<Self> {
        Arc::new(Self {
            layer: Layer::new(config.limits.clone(), config.shards),
            sessions: Mutex::new(Sessions::default()),
            config,
            counters: HubCounters::default(),
            next_id: AtomicU64::new(1),
            started: now(),
            shutting_down: watch::Sender::new(false),
            observer,
        })
    }

    /// The observer events are reported to.
    pub fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }

    /// The settings in force.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    fn namespace(&self, name: &str) -> Result<Arc<Namespace<HubWaiter>>, HubError> {
        Ok(self.layer.namespace(name)?)
    }

    /// Puts each handed-off message in its waiter's outbox; a message whose waiter is gone
    /// goes back to its channel (and possibly to the next waiter).
    fn deliver(
        &self,
        ns: &Namespace<HubWaiter>,
        handoffs: impl IntoIterator<Item = Handoff<HubWaiter>>,
    ) {
        for Handoff { waiter, message } in handoffs {
            let mut next = Some((waiter, message));
            while let Some((waiter, message)) = next.take() {
                let sent_at = message.sent_at;
                match waiter.outbox.deliver(&waiter, vec![message]) {
                    Ok(()) => {
                        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                        self.observer
                            .delivered(now().saturating_duration_since(sent_at));
                    }
                    Err(mut back) => {
                        let message = back.pop().expect("one message");
                        next = ns
                            .requeue(&waiter.channel, message, now())
                            .map(|h| (h.waiter, h.message));
                    }
                }
            }
        }
    }

    /// Sends a message to a channel. Returns true when it went to a waiting receive.
    pub fn send(
        &self,
        namespace: &str,
        channel: &str,
        payload: Bytes,
        capacity: usize,
        expiry: Duration,
    ) -> Result<bool, HubError> {
        let ns = self.namespace(namespace)?;
        self.send_in(&ns, channel, payload, capacity, expiry)
            .map(|(delivered, _)| delivered)
    }

    /// Sends a message; returns whether it went to a waiting receive and how many messages
    /// the channel holds afterwards.
    fn send_in(
        &self,
        ns: &Namespace<HubWaiter>,
        channel: &str,
        payload: Bytes,
        capacity: usize,
        expiry: Duration,
    ) -> Result<(bool, usize), HubError> {
        match ns.send_counted(channel, payload, capacity, expiry, now())? {
            (Some(handoff), queued) => {
                self.deliver(ns, [handoff]);
                Ok((true, queued))
            }
            (None, queued) => Ok((false, queued)),
        }
    }

    /// Adds a channel to a group. Returns true when it was not a member.
    pub fn group_add(
        &self,
        namespace: &str,
        group: &str,
        channel: &str,
        group_expiry: Duration,
    ) -> Result<bool, HubError> {
        Ok(self
            .namespace(namespace)?
            .group_add(group, channel, group_expiry, now())?)
    }

    /// Removes a channel from a group. Returns true when it was a member.
    pub fn group_discard(
        &self,
        namespace: &str,
        group: &str,
        channel: &str,
    ) -> Result<bool, HubError> {
        Ok(self.namespace(namespace)?.group_discard(group, channel)?)
    }

    /// Sends a message to every member of a group: (delivered, dropped).
    pub fn group_send(
        &self,
        namespace: &str,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
    ) -> Result<(usize, usize), HubError> {
        let ns = self.namespace(namespace)?;
        self.group_send_in(&ns, group, payload, capacities, expiry)
    }

    fn group_send_in(
        &self,
        ns: &Namespace<HubWaiter>,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
    ) -> Result<(usize, usize), HubError> {
        let sent = ns.group_send(group, payload, capacities, expiry, now())?;
        self.observer.group_sent(sent.delivered, sent.dropped);
        self.deliver(ns, sent.handoffs);
        Ok((sent.delivered, sent.dropped))
    }

    /// Clears a namespace.
    pub fn flush(&self, namespace: &str) -> Result<core::FlushReport, HubError> {
        Ok(self.namespace(namespace)?.flush())
    }

    /// The state of a channel.
    pub fn channel_info(
        &self,
        namespace: &str,
        channel: &str,
    ) -> Result<core::ChannelInfo, HubError> {
        Ok(self.namespace(namespace)?.channel_info(channel, now())?)
    }

    /// How many members a group has.
    pub fn group_size(&self, namespace: &str, group: &str) -> Result<usize, HubError> {
        Ok(self.namespace(namespace)?.group_size(group, now())?)
    }

    /// One page of a group's members.
    pub fn group_members(
        &self,
        namespace: &str,
        group: &str,
        after: &str,
        limit: usize,
    ) -> Result<core::MembersPage, HubError> {
        Ok(self
            .namespace(namespace)?
            .group_members(group, after, limit, now())?)
    }

    /// Counters and gauges.
    pub fn stats(&self) -> HubStats {
        let (open, detached) = {
            let sessions = self.sessions.lock();
            let open = sessions
                .by_key
                .values()
                .filter(|s| s.attached.is_some())
                .count() as u64;
            (open, sessions.by_key.len() as u64 - open)
        };
        HubStats {
            core: self.layer.stats(),
            uptime: now().saturating_duration_since(self.started),
            sessions_open: open,
            sessions_detached: detached,
            delivered_total: self.counters.delivered.load(Ordering::Relaxed),
            sessions_opened_total: self.counters.sessions_opened.load(Ordering::Relaxed),
            sessions_resumed_total: self.counters.sessions_resumed.load(Ordering::Relaxed),
            sessions_released_total: self.counters.sessions_released.load(Ordering::Relaxed),
        }
    }

    /// Opens (or resumes) a session and attaches a new stream to it.
    pub fn open_session(
        self: &Arc<Self>,
        request: OpenRequest,
    ) -> Result<(SessionHandle, Opened), HubError> {
        if *self.shutting_down.borrow() {
            return Err(HubError::ShuttingDown);
        }
        let ns = self.namespace(&request.namespace)?;
        if !request.client_prefix.is_empty() {
            validate_client_prefix(&request.client_prefix)?;
        }
        let outbox = Outbox::new();
        let stream_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut sessions = self.sessions.lock();

        // Resume, when the token names a session of this namespace.
        if !request.resume_token.is_empty()
            && let Some(key) = sessions
                .by_token
                .get(request.resume_token.as_str())
                .cloned()
            && *key.0 == *request.namespace
            && (request.client_prefix.is_empty() || *key.1 == *request.client_prefix)
        {
            let entry = sessions.by_key.get_mut(&key).expect("indexes agree");
            let previous = entry.attached.replace((stream_id, Arc::clone(&outbox)));
            entry.detached_at = None;
            let token = entry.token.to_string();
            drop(sessions);
            if let Some((_, old)) = previous {
                old.finish(Some(Event::Closing(CloseReason::ResumedElsewhere)));
            }
            self.counters
                .sessions_resumed
                .fetch_add(1, Ordering::Relaxed);
            self.observer.session_opened(true);
            let opened = Opened {
                client_prefix: key.1.to_string(),
                resume_token: token,
                resumed: true,
            };
            return Ok((self.handle(ns, key, stream_id, outbox), opened));
        }

        if sessions.by_key.len() >= self.config.max_sessions {
            return Err(HubError::TooManySessions {
                limit: self.config.max_sessions,
            });
        }
        let prefix: Arc<str> = if request.client_prefix.is_empty() {
            random_hex().into()
        } else {
            request.client_prefix.as_str().into()
        };
        let key: SessionKey = (ns.name().into(), prefix);
        if sessions.by_key.contains_key(&key) {
            return Err(HubError::ClientPrefixInUse {
                namespace: request.namespace,
                prefix: key.1.to_string(),
            });
        }
        let token: Arc<str> = random_hex().into();
        sessions.by_token.insert(Arc::clone(&token), key.clone());
        sessions.by_key.insert(
            key.clone(),
            SessionEntry {
                token: Arc::clone(&token),
                attached: Some((stream_id, Arc::clone(&outbox))),
                detached_at: None,
            },
        );
        drop(sessions);
        self.counters
            .sessions_opened
            .fetch_add(1, Ordering::Relaxed);
        self.observer.session_opened(false);
        let opened = Opened {
            client_prefix: key.1.to_string(),
            resume_token: token.to_string(),
            resumed: false,
        };
        Ok((self.handle(ns, key, stream_id, outbox), opened))
    }

    fn handle(
        self: &Arc<Self>,
        ns: Arc<Namespace<HubWaiter>>,
        key: SessionKey,
        stream_id: u64,
        outbox: Arc<Outbox>,
    ) -> SessionHandle {
        SessionHandle {
            hub: Arc::clone(self),
            ns,
            key,
            stream_id,
            outbox,
            acks: Vec::new(),
            ended: false,
        }
    }

    /// Releases sessions detached for longer than the lease grace period.
    pub fn expire_leases(&self) -> usize {
        let now = now();
        let grace = self.config.lease_grace;
        let expired: Vec<SessionKey> = {
            let mut sessions = self.sessions.lock();
            let keys: Vec<SessionKey> = sessions
                .by_key
                .iter()
                .filter(|(_, s)| {
                    s.detached_at
                        .is_some_and(|at| now.saturating_duration_since(at) >= grace)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in &keys {
                if let Some(entry) = sessions.by_key.remove(key) {
                    sessions.by_token.remove(&entry.token);
                }
            }
            keys
        };
        for key in &expired {
            self.release(key, true);
        }
        expired.len()
    }

    fn release(&self, key: &SessionKey, expired: bool) {
        self.counters
            .sessions_released
            .fetch_add(1, Ordering::Relaxed);
        if let Ok(ns) = self.layer.namespace(&key.0) {
            let report = ns.release_client(&key.1);
            self.observer.session_released(expired, &report);
            tracing::debug!(
                namespace = %key.0,
                client_prefix = %key.1,
                channels = report.channels,
                dropped_messages = report.dropped_messages,
                memberships = report.memberships,
                "session released"
            );
        }
    }

    /// Sweeps expired messages and memberships, one shard at a time, yielding between
    /// shards so that a large sweep never stalls the runtime.
    pub async fn sweep(&self) -> core::SweepReport {
        let mut report = core::SweepReport::default();
        for ns in self.layer.namespaces() {
            for shard in 0..ns.shard_count() {
                report.add(&ns.sweep_shard(shard, now()));
                tokio::task::yield_now().await;
            }
        }
        report
    }

    /// Runs the sweeper and the lease expiry until shutdown.
    pub async fn run_sweeper(self: Arc<Self>) {
        let mut shutdown = self.shutting_down.subscribe();
        let mut tick = tokio::time::interval(self.config.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|down| *down) => return,
            }
            let report = self.sweep().await;
            if report != core::SweepReport::default() {
                tracing::trace!(?report, "swept");
            }
            self.expire_leases();
        }
    }

    /// Tells every stream that the server shuts down and refuses new sessions. Streams end
    /// once their last events are written; their sessions stay detached, so clients can
    /// resume them elsewhere within the grace period.
    pub fn shutdown(&self) {
        self.shutting_down.send_replace(true);
        let outboxes: Vec<Arc<Outbox>> = self
            .sessions
            .lock()
            .by_key
            .values()
            .filter_map(|s| s.attached.as_ref().map(|(_, o)| Arc::clone(o)))
            .collect();
        for outbox in outboxes {
            outbox.finish(Some(Event::Closing(CloseReason::Shutdown)));
        }
    }

    /// A receiver that turns true when the hub shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutting_down.subscribe()
    }
}

/// One stream's hold on a session: the operations it can make.
///
/// Acknowledgements are collected and written with [`SessionHandle::flush_acks`] once per
/// frame, so that one client frame gets its acks back in one server frame. Dropping the
/// handle ends the stream and detaches the session (see [`SessionHandle::end`]).
pub struct SessionHandle {
    hub: Arc<Hub>,
    ns: Arc<Namespace<HubWaiter>>,
    key: SessionKey,
    stream_id: u64,
    outbox: Arc<Outbox>,
    acks: Vec<Event>,
    ended: bool,
}

impl SessionHandle {
    /// The outbox the writer drains.
    pub fn outbox(&self) -> Arc<Outbox> {
        Arc::clone(&self.outbox)
    }

    /// The session's client prefix.
    pub fn client_prefix(&self) -> &str {
        &self.key.1
    }

    /// Registers a receive; its answer comes as an event.
    pub fn receive(&mut self, receive_id: u64, channel: &str, max_messages: usize) {
        let channel_arc: Arc<str> = channel.into();
        let waiter_id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut state = self.outbox.state.lock();
            if state.closed {
                return;
            }
            let error = if state.pending.contains_key(&receive_id) {
                Some(HubError::DuplicateReceiveId { receive_id })
            } else if state.pending.len() >= self.hub.config.max_pending_receives {
                Some(HubError::TooManyPendingReceives {
                    limit: self.hub.config.max_pending_receives,
                })
            } else {
                None
            };
            if let Some(error) = error {
                self.hub.observer.refused(&error);
                state
                    .events
                    .push_back(Event::ReceiveFailed { receive_id, error });
                drop(state);
                self.outbox.notify.notify_one();
                return;
            }
            state.pending.insert(
                receive_id,
                PendingReceive {
                    waiter_id,
                    channel: Arc::clone(&channel_arc),
                },
            );
        }
        let outbox = Arc::clone(&self.outbox);
        let result = self.ns.receive(channel, max_messages, now(), || HubWaiter {
            id: waiter_id,
            receive_id,
            channel: Arc::clone(&channel_arc),
            outbox,
        });
        match result {
            Ok(Received::Waiting) => {}
            Ok(Received::Messages(messages)) => {
                let count = messages.len() as u64;
                let sent: Vec<Instant> = messages.iter().map(|m| m.sent_at).collect();
                let waiter = HubWaiter {
                    id: waiter_id,
                    receive_id,
                    channel: Arc::clone(&channel_arc),
                    outbox: Arc::clone(&self.outbox),
                };
                match self.outbox.deliver(&waiter, messages) {
                    Ok(()) => {
                        self.hub
                            .counters
                            .delivered
                            .fetch_add(count, Ordering::Relaxed);
                        let now = now();
                        for sent_at in sent {
                            self.hub
                                .observer
                                .delivered(now.saturating_duration_since(sent_at));
                        }
                    }
                    Err(messages) => {
                        // The stream closed meanwhile: put them back, newest first.
                        let handoffs: Vec<_> = messages
                            .into_iter()
                            .rev()
                            .filter_map(|m| self.ns.requeue(channel, m, now()))
                            .collect();
                        self.hub.deliver(&self.ns, handoffs);
                    }
                }
            }
            Err(error) => {
                let error = HubError::from(error);
                self.hub.observer.refused(&error);
                let mut state = self.outbox.state.lock();
                state.pending.remove(&receive_id);
                if !state.closed {
                    state
                        .events
                        .push_back(Event::ReceiveFailed { receive_id, error });
                }
                drop(state);
                self.outbox.notify.notify_one();
            }
        }
    }

    /// Withdraws a pending receive; the answer comes as an event, after any delivery
    /// already made for it.
    pub fn cancel(&mut self, receive_id: u64) {
        let pending = {
            let mut state = self.outbox.state.lock();
            let pending = state.pending.remove(&receive_id);
            if !state.closed {
                state.events.push_back(Event::Cancelled {
                    receive_id,
                    was_pending: pending.is_some(),
                });
            }
            pending
        };
        self.outbox.notify.notify_one();
        if let Some(p) = pending {
            // If the engine no longer has the waiter, a sender holds it and will find it
            // gone from `pending`, and put its message back.
            self.ns.cancel(&p.channel, p.waiter_id);
        }
    }

    fn ack(&mut self, request_id: u64, outcome: Result<OpOutcome, HubError>) {
        if let Err(error) = &outcome {
            self.hub.observer.refused(error);
        }
        self.acks.push(Event::Result {
            request_id,
            outcome,
        });
    }

    /// Sends a message; acknowledged at the next [`SessionHandle::flush_acks`].
    pub fn send(
        &mut self,
        request_id: u64,
        channel: &str,
        payload: Bytes,
        capacity: usize,
        expiry: Duration,
    ) {
        let outcome = self
            .hub
            .send_in(&self.ns, channel, payload, capacity, expiry)
            .map(|(delivered, queued)| OpOutcome::Sent { delivered, queued });
        self.ack(request_id, outcome);
    }

    /// Adds a channel to a group; acknowledged at the next flush.
    pub fn group_add(
        &mut self,
        request_id: u64,
        group: &str,
        channel: &str,
        group_expiry: Duration,
    ) {
        let outcome = self
            .ns
            .group_add(group, channel, group_expiry, now())
            .map(OpOutcome::Changed)
            .map_err(HubError::from);
        self.ack(request_id, outcome);
    }

    /// Removes a channel from a group; acknowledged at the next flush.
    pub fn group_discard(&mut self, request_id: u64, group: &str, channel: &str) {
        let outcome = self
            .ns
            .group_discard(group, channel)
            .map(OpOutcome::Changed)
            .map_err(HubError::from);
        self.ack(request_id, outcome);
    }

    /// Sends a message to a group; acknowledged at the next flush.
    pub fn group_send(
        &mut self,
        request_id: u64,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
    ) {
        let outcome = self
            .hub
            .group_send_in(&self.ns, group, payload, capacities, expiry)
            .map(|(delivered, dropped)| OpOutcome::GroupSent {
                delivered: delivered as u32,
                dropped: dropped as u32,
            });
        self.ack(request_id, outcome);
    }

    /// Acknowledges an operation that failed before it reached the engine (for example a
    /// malformed request); acknowledged at the next flush.
    pub fn fail(&mut self, request_id: u64, error: HubError) {
        self.ack(request_id, Err(error));
    }

    /// Fails a receive that could not be registered (for example a malformed request).
    pub fn fail_receive(&mut self, receive_id: u64, error: HubError) {
        self.hub.observer.refused(&error);
        self.outbox.push(Event::ReceiveFailed { receive_id, error });
    }

    /// Writes the acknowledgements collected since the last flush.
    pub fn flush_acks(&mut self) {
        if !self.acks.is_empty() {
            self.outbox.push_all(self.acks.drain(..));
        }
    }

    /// Ends the session for good: releases its channels and memberships now.
    pub fn close(&mut self) {
        self.flush_acks();
        self.detach(true);
        self.outbox
            .push_last(Event::Closing(CloseReason::ClientClose));
    }

    /// Ends this stream: withdraws its pending receives, puts the deliveries it never wrote
    /// back in their channels, and detaches the session (it stays resumable for the lease
    /// grace period).
    pub fn end(mut self) {
        self.detach(false);
    }

    fn detach(&mut self, release: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        let (pending, unsent) = self.outbox.close();
        for p in pending {
            self.ns.cancel(&p.channel, p.waiter_id);
        }
        let now = now();
        // Put unsent deliveries back newest first, so the channel keeps its order.
        for (channel, messages) in unsent.into_iter().rev() {
            let handoffs: Vec<_> = messages
                .into_iter()
                .rev()
                .filter_map(|m| self.ns.requeue(&channel, m, now))
                .collect();
            self.hub.deliver(&self.ns, handoffs);
        }
        let mut sessions = self.hub.sessions.lock();
        let Some(entry) = sessions.by_key.get_mut(&self.key) else {
            return;
        };
        // A stream that was taken over by a resume no longer owns the session.
        if entry.attached.as_ref().map(|(id, _)| *id) != Some(self.stream_id) {
            return;
        }
        if release {
            let entry = sessions.by_key.remove(&self.key).expect("present");
            sessions.by_token.remove(&entry.token);
            drop(sessions);
            self.hub.release(&self.key, false);
        } else {
            entry.attached = None;
            entry.detached_at = Some(now);
        }
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.detach(false);
    }
}
