//! The channel-layer engine: pure, synchronous state with no I/O and no runtime.
//!
//! [`Layer`] holds every namespace; a [`Namespace`] holds channels (bounded FIFO queues of
//! [`Message`]s plus the receives waiting on them) and groups (members with expiry), split
//! over shards by a hash of the name, each behind its own `parking_lot` mutex. No operation
//! holds two shard locks at once, and none holds a lock while it wakes anyone: operations
//! return the waiters they fulfilled ([`Handoff`]) and the caller delivers to them after the
//! lock is released.
//!
//! `group_send` walks a per-group fan-out list (members sorted by shard, rebuilt only after
//! the membership changed or a member expired), takes each shard lock once per run of
//! members, and shares one payload among every copy.
//!
//! Time is a parameter (`now`) of every operation that needs it, so every rule is tested
//! here without a runtime and without sleeping.
//!
//! A waiter is whatever the caller wants to be woken with: the engine only stores it and
//! gives it back, and identifies it by [`Waiter::id`] to cancel it.
//!
//! Rules, from the Django Channels channel-layer specification:
//! - a channel is a FIFO queue; a message goes to exactly one receive;
//! - capacity is per channel and counted per *full* channel name (the specification shares
//!   it among the channels of one process; Channels' in-memory layer and this server do not,
//!   which lets one slow consumer of a process never starve the others);
//! - a message expires `expiry` after it was sent and is never delivered after that;
//! - a group membership expires `group_expiry` after the last `group_add` of it;
//! - `group_send` never fails because a member is full: it drops that copy and counts it;
//! - `flush` clears one namespace; namespaces never see each other's names.

pub mod capacity;
pub mod error;
pub mod names;

use std::{
    collections::{HashMap, VecDeque},
    hash::BuildHasher,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use foldhash::quality::RandomState;
use parking_lot::{Mutex, RwLock};

use self::names::{client_prefix_of, validate_channel, validate_group, validate_namespace};
pub use self::{
    capacity::{CapacityRules, DEFAULT_CAPACITY, Pattern},
    error::CoreError,
};

/// How long a message waits unread before it expires, when no expiry is given.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(60);

/// How long a group membership lasts after its last `group_add`, when not given.
pub const DEFAULT_GROUP_EXPIRY: Duration = Duration::from_secs(86_400);

/// Something waiting for a message: the engine stores it and hands it back.
pub trait Waiter {
    /// An identifier unique among all waiters, used to cancel this one.
    fn id(&self) -> u64;
}

/// Payloads up to this size that stay queued are copied into a buffer of their own by the
/// sweeper (see [`Namespace::sweep_shard`]), and a group message is copied once before its
/// fan-out.
///
/// A payload decoded from a request is a slice of the request's receive buffer, which
/// holds other messages too: a small queued message could otherwise keep a large buffer
/// alive for as long as it waits. Messages delivered within a sweep interval, the common
/// case, are never copied.
pub const COMPACT_BELOW: usize = 64 * 1024;

/// One message in a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The encoded message, shared (never copied) among the members of a group.
    pub payload: Bytes,
    /// When the message was sent.
    pub sent_at: Instant,
    /// When the message expires; it is never delivered at or after this instant.
    pub expires_at: Instant,
    /// True when the payload is known to own exactly its bytes.
    compact: bool,
}

impl Message {
    /// A message sent at `now` that expires after `expiry`.
    pub fn new(payload: Bytes, now: Instant, expiry: Duration) -> Self {
        Self {
            payload,
            sent_at: now,
            expires_at: now + expiry,
            compact: false,
        }
    }

    /// Copies a small payload into a buffer of its own (see [`COMPACT_BELOW`]).
    fn compact(&mut self) {
        if !self.compact {
            if self.payload.len() < COMPACT_BELOW {
                self.payload = Bytes::copy_from_slice(&self.payload);
            }
            self.compact = true;
        }
    }

    fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }
}

/// A message given to a waiter that was registered before it arrived. The caller must
/// deliver it, or give it back with [`Namespace::requeue`] if the waiter is gone.
#[derive(Debug)]
pub struct Handoff<W> {
    /// The waiter that gets the message.
    pub waiter: W,
    /// The message.
    pub message: Message,
}

/// What [`Namespace::receive`] found.
#[derive(Debug)]
pub enum Received {
    /// Queued messages, oldest first (at least one).
    Messages(Vec<Message>),
    /// Nothing was queued: the waiter is registered and will get the next message.
    Waiting,
}

