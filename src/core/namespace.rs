//! One namespace: the channels and groups of one application, split over shards by a
//! hash of the name, each behind its own mutex. This file holds the hot path (send,
//! receive, cancel, requeue, group operations); `cleanup.rs` removes state (flush, sweep,
//! release of a client's channels) and `stats.rs` reads it.

use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use foldhash::quality::RandomState;
use parking_lot::Mutex;

use crate::core::{
    CapacityRules, CoreError, Limit, Limits, Waiter,
    channel::{Channel, GroupSent, Handoff, Message, RECEIVE_BATCH_BYTES, Received, purge_expired},
    group::{Fanout, Group, Member},
    limits::deadline,
    names::{validate_channel, validate_group},
    stats::Stats,
};

/// One namespace: the channels and groups of one application.
pub struct Namespace<W> {
    pub(super) name: Box<str>,
    pub(super) shards: Box<[Mutex<Shard<W>>]>,
    pub(super) hasher: RandomState,
    pub(super) limits: Arc<Limits>,
    pub(super) channel_count: AtomicUsize,
    pub(super) group_count: AtomicUsize,
    pub(super) queued: QueuedBytes,
}

/// The payload bytes queued in one namespace and in the whole server, kept beside the
/// shards' statistics so that a send checks both limits without visiting every shard.
pub(crate) struct QueuedBytes {
    pub(super) namespace: AtomicUsize,
    pub(super) server: Arc<AtomicUsize>,
}

impl QueuedBytes {
    /// Counts `size` more bytes unless that takes the namespace or the server past its
    /// limit.
    fn reserve(&self, size: usize, limits: &Limits, namespace: &str) -> Result<(), CoreError> {
        let in_namespace = self.namespace.fetch_add(size, Ordering::Relaxed) + size;
        let in_server = self.server.fetch_add(size, Ordering::Relaxed) + size;
        let refused = if in_namespace > limits.max_queued_bytes_per_namespace {
            Some((
                Limit::QueuedBytesPerNamespace,
                "queued bytes",
                limits.max_queued_bytes_per_namespace,
            ))
        } else if in_server > limits.max_queued_bytes {
            Some((
                Limit::QueuedBytes,
                "queued bytes on the server, over every namespace",
                limits.max_queued_bytes,
            ))
        } else {
            None
        };
        let Some((limit, what, max)) = refused else {
            return Ok(());
        };
        self.release(size);
        Err(CoreError::LimitExceeded {
            namespace: namespace.to_owned(),
            limit,
            what: what.to_owned(),
            max,
        })
    }

    /// Counts `size` more bytes whatever the limits (a message put back).
    pub(super) fn add(&self, size: usize) {
        self.namespace.fetch_add(size, Ordering::Relaxed);
        self.server.fetch_add(size, Ordering::Relaxed);
    }

    /// Counts `size` bytes that left the queues.
    pub(super) fn release(&self, size: usize) {
        if size > 0 {
            self.namespace.fetch_sub(size, Ordering::Relaxed);
            self.server.fetch_sub(size, Ordering::Relaxed);
        }
    }
}

/// The maps of a shard, keyed by client-chosen names: a randomly seeded foldhash, several
/// times faster than SipHash on names this short.
pub(super) type Map<K, V> = HashMap<K, V, RandomState>;

