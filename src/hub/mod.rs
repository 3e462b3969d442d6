//! The async facade over the engine: sessions and their leases, waiting receives,
//! delivery into each session's outbox, and the sweeper task.
//!
//! A session is what a gateway process holds for its whole life: a namespace, a client
//! prefix (which names its process-specific channels) and a resume token. It is attached
//! to at most one stream at a time. Each attached stream has an outbox: the events waiting
//! to be written to the client, and the receives waiting for a message.
//!
//! Delivery never holds a shard lock: the engine hands back the waiter a message went to
//! ([`Handoff`]); the hub then puts it in that waiter's outbox. If the outbox no longer
//! wants it (the receive was cancelled meanwhile, or the stream ended), the message goes
//! back to the front of its channel, so nothing is lost to a race. Every delivery, handed
//! off or taken from a queue, goes through `Hub::deliver_to`, which counts it.
//!
//! Leases: when a session's stream ends it is detached. A stream that opens with its
//! resume token within the grace period takes it over, with everything it had. After the
//! grace period the session is released: its specific channels (and their queued
//! messages) and their group memberships are removed. This deviates from "memberships
//! added through the session" in DESIGN.md on purpose: the lease follows the channel's
//! owner, so a membership added for a specific channel by anyone (a unary `GroupAdd`
//! from a view, another event loop) is released with the process that reads it, and a
//! membership of a normal (worker) channel is never released by a session ending.
//!
//! Files: this one holds [`Hub`] with its unary operations and delivery; `outbox` (a
//! stream's events and pending receives), `session` (one stream's [`SessionHandle`]),
//! `sessions` (opening, resuming, leases and release), `sweeper` (the expiry task),
//! `observer` (hooks for the metrics) and `error` ([`HubError`]).

mod backplane;
mod error;
mod introspection;
mod observer;
mod outbox;
mod session;
mod sessions;
mod sweeper;
#[cfg(test)]
mod tests;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::{FutureExt, future::BoxFuture};
use parking_lot::Mutex;
use tokio::sync::watch;

pub(crate) use self::backplane::{Backplane, RemoteOp, Surveyed};
pub(crate) use self::{
    error::HubError,
    observer::{NoObserver, Observer, OperationCounts},
    outbox::{Batch, CloseReason, Event, OpOutcome, Outbox},
    session::SessionHandle,
    sessions::{OpenRequest, Opened},
};
use self::{outbox::HubWaiter, sessions::Sessions};
use crate::core::{
    self, CapacityRules, Handoff, Layer, Limits, Message, Namespace, names::client_prefix_of,
};

/// Settings of the hub.
#[derive(Debug, Clone)]
pub(crate) struct HubConfig {
    /// Limits of the engine.
    pub(crate) limits: Limits,
    /// Shards per namespace.
    pub(crate) shards: usize,
    /// How long a session survives without a stream.
    pub(crate) lease_grace: Duration,
    /// The most receives one session may have pending.
    pub(crate) max_pending_receives: usize,
    /// The most sessions (attached or detached) the server holds.
    pub(crate) max_sessions: usize,
    /// The most sessions (attached or detached) one namespace holds.
    pub(crate) max_sessions_per_namespace: usize,
    /// How often expired messages and memberships are swept and leases checked.
    pub(crate) sweep_interval: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            shards: 64,
            lease_grace: Duration::from_secs(30),
            max_pending_receives: 250_000,
            max_sessions: 10_000,
            max_sessions_per_namespace: 2_500,
            sweep_interval: Duration::from_secs(1),
        }
    }
}

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
pub(crate) struct HubStats {
    /// The engine's counters and gauges.
    pub(crate) core: core::Stats,
    /// Namespaces that exist.
    pub(crate) namespaces: u64,
    /// How long the hub has run.
    pub(crate) uptime: Duration,
    /// Sessions with a live stream.
    pub(crate) sessions_open: u64,
    /// Sessions waiting to be resumed.
    pub(crate) sessions_detached: u64,
    /// Messages delivered to receives.
    pub(crate) delivered_total: u64,
    /// Sessions opened (new, not resumed).
    pub(crate) sessions_opened_total: u64,
    /// Sessions resumed by a new stream.
    pub(crate) sessions_resumed_total: u64,
    /// Sessions released after their lease ran out or on close.
    pub(crate) sessions_released_total: u64,
}