/// What [`Namespace::group_send`] did.
#[derive(Debug)]
pub struct GroupSent<W> {
    /// Members that got the message (queued or handed off).
    pub delivered: usize,
    /// Members whose channel was full, so their copy was dropped.
    pub dropped: usize,
    /// Waiters that get the message now.
    pub handoffs: Vec<Handoff<W>>,
}

/// The limits every namespace enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// The most channels (with queued messages or waiting receives) in one namespace.
    pub max_channels_per_namespace: usize,
    /// The most groups in one namespace.
    pub max_groups_per_namespace: usize,
    /// The most members in one group.
    pub max_members_per_group: usize,
    /// The most namespaces.
    pub max_namespaces: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            max_channels_per_namespace: 1_000_000,
            max_groups_per_namespace: 1_000_000,
            max_members_per_group: 100_000,
            max_namespaces: 1_000,
        }
    }
}

/// Counters and gauges of the engine, summed over every namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Channels that exist (with queued messages or waiting receives).
    pub channels: u64,
    /// Groups that exist.
    pub groups: u64,
    /// Group memberships.
    pub memberships: u64,
    /// Queued messages (some may have expired and wait for the sweeper).
    pub queued_messages: u64,
    /// Their total size in bytes.
    pub queued_bytes: u64,
    /// Receives waiting for a message.
    pub waiting_receives: u64,
    /// Messages accepted by send and group_send (one per member).
    pub sent_total: u64,
    /// Messages dropped because their channel was full.
    pub dropped_channel_full_total: u64,
    /// Messages that expired unread.
    pub dropped_expired_total: u64,
    /// Messages dropped with the channels of a session that ended.
    pub dropped_session_gone_total: u64,
    /// Messages dropped by flush.
    pub dropped_flushed_total: u64,
    /// Memberships that expired.
    pub memberships_expired_total: u64,
    /// Memberships removed because the session owning their channel ended.
    pub memberships_released_total: u64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.channels += other.channels;
        self.groups += other.groups;
        self.memberships += other.memberships;
        self.queued_messages += other.queued_messages;
        self.queued_bytes += other.queued_bytes;
        self.waiting_receives += other.waiting_receives;
        self.sent_total += other.sent_total;
        self.dropped_channel_full_total += other.dropped_channel_full_total;
        self.dropped_expired_total += other.dropped_expired_total;
        self.dropped_session_gone_total += other.dropped_session_gone_total;
        self.dropped_flushed_total += other.dropped_flushed_total;
        self.memberships_expired_total += other.memberships_expired_total;
        self.memberships_released_total += other.memberships_released_total;
    }
}

/// What one sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Messages that had expired.
    pub expired_messages: u64,
    /// Memberships that had expired.
    pub expired_memberships: u64,
    /// Idle channels (empty, with no waiters) whose memory was freed.
    pub removed_channels: u64,
    /// Empty groups whose memory was freed.
    pub removed_groups: u64,
}

impl SweepReport {
    /// Adds another report's counts to this one.
    pub fn add(&mut self, other: &SweepReport) {
        self.expired_messages += other.expired_messages;
        self.expired_memberships += other.expired_memberships;
        self.removed_channels += other.removed_channels;
        self.removed_groups += other.removed_groups;
    }
}

/// What a flush removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Queued messages dropped.
    pub dropped_messages: u64,
    /// Groups removed.
    pub removed_groups: u64,
}

/// What releasing a client prefix removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseReport {
    /// Specific channels removed.
    pub channels: u64,
    /// Their queued messages, dropped.
    pub dropped_messages: u64,
    /// Memberships of those channels, removed.
    pub memberships: u64,
}

/// The state of one channel, for introspection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Unexpired queued messages.
    pub queued_messages: usize,
    /// Their total size in bytes.
    pub queued_bytes: usize,
    /// Receives waiting on the channel.
    pub waiting_receives: usize,
    /// How long the oldest unexpired message has waited.
    pub oldest_message_age: Duration,
}

/// One page of a group's members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersPage {
    /// Members in name order, with the time left before each membership expires.
    pub members: Vec<(String, Duration)>,
    /// How many unexpired members the group has.
    pub total: usize,
    /// True when members after this page exist.
    pub more: bool,
}

