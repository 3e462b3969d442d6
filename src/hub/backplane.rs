//! The seam between the hub and the other nodes of a cluster. The hub calls a
//! [`Backplane`] where a single node would assume it is alone; `cluster` implements it over
//! NATS. Without one (the default), the hub takes exactly its single-node paths.
//!
//! What the hub asks:
//! - whether a client prefix is held by a session of this node ([`Backplane::holds`]), so a
//!   send, group_add or group_discard naming another node's process-specific channel is
//!   forwarded to that node, whose core keeps capacity and expiry exact;
//! - to claim a prefix cluster-wide when a session opens, and to release it;
//! - to publish a group send once for the members other nodes hold;
//! - whether normal channels live in the cluster ([`Backplane::shares_normal`]): then a
//!   send to one is queued cluster-wide, and a receive of this node waiting on one asks
//!   the backplane for the next message ([`Backplane::wants_normal`]);
//! - cluster-wide answers for group size, members, server stats and flush.
//!
//! Every call returns at once or gives a future the hub awaits without holding a lock.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::{HubError, HubStats, OpOutcome};
use crate::core::{CapacityRules, FlushReport, MembersPage};

/// An operation on a process-specific channel that another node holds.
#[derive(Debug, Clone)]
pub enum RemoteOp {
    /// A send.
    Send {
        /// The channel.
        channel: String,
        /// The message.
        payload: Bytes,
        /// The channel's capacity.
        capacity: usize,
        /// How long the message lives.
        expiry: Duration,
    },
    /// A group_add of the channel.
    GroupAdd {
        /// The group.
        group: String,
        /// The channel.
        channel: String,
        /// How long the membership lasts.
        group_expiry: Duration,
    },
    /// A group_discard of the channel.
    GroupDiscard {
        /// The group.
        group: String,
        /// The channel.
        channel: String,
    },
}

impl RemoteOp {
    /// The channel the operation names.
    pub fn channel(&self) -> &str {
        match self {
            Self::Send { channel, .. }
            | Self::GroupAdd { channel, .. }
            | Self::GroupDiscard { channel, .. } => channel,
        }
    }
}

/// What the other nodes answered to a cluster-wide question.
#[derive(Debug, Clone, Default)]
pub struct Surveyed<T> {
    /// One answer per node that answered in time.
    pub answers: Vec<T>,
    /// Nodes known to be up that did not answer in time.
    pub missing: usize,
}

/// The other nodes of a cluster, as the hub sees them.
pub trait Backplane: Send + Sync + 'static {
    /// Fails at once when the cluster cannot be reached.
    fn check(&self) -> Result<(), HubError>;

    /// True when a session of this node holds `client_prefix` in `namespace`.
    fn holds(&self, namespace: &str, client_prefix: &str) -> bool;

    /// Claims `client_prefix` for a new session of this node: with `probe`, fails when
    /// another node holds it; then makes the node reachable for it.
    fn claim(
        &self,
        namespace: &str,
        client_prefix: &str,
        probe: bool,
    ) -> BoxFuture<'static, Result<(), HubError>>;

    /// The session holding `client_prefix` is gone from this node.
    fn release(&self, namespace: &str, client_prefix: &str);

    /// Hands `op` to the node holding `client_prefix`; `None` when no node holds it.
    fn forward(
        &self,
        namespace: &str,
        client_prefix: &str,
        op: RemoteOp,
    ) -> BoxFuture<'static, Result<Option<OpOutcome>, HubError>>;

    /// A new id for a group send of this node, unique in the cluster.
    fn group_send_id(&self) -> String;

    /// Publishes group send `id` for the members the other nodes hold. Does not wait; a
    /// send that cannot be published is counted as dropped by the backplane.
    fn publish_group_send(
        &self,
        namespace: &str,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
        id: &str,
    );

    /// True when normal channels (names without `!`) are queued in the cluster, for
    /// receives of any node, rather than on each node.
    fn shares_normal(&self) -> bool;

    /// Queues a message on normal channel `channel` cluster-wide (capacity and expiry are
    /// the cluster's; see `cluster`).
    fn send_normal(
        &self,
        namespace: &str,
        channel: &str,
        payload: Bytes,
        expiry: Duration,
    ) -> BoxFuture<'static, Result<OpOutcome, HubError>>;

    /// Queues the copy of group send `id` for member `channel`, a normal channel, without
    /// waiting. Several nodes may hold that membership: the copy is queued once.
    fn publish_normal(
        &self,
        namespace: &str,
        channel: &str,
        payload: Bytes,
        expiry: Duration,
        id: &str,
    );

    /// A receive of this node waits on normal channel `channel`: its next messages are
    /// fetched from the cluster and sent to it here.
    fn wants_normal(&self, namespace: &str, channel: &str);

    /// The other nodes' member counts of `group`.
    fn group_sizes(
        &self,
        namespace: &str,
        group: &str,
    ) -> BoxFuture<'static, Result<Surveyed<usize>, HubError>>;

    /// The other nodes' pages of members of `group` after `after`.
    fn group_members(
        &self,
        namespace: &str,
        group: &str,
        after: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Surveyed<MembersPage>, HubError>>;

    /// The other nodes' counters and gauges.
    fn server_stats(&self) -> BoxFuture<'static, Result<Surveyed<HubStats>, HubError>>;

    /// Flushes `namespace` on the other nodes.
    fn flush(&self, namespace: &str)
    -> BoxFuture<'static, Result<Surveyed<FlushReport>, HubError>>;
}
