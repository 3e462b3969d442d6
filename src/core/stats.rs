//! Counters and gauges of the engine, and what introspection reads: a channel's depth, a
//! group's size and members.

use std::time::{Duration, Instant};

use crate::core::{
    CoreError, Waiter,
    names::{validate_channel, validate_group},
    namespace::Namespace,
};

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
    /// Adds `other`'s counters and gauges.
    pub(crate) fn add(&mut self, other: &Stats) {
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

/// What the receives waiting on one channel ask for ([`Namespace::demand`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Receives waiting on the channel.
    pub receives: usize,
    /// The messages they would take, each receive its `max_messages`.
    pub messages: usize,
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

impl<W: Waiter> Namespace<W> {
    /// The state of `channel`.
    pub(crate) fn channel_info(
        &self,
        channel: &str,
        now: Instant,
    ) -> Result<ChannelInfo, CoreError> {
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

    /// What the receives waiting on `channel` ask for: how many wait, and how many
    /// messages they would take. Cheap (no walk of the queue): a puller reads it for
    /// every message it fetches.
    pub fn demand(&self, channel: &str) -> Demand {
        let shard = self.shards[self.shard_of(channel)].lock();
        let Some(ch) = shard.channels.get(channel) else {
            return Demand::default();
        };
        Demand {
            receives: ch.waiters.len(),
            messages: ch.waiters.iter().map(|w| w.max_messages().max(1)).sum(),
        }
    }

    /// How many unexpired members `group` has.
    pub(crate) fn group_size(&self, group: &str, now: Instant) -> Result<usize, CoreError> {
        validate_group(group)?;
        let shard = self.shards[self.shard_of(group)].lock();
        Ok(shard.groups.get(group).map_or(0, |g| {
            g.members.values().filter(|m| m.expires_at > now).count()
        }))
    }

    /// Up to `limit` unexpired members of `group` whose names sort after `after`.
    pub(crate) fn group_members(
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
    pub(crate) fn stats(&self) -> Stats {
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