/// Every namespace of the server.
pub struct Layer<W> {
    namespaces: RwLock<HashMap<Box<str>, Arc<Namespace<W>>>>,
    limits: Arc<Limits>,
    shard_count: usize,
    hasher: RandomState,
}

impl<W: Waiter> Layer<W> {
    /// An empty layer with `shard_count` shards per namespace (rounded up to a power of two).
    pub fn new(limits: Limits, shard_count: usize) -> Self {
        Self {
            namespaces: RwLock::new(HashMap::new()),
            limits: Arc::new(limits),
            shard_count: shard_count.max(1).next_power_of_two(),
            hasher: RandomState::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The namespace called `name`, created on first use.
    pub fn namespace(&self, name: &str) -> Result<Arc<Namespace<W>>, CoreError> {
        if let Some(ns) = self.namespaces.read().get(name) {
            return Ok(Arc::clone(ns));
        }
        validate_namespace(name)?;
        let mut namespaces = self.namespaces.write();
        if let Some(ns) = namespaces.get(name) {
            return Ok(Arc::clone(ns));
        }
        if namespaces.len() >= self.limits.max_namespaces {
            return Err(CoreError::LimitExceeded {
                namespace: name.to_owned(),
                what: "namespaces on the server".to_owned(),
                limit: self.limits.max_namespaces,
            });
        }
        let ns = Arc::new(Namespace {
            name: name.into(),
            shards: (0..self.shard_count)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            hasher: self.hasher.clone(),
            limits: Arc::clone(&self.limits),
            channel_count: AtomicUsize::new(0),
            group_count: AtomicUsize::new(0),
        });
        namespaces.insert(name.into(), Arc::clone(&ns));
        Ok(ns)
    }

    /// Every namespace that exists now.
    pub fn namespaces(&self) -> Vec<Arc<Namespace<W>>> {
        self.namespaces.read().values().cloned().collect()
    }

    /// Removes expired messages and memberships everywhere and frees idle channels and
    /// empty groups.
    pub fn sweep(&self, now: Instant) -> SweepReport {
        let mut report = SweepReport::default();
        for ns in self.namespaces() {
            report.add(&ns.sweep(now));
        }
        report
    }

    /// Counters and gauges over every namespace.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        for ns in self.namespaces() {
            stats.add(&ns.stats());
        }
        stats
    }
}

/// One namespace: the channels and groups of one application.
pub struct Namespace<W> {
    name: Box<str>,
    shards: Box<[Mutex<Shard<W>>]>,
    hasher: RandomState,
    limits: Arc<Limits>,
    channel_count: AtomicUsize,
    group_count: AtomicUsize,
}

struct Channel<W> {
    queue: VecDeque<Message>,
    waiters: VecDeque<W>,
    bytes: usize,
    /// True when the queue may hold a message not yet compacted, so the sweeper does not
    /// walk queues that hold only compact ones.
    loose: bool,
}

impl<W> Default for Channel<W> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            waiters: VecDeque::new(),
            bytes: 0,
            loose: false,
        }
    }
}

/// The maps of a shard, keyed by client-chosen names: a randomly seeded foldhash, several
/// times faster than SipHash on names this short.
type Map<K, V> = HashMap<K, V, RandomState>;

struct Member {
    expires_at: Instant,
    shard: usize,
}

/// A group's members, with the fan-out list that group_send walks.
#[derive(Default)]
struct Group {
    members: Map<Arc<str>, Member>,
    /// The members sorted by shard, built by the first group_send after a change of
    /// membership and shared by the sends that follow, so that a send to a stable group
    /// neither collects, sorts nor reference-counts its members.
    fanout: Option<Arc<Fanout>>,
}

/// A snapshot of a group's members for group_send.
struct Fanout {
    /// (shard, channel) for every member, sorted by shard.
    targets: Box<[(usize, Arc<str>)]>,
    /// The earliest membership expiry in the snapshot: from then on it must be rebuilt.
    /// A refresh by group_add only moves expiries later, so it does not invalidate it.
    valid_until: Instant,
}

impl Group {
    /// Adds a member; the fan-out list is rebuilt on the next send.
    fn insert(&mut self, channel: &str, member: Member) {
        self.members.insert(channel.into(), member);
        self.fanout = None;
    }

    /// Removes a member. Returns true when it was one.
    fn remove(&mut self, channel: &str) -> bool {
        let removed = self.members.remove(channel).is_some();
        if removed {
            self.fanout = None;
        }
        removed
    }

