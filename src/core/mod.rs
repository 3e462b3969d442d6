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
//!
//! Files: `layer` (every namespace), `namespace` (one namespace's shards and its hot path:
//! send, receive, cancel, requeue, group operations), `channel` (a queue and its waiters,
//! [`Message`]), `group` (members and the fan-out list), `cleanup` (flush, sweep, release),
//! `stats` (counters and introspection), `limits` ([`Limits`] and [`Limit`]), `error`
//! ([`CoreError`] with its reason), `names` (Channels' name rules), `capacity`
//! (`channel_capacity` patterns).

mod capacity;
mod channel;
mod cleanup;
mod error;
mod group;
mod layer;
mod limits;
pub(crate) mod names;
mod namespace;
mod stats;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use self::{
    capacity::{CapacityRules, DEFAULT_CAPACITY, Pattern},
    channel::{COMPACT_BELOW, GroupSent, Handoff, Message, RECEIVE_BATCH_BYTES, Received},
    cleanup::{FlushReport, ReleaseReport, SweepReport, Taken},
    error::{Category, CoreError},
    layer::Layer,
    limits::{LIMIT_METADATA_KEY, Limit, Limits},
    namespace::Namespace,
    stats::{ChannelInfo, Demand, MembersPage, Stats},
};

/// How long a message waits unread before it expires, when no expiry is given.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(60);

/// How long a group membership lasts after its last `group_add`, when not given.
pub const DEFAULT_GROUP_EXPIRY: Duration = Duration::from_secs(86_400);

/// Something waiting for a message: the engine stores it and hands it back.
pub trait Waiter {
    /// An identifier unique among all waiters, used to cancel this one.
    fn id(&self) -> u64;

    /// How many messages the receive takes when served from a backlog (its
    /// `max_messages`); a waiter that arrives first is handed one. What fetches messages
    /// for waiting receives from elsewhere reads it ([`Namespace::demand`]).
    fn max_messages(&self) -> usize {
        1
    }
}