pub(super) struct Shard<W> {
    pub(super) channels: Map<Box<str>, Channel<W>>,
    pub(super) groups: Map<Box<str>, Group>,
    pub(super) stats: Stats,
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
    pub(super) fn channel_mut<'a>(
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
            let expired = purge_expired(channel, stats, ns.queued, now);
            stats.dropped_expired_total += expired;
            if channel.queue.len() >= capacity {
                stats.dropped_channel_full_total += 1;
                return Err(CoreError::ChannelFull {
                    channel: name.to_owned(),
                    capacity,
                });
            }
        }
        ns.queued
            .reserve(message.payload.len(), ns.limits, ns.name)?;
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
                limit: Limit::ChannelsPerNamespace,
                what: "channels".to_owned(),
                max: limit,
            });
        }
        Ok(channels.entry(name.into()).or_default())
    }

    /// Takes one queued message off the front of `channel`, skipping expired ones.
    fn pop(
        channel: &mut Channel<W>,
        stats: &mut Stats,
        queued: &QueuedBytes,
        now: Instant,
    ) -> Option<Message> {
        while let Some(message) = channel.queue.pop_front() {
            queued.release(message.payload.len());
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

/// The parts of a namespace a shard needs while the namespace is borrowed elsewhere.
pub(super) struct NamespaceCounters<'a> {
    name: &'a str,
    limits: &'a Limits,
    channel_count: &'a AtomicUsize,
    queued: &'a QueuedBytes,
}

impl<W: Waiter> Namespace<W> {
    /// The namespace's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// True when the namespace holds no channel (so no queued message and no waiting
    /// receive) and no group.
    pub(crate) fn is_empty(&self) -> bool {
        self.channel_count.load(Ordering::Relaxed) == 0
            && self.group_count.load(Ordering::Relaxed) == 0
    }

    pub(super) fn shard_of(&self, name: &str) -> usize {
        (self.hasher.hash_one(name) as usize) & (self.shards.len() - 1)
    }

    pub(super) fn counters(&self) -> NamespaceCounters<'_> {
        NamespaceCounters {
            name: &self.name,
            limits: &self.limits,
            channel_count: &self.channel_count,
            queued: &self.queued,
        }
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
    pub(crate) fn send_counted(
        &self,
        channel: &str,
        payload: Bytes,
        capacity: usize,
        expiry: Duration,
        now: Instant,
    ) -> Result<(Option<Handoff<W>>, usize), CoreError> {
        validate_channel(channel)?;
        self.limits.check_message(payload.len(), capacity, expiry)?;
        let message = Message::new(payload, now, expiry);
        let counters = self.counters();
        self.shards[self.shard_of(channel)]
            .lock()
            .push(channel, message, capacity, now, &counters)
    }

    /// Takes up to `max_messages` (at least one) unexpired messages from `channel`, or, when
    /// there are none, registers the waiter that `make_waiter` builds. A batch stops before
    /// the message that would take it past [`RECEIVE_BATCH_BYTES`] of payload (the first is
    /// always taken; the check is made on the channel's oldest message, so when that one has
    /// expired the one after it may pass), so a prefetching receive of large messages never
    /// becomes one huge delivery.
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
            let mut bytes = 0;
            while messages.len() < max_messages.max(1) {
                let next = ch.queue.front().map_or(0, |m| m.payload.len());
                if !messages.is_empty() && bytes + next > RECEIVE_BATCH_BYTES {
                    break;
                }
                match Shard::<W>::pop(ch, stats, &self.queued, now) {
                    Some(message) => {
                        bytes += message.payload.len();
                        messages.push(message);
                    }
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
    pub(crate) fn cancel(&self, channel: &str, waiter_id: u64) -> bool {
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
    pub(crate) fn requeue(
        &self,
        channel: &str,
        message: Message,
        now: Instant,
    ) -> Option<Handoff<W>> {
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
        self.queued.add(message.payload.len());
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
        self.limits.check_group_expiry(group_expiry)?;
        let member_shard = self.shard_of(channel);
        let mut guard = self.shards[self.shard_of(group)].lock();
        let shard = &mut *guard;
        if !shard.groups.contains_key(group) {
            let limit = self.limits.max_groups_per_namespace;
            if self.group_count.fetch_add(1, Ordering::Relaxed) >= limit {
                self.group_count.fetch_sub(1, Ordering::Relaxed);
                return Err(CoreError::LimitExceeded {
                    namespace: self.name.to_string(),
                    limit: Limit::GroupsPerNamespace,
                    what: "groups".to_owned(),
                    max: limit,
                });
            }
            shard.groups.insert(group.into(), Group::default());
        }
        let g = shard.groups.get_mut(group).expect("inserted above");
        let expires_at = deadline(now, group_expiry);
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
                limit: Limit::MembersPerGroup,
                what: format!("members in group {group:?}"),
                max: self.limits.max_members_per_group,
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
    pub(crate) fn group_discard(&self, group: &str, channel: &str) -> Result<bool, CoreError> {
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
        self.group_send_except(group, payload, capacities, expiry, now, |_| false)
    }

    /// [`Namespace::group_send`], but members for which `elsewhere` is true get nothing
    /// here: they are listed in [`GroupSent::elsewhere`] for the caller to deliver (a
    /// cluster keeps normal channels outside the node).
    pub fn group_send_except(
        &self,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
        now: Instant,
        elsewhere: impl Fn(&str) -> bool,
    ) -> Result<GroupSent<W>, CoreError> {
        validate_group(group)?;
        self.limits
            .check_message(payload.len(), capacities.max_capacity(), expiry)?;
        let Some(fanout) = self.fanout(group, now) else {
            return Ok(GroupSent::default());
        };
        let mut message = Message::new(payload, now, expiry);
        message.compact();
        // Every copy is made up front: cloning touches one shared counter, and doing it in
        // the loop below would serialise that loop's cache misses on it.
        let mut copies = vec![message; fanout.targets.len()].into_iter();
        let counters = self.counters();
        let mut sent = GroupSent::default();
        for run in fanout.targets.chunk_by(|a, b| a.0 == b.0) {
            let mut shard = self.shards[run[0].0].lock();
            for ((_, channel), copy) in run.iter().zip(copies.by_ref()) {
                if elsewhere(channel) {
                    sent.elsewhere.push(Arc::clone(channel));
                    continue;
                }
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
}