    /// Keeps the members `keep` accepts. Returns how many were removed.
    fn retain(&mut self, mut keep: impl FnMut(&str, &Member) -> bool) -> u64 {
        let before = self.members.len();
        self.members.retain(|name, m| keep(name, m));
        let removed = (before - self.members.len()) as u64;
        if removed > 0 {
            self.fanout = None;
        }
        removed
    }

    /// Removes the members expired at `now`. Returns how many.
    fn prune(&mut self, now: Instant) -> u64 {
        match &self.fanout {
            Some(f) if f.valid_until > now => 0,
            _ => self.retain(|_, m| m.expires_at > now),
        }
    }

    /// The fan-out list; [`Group::prune`] comes first, so that it holds no expired member.
    fn fanout(&mut self) -> Arc<Fanout> {
        if let Some(f) = &self.fanout {
            return Arc::clone(f);
        }
        let mut targets: Vec<(usize, Arc<str>)> = self
            .members
            .iter()
            .map(|(name, m)| (m.shard, Arc::clone(name)))
            .collect();
        targets.sort_unstable_by_key(|(shard, _)| *shard);
        let valid_until = self.members.values().map(|m| m.expires_at).min();
        let fanout = Arc::new(Fanout {
            targets: targets.into(),
            // An empty group is removed, so this default is never relied on.
            valid_until: valid_until.unwrap_or_else(Instant::now),
        });
        self.fanout = Some(Arc::clone(&fanout));
        fanout
    }
}

struct Shard<W> {
    channels: Map<Box<str>, Channel<W>>,
    groups: Map<Box<str>, Group>,
    stats: Stats,
}

impl<W> Default for Shard<W> {
    fn default() -> Self {
        Self {
            channels: Map::default(),
            groups: Map::default(),
            stats: Stats::default(),
        }
    }
}

impl<W: Waiter> Shard<W> {
    /// The channel called `name`, created if missing and the namespace's limit allows.
    fn channel_mut<'a>(
        channels: &'a mut Map<Box<str>, Channel<W>>,
        name: &str,
        ns: &NamespaceCounters<'_>,
    ) -> Result<&'a mut Channel<W>, CoreError> {
        if !channels.contains_key(name) {
            return Self::create_channel(channels, name, ns);
        }
        Ok(channels.get_mut(name).expect("checked above"))
    }

    /// Hands `message` to the first waiter of `name`, or queues it if the channel holds
    /// fewer than `capacity` unexpired messages. Also returns the channel's queue length
    /// afterwards.
    fn push(
        &mut self,
        name: &str,
        message: Message,
        capacity: usize,
        now: Instant,
        ns: &NamespaceCounters<'_>,
    ) -> Result<(Option<Handoff<W>>, usize), CoreError> {
        let stats = &mut self.stats;
        let channel = match self.channels.get_mut(name) {
            Some(channel) => channel,
            None => Self::create_channel(&mut self.channels, name, ns)?,
        };
        if let Some(waiter) = channel.waiters.pop_front() {
            stats.waiting_receives -= 1;
            stats.sent_total += 1;
            return Ok((Some(Handoff { waiter, message }), 0));
        }
        if channel.queue.len() >= capacity {
            let expired = purge_expired(channel, stats, now);
            stats.dropped_expired_total += expired;
            if channel.queue.len() >= capacity {
                stats.dropped_channel_full_total += 1;
                return Err(CoreError::ChannelFull {
                    channel: name.to_owned(),
                    capacity,
                });
            }
        }
        channel.bytes += message.payload.len();
        stats.queued_bytes += message.payload.len() as u64;
        stats.queued_messages += 1;
        stats.sent_total += 1;
        channel.loose |= !message.compact;
        channel.queue.push_back(message);
        Ok((None, channel.queue.len()))
    }

    fn create_channel<'a>(
        channels: &'a mut Map<Box<str>, Channel<W>>,
        name: &str,
        ns: &NamespaceCounters<'_>,
    ) -> Result<&'a mut Channel<W>, CoreError> {
        let limit = ns.limits.max_channels_per_namespace;
        if ns.channel_count.fetch_add(1, Ordering::Relaxed) >= limit {
            ns.channel_count.fetch_sub(1, Ordering::Relaxed);
            return Err(CoreError::LimitExceeded {
                namespace: ns.name.to_owned(),
                what: "channels".to_owned(),
                limit,
            });
        }
        Ok(channels.entry(name.into()).or_default())
    }

    /// Takes one queued message off the front of `channel`, skipping expired ones.
    fn pop(channel: &mut Channel<W>, stats: &mut Stats, now: Instant) -> Option<Message> {
        while let Some(message) = channel.queue.pop_front() {
            channel.bytes -= message.payload.len();
            stats.queued_bytes -= message.payload.len() as u64;
            stats.queued_messages -= 1;
            if message.is_expired(now) {
                stats.dropped_expired_total += 1;
                continue;
            }
            return Some(message);
        }
        None
    }
}

