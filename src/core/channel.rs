//! One channel: its queue of [`Message`]s and the receives waiting on it, and what the
//! engine hands back when a message goes to a waiting receive ([`Handoff`]).

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;

use crate::core::{limits::deadline, namespace::QueuedBytes, stats::Stats};

/// Payloads up to this size that stay queued are copied into a buffer of their own by the
/// sweeper (see [`Namespace::sweep_shard`](crate::core::Namespace::sweep_shard)), and a group message is copied once before its
/// fan-out.
///
/// A payload decoded from a request is a slice of the request's receive buffer, which
/// holds other messages too: a small queued message could otherwise keep a large buffer
/// alive for as long as it waits. Messages delivered within a sweep interval, the common
/// case, are never copied.
pub const COMPACT_BELOW: usize = 64 * 1024;

/// The most payload one receive takes from a channel at once, unless its first message
/// alone is larger (see [`Namespace::receive`](crate::core::Namespace::receive)): the frame
/// size the server aims at, so that a prefetching receive of large messages is answered in
/// deliveries of about one frame each.
pub const RECEIVE_BATCH_BYTES: usize = 256 * 1024;

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
    pub(super) compact: bool,
}

impl Message {
    /// A message sent at `now` that expires after `expiry`.
    pub fn new(payload: Bytes, now: Instant, expiry: Duration) -> Self {
        Self {
            payload,
            sent_at: now,
            expires_at: deadline(now, expiry),
            compact: false,
        }
    }

    /// Copies a small payload into a buffer of its own (see [`COMPACT_BELOW`]).
    pub(super) fn compact(&mut self) {
        if !self.compact {
            if self.payload.len() < COMPACT_BELOW {
                self.payload = Bytes::copy_from_slice(&self.payload);
            }
            self.compact = true;
        }
    }

    pub(super) fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }
}

/// A message given to a waiter that was registered before it arrived. The caller must
/// deliver it, or give it back with [`Namespace::requeue`](crate::core::Namespace::requeue) if the waiter is gone.
#[derive(Debug)]
pub struct Handoff<W> {
    /// The waiter that gets the message.
    pub waiter: W,
    /// The message.
    pub message: Message,
}

/// What [`Namespace::receive`](crate::core::Namespace::receive) found.
#[derive(Debug)]
pub enum Received {
    /// Queued messages, oldest first (at least one).
    Messages(Vec<Message>),
    /// Nothing was queued: the waiter is registered and will get the next message.
    Waiting,
}

/// What [`Namespace::group_send`](crate::core::Namespace::group_send) did.
#[derive(Debug)]
pub struct GroupSent<W> {
    /// Members that got the message (queued or handed off).
    pub delivered: usize,
    /// Members whose channel was full, so their copy was dropped.
    pub dropped: usize,
    /// Waiters that get the message now.
    pub handoffs: Vec<Handoff<W>>,
    /// Members left to the caller (see `Namespace::group_send_except`).
    pub elsewhere: Vec<Arc<str>>,
}

impl<W> Default for GroupSent<W> {
    fn default() -> Self {
        Self {
            delivered: 0,
            dropped: 0,
            handoffs: Vec::new(),
            elsewhere: Vec::new(),
        }
    }
}

pub(super) struct Channel<W> {
    pub(super) queue: VecDeque<Message>,
    pub(super) waiters: VecDeque<W>,
    pub(super) bytes: usize,
    /// True when the queue may hold a message not yet compacted, so the sweeper does not
    /// walk queues that hold only compact ones.
    pub(super) loose: bool,
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

/// Removes every expired message of `channel`; returns how many.
pub(super) fn purge_expired<W>(
    channel: &mut Channel<W>,
    stats: &mut Stats,
    queued: &QueuedBytes,
    now: Instant,
) -> u64 {
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
    queued.release(freed);
    stats.queued_messages -= removed;
    removed
}
