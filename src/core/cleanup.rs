//! What removes state from a namespace: flush, the sweep of expired messages and
//! memberships, and the release of the channels a client prefix owned.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use crate::core::{
    Waiter,
    channel::{Message, purge_expired},
    names::client_prefix_of,
    namespace::Namespace,
};

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
    pub(crate) fn add(&mut self, other: &SweepReport) {
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

/// What this node held for a client prefix that another node now holds: the queued
/// messages of its channels and their memberships, taken out to be handed to that node.
#[derive(Debug, Default)]
pub struct Taken {
    /// Unexpired messages by channel, oldest first.
    pub messages: Vec<(String, Vec<Message>)>,
    /// Unexpired memberships: (group, channel, time left).
    pub memberships: Vec<(String, String, Duration)>,
}

impl<W: Waiter> Namespace<W> {
    /// Removes every queued message and every group of the namespace. Waiting receives
    /// stay registered, so they get messages sent after the flush.
    pub(crate) fn flush(&self) -> FlushReport {
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
            self.queued.release(shard.stats.queued_bytes as usize);
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
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Sweeps one shard, so that a caller can sweep a large namespace in small steps.
    pub(crate) fn sweep_shard(&self, index: usize, now: Instant) -> SweepReport {
        let mut report = SweepReport::default();
        let mut guard = self.shards[index].lock();
        let shard = &mut *guard;
        let stats = &mut shard.stats;
        let mut removed_channels = 0;
        shard.channels.retain(|_, ch| {
            let expired = purge_expired(ch, stats, &self.queued, now);
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
    /// [`client_prefix_of`](crate::core::names::client_prefix_of)) with their queued messages, and their memberships.
    /// Channels on which someone still waits are emptied but kept.
    pub(crate) fn release_client(&self, client_prefix: &str) -> ReleaseReport {
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
                self.queued.release(ch.bytes);
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

    /// Takes out the channels of `client_prefix` that have no waiting receive, with their
    /// unexpired messages, and the memberships of those channels: what a node hands to the
    /// node that came to hold the prefix (a send or group_add that arrived before its
    /// session opened). Expired messages are dropped and counted as expired.
    pub(crate) fn take_client(&self, client_prefix: &str, now: Instant) -> Taken {
        let mut taken = Taken::default();
        let owned = |name: &str| client_prefix_of(name) == Some(client_prefix);
        for shard in self.shards.iter() {
            let mut guard = shard.lock();
            let shard = &mut *guard;
            let stats = &mut shard.stats;
            let mut removed_channels = 0;
            shard.channels.retain(|name, ch| {
                if !owned(name) || !ch.waiters.is_empty() {
                    return true;
                }
                let queued = ch.queue.len() as u64;
                stats.queued_messages -= queued;
                stats.queued_bytes -= ch.bytes as u64;
                self.queued.release(ch.bytes);
                ch.bytes = 0;
                let live: Vec<Message> =
                    ch.queue.drain(..).filter(|m| m.expires_at > now).collect();
                stats.dropped_expired_total += queued - live.len() as u64;
                if !live.is_empty() {
                    taken.messages.push((name.to_string(), live));
                }
                removed_channels += 1;
                false
            });
            self.channel_count
                .fetch_sub(removed_channels, Ordering::Relaxed);
            let mut removed_groups = 0;
            shard.groups.retain(|group, g| {
                let removed = g.retain(|name, member| {
                    if !owned(name) {
                        return true;
                    }
                    if member.expires_at > now {
                        taken.memberships.push((
                            group.to_string(),
                            name.to_owned(),
                            member.expires_at - now,
                        ));
                    }
                    false
                });
                stats.memberships -= removed;
                let keep = !g.members.is_empty();
                removed_groups += usize::from(!keep);
                keep
            });
            self.group_count
                .fetch_sub(removed_groups, Ordering::Relaxed);
        }
        taken
    }
}