/// Removes every expired message of `channel`; returns how many.
fn purge_expired<W>(channel: &mut Channel<W>, stats: &mut Stats, now: Instant) -> u64 {
    let before = channel.queue.len();
    let mut freed = 0;
    channel.queue.retain(|m| {
        let keep = !m.is_expired(now);
        if !keep {
            freed += m.payload.len();
        }
        keep
    });
    let removed = (before - channel.queue.len()) as u64;
    channel.bytes -= freed;
    stats.queued_bytes -= freed as u64;
    stats.queued_messages -= removed;
    removed
}

/// The parts of a namespace a shard needs while the namespace is borrowed elsewhere.
struct NamespaceCounters<'a> {
    name: &'a str,
    limits: &'a Limits,
    channel_count: &'a AtomicUsize,
}

impl<W: Waiter> Namespace<W> {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn shard_of(&self, name: &str) -> usize {
        (self.hasher.hash_one(name) as usize) & (self.shards.len() - 1)
    }

    fn counters(&self) -> NamespaceCounters<'_> {
        NamespaceCounters {
            name: &self.name,
            limits: &self.limits,
            channel_count: &self.channel_count,
        }
    }

    fn check_size(&self, payload: &Bytes) -> Result<(), CoreError> {
        if payload.len() > self.limits.max_message_bytes {
            return Err(CoreError::MessageTooLarge {
                size: payload.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Sends a message to `channel`: hands it to the oldest waiting receive, or queues it.
    ///
    /// Fails with [`CoreError::ChannelFull`] when the channel already holds `capacity`
    /// unexpired messages.
    pub fn send(
        &self,
        channel: &str,
        payload: Bytes,
        capacity: usize,
        expiry: Duration,
        now: Instant,
    ) -> Result<Option<Handoff<W>>, CoreError> {
        self.send_counted(channel, payload, capacity, expiry, now)
            .map(|(handoff, _)| handoff)
    }

    /// [`send`](Self::send), also returning how many messages the channel holds once the
    /// message is queued (0 when it went to a waiting receive): a sender that knows how full
    /// the channel is can tell whether its next sends are far from its capacity.
    pub fn send_counted(
        &self,
        channel: &str,
        payload: Bytes,
        capacity: usize,
        expiry: Duration,
        now: Instant,
    ) -> Result<(Option<Handoff<W>>, usize), CoreError> {
        validate_channel(channel)?;
        self.check_size(&payload)?;
        let message = Message::new(payload, now, expiry);
        let counters = self.counters();
        self.shards[self.shard_of(channel)]
            .lock()
            .push(channel, message, capacity, now, &counters)
    }

    /// Takes up to `max_messages` (at least one) unexpired messages from `channel`, or, when
    /// there are none, registers the waiter that `make_waiter` builds.
    pub fn receive(
        &self,
        channel: &str,
        max_messages: usize,
        now: Instant,
        make_waiter: impl FnOnce() -> W,
    ) -> Result<Received, CoreError> {
        validate_channel(channel)?;
        let counters = self.counters();
        let mut guard = self.shards[self.shard_of(channel)].lock();
        let shard = &mut *guard;
        let stats = &mut shard.stats;
        if let Some(ch) = shard.channels.get_mut(channel) {
            let mut messages = Vec::new();
            while messages.len() < max_messages.max(1) {
                match Shard::<W>::pop(ch, stats, now) {
                    Some(message) => messages.push(message),
                    None => break,
                }
            }
            if !messages.is_empty() {
                return Ok(Received::Messages(messages));
            }
        }
        let ch = Shard::channel_mut(&mut shard.channels, channel, &counters)?;
        ch.waiters.push_back(make_waiter());
        shard.stats.waiting_receives += 1;
        Ok(Received::Waiting)
    }

    /// Withdraws the waiter `waiter_id` from `channel`. Returns true when it was waiting.
    pub fn cancel(&self, channel: &str, waiter_id: u64) -> bool {
        let mut guard = self.shards[self.shard_of(channel)].lock();
        let shard = &mut *guard;
        let Some(ch) = shard.channels.get_mut(channel) else {
            return false;
        };
        let Some(pos) = ch.waiters.iter().position(|w| w.id() == waiter_id) else {
            return false;
        };
        ch.waiters.remove(pos);
        shard.stats.waiting_receives -= 1;
        true
    }

    /// Gives back a message whose waiter was gone: hands it to the next waiter, or puts it
    /// back at the front of the channel (capacity does not apply: it was within capacity).
    pub fn requeue(&self, channel: &str, message: Message, now: Instant) -> Option<Handoff<W>> {
        let counters = self.counters();
        let mut guard = self.shards[self.shard_of(channel)].lock();
        let shard = &mut *guard;
        if message.is_expired(now) {
            shard.stats.dropped_expired_total += 1;
            return None;
        }
        let Ok(ch) = Shard::channel_mut(&mut shard.channels, channel, &counters) else {
            shard.stats.dropped_channel_full_total += 1;
            return None;
        };
        if let Some(waiter) = ch.waiters.pop_front() {
            shard.stats.waiting_receives -= 1;
            return Some(Handoff { waiter, message });
        }
        ch.bytes += message.payload.len();
        shard.stats.queued_bytes += message.payload.len() as u64;
        shard.stats.queued_messages += 1;
        ch.loose |= !message.compact;
        ch.queue.push_front(message);
        None
    }

    /// Adds `channel` to `group`, or refreshes its membership. Returns true when it was not
    /// a member.
    pub fn group_add(
        &self,
        group: &str,
        channel: &str,
        group_expiry: Duration,
        now: Instant,
    ) -> Result<bool, CoreError> {
        validate_group(group)?;
        validate_channel(channel)?;
        let member_shard = self.shard_of(channel);
        let mut guard = self.shards[self.shard_of(group)].lock();
        let shard = &mut *guard;
        if !shard.groups.contains_key(group) {
            let limit = self.limits.max_groups_per_namespace;
            if self.group_count.fetch_add(1, Ordering::Relaxed) >= limit {
                self.group_count.fetch_sub(1, Ordering::Relaxed);
                return Err(CoreError::LimitExceeded {
                    namespace: self.name.to_string(),
                    what: "groups".to_owned(),
                    limit,
                });
            }
            shard.groups.insert(group.into(), Group::default());
        }
        let g = shard.groups.get_mut(group).expect("inserted above");
        let expires_at = now + group_expiry;
        if let Some(member) = g.members.get_mut(channel) {
            member.expires_at = expires_at;
            return Ok(false);
        }
        if g.members.len() >= self.limits.max_members_per_group {
            let empty = g.members.is_empty();
            if empty {
                shard.groups.remove(group);
                self.group_count.fetch_sub(1, Ordering::Relaxed);
            }
            return Err(CoreError::LimitExceeded {
                namespace: self.name.to_string(),
                what: format!("members in group {group:?}"),
                limit: self.limits.max_members_per_group,
            });
        }
        g.insert(
            channel,
            Member {
                expires_at,
                shard: member_shard,
            },
        );
        shard.stats.memberships += 1;
        Ok(true)
    }

    /// Removes `channel` from `group`. Returns true when it was a member.
    pub fn group_discard(&self, group: &str, channel: &str) -> Result<bool, CoreError> {
        validate_group(group)?;
        validate_channel(channel)?;
        let mut guard = self.shards[self.shard_of(group)].lock();
        let shard = &mut *guard;
        let Some(g) = shard.groups.get_mut(group) else {
            return Ok(false);
        };
        let removed = g.remove(channel);
        if removed {
            shard.stats.memberships -= 1;
        }
        if g.members.is_empty() {
            shard.groups.remove(group);
            self.group_count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(removed)
    }

    /// Sends one message to every unexpired member of `group`. The payload is shared by
    /// every copy. A full member's copy is dropped and counted, never an error.
    pub fn group_send(
        &self,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
        now: Instant,
    ) -> Result<GroupSent<W>, CoreError> {
        validate_group(group)?;
        self.check_size(&payload)?;
        let Some(fanout) = self.fanout(group, now) else {
            return Ok(GroupSent {
                delivered: 0,
                dropped: 0,
                handoffs: Vec::new(),
            });
        };
        let mut message = Message::new(payload, now, expiry);
        message.compact();
        // Every copy is made up front: cloning touches one shared counter, and doing it in
        // the loop below would serialise that loop's cache misses on it.
        let mut copies = vec![message; fanout.targets.len()].into_iter();
        let counters = self.counters();
        let mut sent = GroupSent {
            delivered: 0,
            dropped: 0,
            handoffs: Vec::new(),
        };
        for run in fanout.targets.chunk_by(|a, b| a.0 == b.0) {
            let mut shard = self.shards[run[0].0].lock();
            for ((_, channel), copy) in run.iter().zip(copies.by_ref()) {
                let capacity = capacities.capacity_of(channel);
                match shard.push(channel, copy, capacity, now, &counters) {
                    Ok((Some(handoff), _)) => {
                        sent.delivered += 1;
                        sent.handoffs.push(handoff);
                    }
                    Ok((None, _)) => sent.delivered += 1,
                    Err(_) => sent.dropped += 1,
                }
            }
        }
        Ok(sent)
    }

    /// The fan-out list of `group` at `now`, pruning expired members; None for a group
    /// with no members.
    fn fanout(&self, group: &str, now: Instant) -> Option<Arc<Fanout>> {
        let mut guard = self.shards[self.shard_of(group)].lock();
        let shard = &mut *guard;
        let g = shard.groups.get_mut(group)?;
        let expired = g.prune(now);
        shard.stats.memberships -= expired;
        shard.stats.memberships_expired_total += expired;
        if g.members.is_empty() {
            shard.groups.remove(group);
            self.group_count.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(g.fanout())
    }

    /// Removes every queued message and every group of the namespace. Waiting receives
    /// stay registered, so they get messages sent after the flush.
    pub fn flush(&self) -> FlushReport {
        let mut report = FlushReport::default();
        for shard in self.shards.iter() {
            let mut guard = shard.lock();
            let shard = &mut *guard;
            let mut removed_channels = 0;
            shard.channels.retain(|_, ch| {
                report.dropped_messages += ch.queue.len() as u64;
                ch.queue.clear();
                ch.bytes = 0;
                let keep = !ch.waiters.is_empty();
                removed_channels += usize::from(!keep);
                keep
            });
            self.channel_count
                .fetch_sub(removed_channels, Ordering::Relaxed);
            report.removed_groups += shard.groups.len() as u64;
            self.group_count
                .fetch_sub(shard.groups.len(), Ordering::Relaxed);
            shard.groups.clear();
            shard.stats.dropped_flushed_total += shard.stats.queued_messages;
            shard.stats.queued_messages = 0;
            shard.stats.queued_bytes = 0;
            shard.stats.memberships = 0;
        }
        report
    }

    /// Removes expired messages and memberships, and frees idle channels and empty groups.
    pub fn sweep(&self, now: Instant) -> SweepReport {
        let mut report = SweepReport::default();
        for index in 0..self.shard_count() {
            report.add(&self.sweep_shard(index, now));
        }
        report
    }

    /// How many shards the namespace has; [`Namespace::sweep_shard`] takes `0..shard_count`.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Sweeps one shard, so that a caller can sweep a large namespace in small steps.
    pub fn sweep_shard(&self, index: usize, now: Instant) -> SweepReport {
        let mut report = SweepReport::default();
        let mut guard = self.shards[index].lock();
        let shard = &mut *guard;
        let stats = &mut shard.stats;
        let mut removed_channels = 0;
        shard.channels.retain(|_, ch| {
            let expired = purge_expired(ch, stats, now);
            stats.dropped_expired_total += expired;
            report.expired_messages += expired;
            let keep = !ch.queue.is_empty() || !ch.waiters.is_empty();
            if !keep {
                removed_channels += 1;
            } else if ch.queue.capacity() > 4 * ch.queue.len().max(8) {
                ch.queue.shrink_to_fit();
            }
            if std::mem::take(&mut ch.loose) {
                ch.queue.iter_mut().for_each(Message::compact);
            }
            keep
        });
        self.channel_count
            .fetch_sub(removed_channels, Ordering::Relaxed);
        report.removed_channels += removed_channels as u64;
        let mut removed_groups = 0;
        shard.groups.retain(|_, g| {
            let expired = g.prune(now);
            stats.memberships -= expired;
            stats.memberships_expired_total += expired;
            report.expired_memberships += expired;
            let keep = !g.members.is_empty();
            removed_groups += usize::from(!keep);
            keep
        });
        self.group_count
            .fetch_sub(removed_groups, Ordering::Relaxed);
        report.removed_groups += removed_groups as u64;
        report
    }

    /// Removes the process-specific channels owned by `client_prefix` (see
    /// [`names::client_prefix_of`]) with their queued messages, and their memberships.
    /// Channels on which someone still waits are emptied but kept.
    pub fn release_client(&self, client_prefix: &str) -> ReleaseReport {
        let mut report = ReleaseReport::default();
        let owned = |name: &str| client_prefix_of(name) == Some(client_prefix);
        for shard in self.shards.iter() {
            let mut guard = shard.lock();
            let shard = &mut *guard;
            let stats = &mut shard.stats;
            let mut removed_channels = 0;
            shard.channels.retain(|name, ch| {
                if !owned(name) {
                    return true;
                }
                let dropped = ch.queue.len() as u64;
                report.dropped_messages += dropped;
                stats.dropped_session_gone_total += dropped;
                stats.queued_messages -= dropped;
                stats.queued_bytes -= ch.bytes as u64;
                ch.queue.clear();
                ch.bytes = 0;
                let keep = !ch.waiters.is_empty();
                if !keep {
                    removed_channels += 1;
                    report.channels += 1;
                }
                keep
            });
            self.channel_count
                .fetch_sub(removed_channels, Ordering::Relaxed);
            let mut removed_groups = 0;
            shard.groups.retain(|_, g| {
                let released = g.retain(|name, _| !owned(name));
                stats.memberships -= released;
                stats.memberships_released_total += released;
                report.memberships += released;
                let keep = !g.members.is_empty();
                removed_groups += usize::from(!keep);
                keep
            });
            self.group_count
                .fetch_sub(removed_groups, Ordering::Relaxed);
        }
        report
    }

    /// The state of `channel`.
    pub fn channel_info(&self, channel: &str, now: Instant) -> Result<ChannelInfo, CoreError> {
        validate_channel(channel)?;
        let shard = self.shards[self.shard_of(channel)].lock();
        let Some(ch) = shard.channels.get(channel) else {
            return Ok(ChannelInfo::default());
        };
        let mut info = ChannelInfo {
            waiting_receives: ch.waiters.len(),
            ..ChannelInfo::default()
        };
        for m in ch.queue.iter().filter(|m| !m.is_expired(now)) {
            info.queued_messages += 1;
            info.queued_bytes += m.payload.len();
            info.oldest_message_age = info
                .oldest_message_age
                .max(now.saturating_duration_since(m.sent_at));
        }
        Ok(info)
    }

    /// How many unexpired members `group` has.
    pub fn group_size(&self, group: &str, now: Instant) -> Result<usize, CoreError> {
        validate_group(group)?;
        let shard = self.shards[self.shard_of(group)].lock();
        Ok(shard.groups.get(group).map_or(0, |g| {
            g.members.values().filter(|m| m.expires_at > now).count()
        }))
    }

    /// Up to `limit` unexpired members of `group` whose names sort after `after`.
    pub fn group_members(
        &self,
        group: &str,
        after: &str,
        limit: usize,
        now: Instant,
    ) -> Result<MembersPage, CoreError> {
        validate_group(group)?;
        let shard = self.shards[self.shard_of(group)].lock();
        let Some(g) = shard.groups.get(group) else {
            return Ok(MembersPage::default());
        };
        let mut live: Vec<(&str, Instant)> = g
            .members
            .iter()
            .filter(|(_, m)| m.expires_at > now)
            .map(|(name, m)| (&**name, m.expires_at))
            .collect();
        let total = live.len();
        live.retain(|(name, _)| *name > after);
        live.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let more = live.len() > limit;
        live.truncate(limit);
        Ok(MembersPage {
            members: live
                .into_iter()
                .map(|(name, expires_at)| (name.to_owned(), expires_at - now))
                .collect(),
            total,
            more,
        })
    }

    /// Counters and gauges of this namespace.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            stats.add(&shard.stats);
            stats.channels += shard.channels.len() as u64;
            stats.groups += shard.groups.len() as u64;
        }
        stats
    }
}

#[cfg(test)]
mod tests;