impl HubStats {
    /// Adds another node's counters and gauges (not its uptime).
    pub(crate) fn add(&mut self, other: &HubStats) {
        self.core.add(&other.core);
        self.sessions_open += other.sessions_open;
        self.sessions_detached += other.sessions_detached;
        self.delivered_total += other.delivered_total;
        self.sessions_opened_total += other.sessions_opened_total;
        self.sessions_resumed_total += other.sessions_resumed_total;
        self.sessions_released_total += other.sessions_released_total;
        self.namespaces += other.namespaces;
    }
}

/// The channel layer: the engine, the sessions and the sweeper.
pub(crate) struct Hub {
    layer: Layer<HubWaiter>,
    backplane: Option<Arc<dyn Backplane>>,
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

impl Hub {
    /// A hub with no state that reports events to `observer`, and shares its channels and
    /// groups with other nodes through `backplane` (see `cluster`), or is a single node
    /// when it is `None`.
    pub(crate) fn with_backplane(
        config: HubConfig,
        observer: Arc<dyn Observer>,
        backplane: Option<Arc<dyn Backplane>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            layer: Layer::new(config.limits.clone(), config.shards),
            backplane,
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
    pub(crate) fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }

    /// The settings in force.
    pub(crate) fn config(&self) -> &HubConfig {
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
                if let Err(mut back) = self.deliver_to(&waiter, vec![message]) {
                    let message = back.pop().expect("one message");
                    next = ns
                        .requeue(&waiter.channel, message, now())
                        .map(|h| (h.waiter, h.message));
                }
            }
        }
    }

    /// Puts `messages` in the outbox of `waiter`, if its receive still wants them, and
    /// counts them as delivered: every delivery goes through here. Gives the messages
    /// back when the receive is gone.
    fn deliver_to(&self, waiter: &HubWaiter, messages: Vec<Message>) -> Result<(), Vec<Message>> {
        let count = messages.len() as u64;
        // The send times, for the latency; a one-message delivery (a handoff, the common
        // case) allocates nothing for them.
        let first = messages.first().map(|m| m.sent_at);
        let rest: Vec<Instant> = match messages.get(1..) {
            Some(rest) if !rest.is_empty() => rest.iter().map(|m| m.sent_at).collect(),
            _ => Vec::new(),
        };
        waiter.outbox.deliver(waiter, messages)?;
        self.counters.delivered.fetch_add(count, Ordering::Relaxed);
        let now = now();
        for sent_at in first.into_iter().chain(rest) {
            self.observer
                .delivered(now.saturating_duration_since(sent_at));
        }
        Ok(())
    }

    /// The backplane and the client prefix when `channel` is a process-specific channel
    /// that no session of this node holds: an operation on it goes to the prefix's owner.
    fn remote_owner<'a>(
        &'a self,
        namespace: &str,
        channel: &'a str,
    ) -> Option<(&'a Arc<dyn Backplane>, &'a str)> {
        let backplane = self.backplane.as_ref()?;
        let prefix = client_prefix_of(channel)?;
        (!backplane.holds(namespace, prefix)).then_some((backplane, prefix))
    }

    /// Where `op` goes when it is not for this node: to the node holding its channel's
    /// client prefix, or, for a send to a normal channel that the cluster shares, to the
    /// cluster's queue. The future's `None` means no node took it: it is applied here.
    /// `None` for an operation this node applies itself.
    fn elsewhere(
        &self,
        namespace: &str,
        op: &RemoteOp,
    ) -> Option<BoxFuture<'static, Result<Option<OpOutcome>, HubError>>> {
        if let RemoteOp::Send {
            channel,
            payload,
            expiry,
            ..
        } = op
            && let Some(backplane) = self.shared_normal(channel)
        {
            let send = backplane.send_normal(namespace, channel, payload.clone(), *expiry);
            return Some(send.map(|outcome| outcome.map(Some)).boxed());
        }
        self.remote_owner(namespace, op.channel())
            .map(|(backplane, prefix)| backplane.forward(namespace, prefix, op.clone()))
    }

    /// The backplane when `channel` is a normal channel that the cluster shares.
    fn shared_normal(&self, channel: &str) -> Option<&Arc<dyn Backplane>> {
        self.backplane
            .as_ref()
            .filter(|b| b.shares_normal() && client_prefix_of(channel).is_none())
    }

    /// Applies `op` on this node, whoever holds its channel: what a node does for an
    /// operation forwarded to it, and for one whose channel no node holds.
    pub(crate) fn apply_here(&self, namespace: &str, op: RemoteOp) -> Result<OpOutcome, HubError> {
        let ns = self.namespace(namespace)?;
        self.apply_in(&ns, op)
    }

    fn apply_in(&self, ns: &Namespace<HubWaiter>, op: RemoteOp) -> Result<OpOutcome, HubError> {
        match op {
            RemoteOp::Send {
                channel,
                payload,
                capacity,
                expiry,
            } => {
                self.send_in(ns, &channel, payload, capacity, expiry)
                    .map(|(delivered, queued)| OpOutcome::Sent {
                        delivered,
                        queued: Some(queued),
                    })
            }
            RemoteOp::GroupAdd {
                group,
                channel,
                group_expiry,
            } => Ok(OpOutcome::Changed(ns.group_add(
                &group,
                &channel,
                group_expiry,
                now(),
            )?)),
            RemoteOp::GroupDiscard { group, channel } => {
                Ok(OpOutcome::Changed(ns.group_discard(&group, &channel)?))
            }
        }
    }

    /// Applies `op` where its channel lives: here, or on the node holding its client
    /// prefix. An operation no node can take is applied here, as on a single node.
    async fn route(
        self: Arc<Self>,
        ns: Arc<Namespace<HubWaiter>>,
        op: RemoteOp,
    ) -> Result<OpOutcome, HubError> {
        if let Some(forward) = self.elsewhere(ns.name(), &op)
            && let Some(outcome) = forward.await?
        {
            return Ok(outcome);
        }
        self.apply_in(&ns, op)
    }

    /// Sends a message to a channel. Returns true when it went to a waiting receive.
    pub(crate) async fn send(
        self: &Arc<Self>,
        namespace: &str,
        channel: &str,
        payload: Bytes,
        capacity: usize,
        expiry: Duration,
    ) -> Result<bool, HubError> {
        if self.backplane.is_none() {
            let ns = self.namespace(namespace)?;
            return Ok(self.send_in(&ns, channel, payload, capacity, expiry)?.0);
        }
        let op = RemoteOp::Send {
            channel: channel.to_owned(),
            payload,
            capacity,
            expiry,
        };
        match self.apply(namespace, op).await? {
            OpOutcome::Sent { delivered, .. } => Ok(delivered),
            _ => Ok(false),
        }
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

    /// Applies a send, group_add or group_discard where its channel lives.
    async fn apply(self: &Arc<Self>, namespace: &str, op: RemoteOp) -> Result<OpOutcome, HubError> {
        let ns = self.namespace(namespace)?;
        if self.backplane.is_none() {
            return self.apply_in(&ns, op);
        }
        Arc::clone(self).route(ns, op).await
    }

    /// Adds a channel to a group. Returns true when it was not a member.
    pub(crate) async fn group_add(
        self: &Arc<Self>,
        namespace: &str,
        group: &str,
        channel: &str,
        group_expiry: Duration,
    ) -> Result<bool, HubError> {
        let op = RemoteOp::GroupAdd {
            group: group.to_owned(),
            channel: channel.to_owned(),
            group_expiry,
        };
        Ok(matches!(
            self.apply(namespace, op).await?,
            OpOutcome::Changed(true)
        ))
    }

    /// Removes a channel from a group. Returns true when it was a member.
    pub(crate) async fn group_discard(
        self: &Arc<Self>,
        namespace: &str,
        group: &str,
        channel: &str,
    ) -> Result<bool, HubError> {
        if self.backplane.is_none() && !self.has_namespace(namespace) {
            // Nothing to discard, and nothing to create.
            return self
                .nothing_stored(namespace, group, channel)
                .map(|()| false);
        }
        let op = RemoteOp::GroupDiscard {
            group: group.to_owned(),
            channel: channel.to_owned(),
        };
        Ok(matches!(
            self.apply(namespace, op).await?,
            OpOutcome::Changed(true)
        ))
    }

    /// Sends a message to every member of a group: (delivered, dropped). In a cluster the
    /// counts are this node's members; the other nodes' members get it through the
    /// backplane.
    pub(crate) fn group_send(
        &self,
        namespace: &str,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
    ) -> Result<(usize, usize), HubError> {
        if self.backplane.is_none() && !self.has_namespace(namespace) {
            // No members, so nothing to store, and nothing to create.
            self.nothing_stored(namespace, group, "-")?;
            self.layer.check_group_send(&payload, capacities, expiry)?;
            return Ok((0, 0));
        }
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
        let Some(backplane) = &self.backplane else {
            return self.fan_out(ns, group, payload, capacities, expiry, "");
        };
        backplane.check()?;
        let id = backplane.group_send_id();
        let sent = self.fan_out(ns, group, payload.clone(), capacities, expiry, &id)?;
        backplane.publish_group_send(ns.name(), group, payload, capacities, expiry, &id);
        Ok(sent)
    }

    /// Delivers group send `id` to this node's members. Where the cluster shares normal
    /// channels, a normal member's copy goes to the cluster's queue, once per `id` however
    /// many nodes hold that membership.
    fn fan_out(
        &self,
        ns: &Namespace<HubWaiter>,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
        id: &str,
    ) -> Result<(usize, usize), HubError> {
        let shared = self.backplane.as_ref().filter(|b| b.shares_normal());
        let sent = match shared {
            None => ns.group_send(group, payload, capacities, expiry, now())?,
            Some(backplane) => {
                let mut sent = ns.group_send_except(
                    group,
                    payload.clone(),
                    capacities,
                    expiry,
                    now(),
                    |channel| client_prefix_of(channel).is_none(),
                )?;
                for channel in &sent.elsewhere {
                    backplane.publish_normal(ns.name(), channel, payload.clone(), expiry, id);
                }
                sent.delivered += sent.elsewhere.len();
                sent
            }
        };
        self.observer.group_sent(sent.delivered, sent.dropped);
        self.deliver(ns, sent.handoffs);
        Ok((sent.delivered, sent.dropped))
    }

    /// Group send `id`, which another node published: delivered to this node's members
    /// only. A namespace this node does not have has no members here, and is not created.
    pub(crate) fn group_send_here(
        &self,
        namespace: &str,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
        id: &str,
    ) -> Result<(usize, usize), HubError> {
        match self.layer.existing(namespace) {
            Some(ns) => self.fan_out(&ns, group, payload, capacities, expiry, id),
            None => Ok((0, 0)),
        }
    }

    /// What the receives of this node waiting on `channel` ask for; nothing for a
    /// namespace it does not have.
    pub(crate) fn demand(&self, namespace: &str, channel: &str) -> core::Demand {
        self.layer
            .existing(namespace)
            .map(|ns| ns.demand(channel))
            .unwrap_or_default()
    }

    /// A message of a normal channel that the cluster shares, fetched for a receive of
    /// this node: the cluster admitted it, so no capacity applies here.
    pub(crate) fn deliver_fetched(
        &self,
        namespace: &str,
        channel: &str,
        payload: Bytes,
        expiry: Duration,
    ) -> Result<(), HubError> {
        let ns = self.namespace(namespace)?;
        self.send_in(&ns, channel, payload, usize::MAX, expiry)
            .map(drop)
    }

    /// Checks the names of an operation on a namespace that does not exist, which it
    /// leaves as it is (a discard, a group send): it is refused as it would be there.
    fn nothing_stored(&self, namespace: &str, group: &str, channel: &str) -> Result<(), HubError> {
        core::names::validate_namespace(namespace)?;
        core::names::validate_group(group)?;
        core::names::validate_channel(channel)?;
        Ok(())
    }

    /// Counters and gauges.
    pub(crate) fn stats(&self) -> HubStats {
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
            namespaces: self.layer.len() as u64,
            uptime: now().saturating_duration_since(self.started),
            sessions_open: open,
            sessions_detached: detached,
            delivered_total: self.counters.delivered.load(Ordering::Relaxed),
            sessions_opened_total: self.counters.sessions_opened.load(Ordering::Relaxed),
            sessions_resumed_total: self.counters.sessions_resumed.load(Ordering::Relaxed),
            sessions_released_total: self.counters.sessions_released.load(Ordering::Relaxed),
        }
    }
}
