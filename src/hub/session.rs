//! One stream's hold on a session ([`SessionHandle`]): receives and cancels through its
//! outbox, sends and group operations acknowledged once per frame, and the end of the
//! stream (detach, or release on close).

use std::{
    collections::VecDeque,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::{
    core::{CapacityRules, Namespace, Received, names::client_prefix_of},
    hub::{
        CloseReason, Event, Hub, HubError, OpOutcome, RemoteOp, now,
        outbox::{AddReceive, HubWaiter, Outbox},
        sessions::SessionKey,
    },
};

/// One stream's hold on a session: the operations it can make.
///
/// Acknowledgements are collected and written with [`SessionHandle::flush_acks`] once per
/// frame, so that one client frame gets its acks back in one server frame. Dropping the
/// handle ends the stream and detaches the session (see [`SessionHandle::end`]).
pub(crate) struct SessionHandle {
    pub(super) hub: Arc<Hub>,
    pub(super) ns: Arc<Namespace<HubWaiter>>,
    pub(super) key: SessionKey,
    pub(super) stream_id: u64,
    pub(super) outbox: Arc<Outbox>,
    pub(super) acks: Vec<Event>,
    /// In a cluster: the results still to come from other nodes, in request order.
    pub(super) order: Option<Arc<Mutex<AckOrder>>>,
    pub(super) ended: bool,
}

/// The results of a session's operations in request order while some of them wait for
/// another node: a result that is ready waits behind the ones before it.
#[derive(Default)]
pub(super) struct AckOrder {
    /// Results from the oldest one not yet sent; `None` while it waits.
    slots: VecDeque<Option<Event>>,
    /// The sequence number of the first slot.
    head: u64,
}

impl AckOrder {
    /// Fills slot `seq` and returns the results now ready to send, in order.
    fn fill(&mut self, seq: u64, event: Event) -> Vec<Event> {
        let index = (seq - self.head) as usize;
        self.slots[index] = Some(event);
        let mut ready = Vec::new();
        while let Some(Some(_)) = self.slots.front() {
            ready.push(self.slots.pop_front().flatten().expect("checked"));
            self.head += 1;
        }
        ready
    }
}

impl SessionHandle {
    /// The outbox the writer drains.
    pub(crate) fn outbox(&self) -> Arc<Outbox> {
        Arc::clone(&self.outbox)
    }

    /// Registers a receive; its answer comes as an event. Only the session holding a
    /// client prefix receives on its process-specific channels: another one is refused
    /// (anyone may send to them and add them to groups).
    pub(crate) fn receive(&mut self, receive_id: u64, channel: &str, max_messages: usize) {
        if let Some(prefix) = client_prefix_of(channel)
            && prefix != &*self.key.1
        {
            let error = HubError::ChannelNotOwned {
                channel: channel.to_owned(),
            };
            self.hub.observer.refused(&error);
            return self.outbox.fail_receive(receive_id, error);
        }
        let channel_arc: Arc<str> = channel.into();
        let waiter_id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        let max_pending = self.hub.config.max_pending_receives;
        match self
            .outbox
            .add_receive(receive_id, waiter_id, &channel_arc, max_pending)
        {
            AddReceive::Added => {}
            AddReceive::Closed => return,
            AddReceive::Refused(error) => {
                self.hub.observer.refused(&error);
                return;
            }
        }
        let waiter = || HubWaiter {
            id: waiter_id,
            receive_id,
            channel: Arc::clone(&channel_arc),
            outbox: Arc::clone(&self.outbox),
            max_messages,
        };
        match self.ns.receive(channel, max_messages, now(), &waiter) {
            Ok(Received::Waiting) => {
                if let Some(backplane) = self.hub.shared_normal(channel) {
                    backplane.wants_normal(self.ns.name(), channel);
                }
            }
            Ok(Received::Messages(messages)) => {
                if let Err(messages) = self.hub.deliver_to(&waiter(), messages) {
                    // The stream closed meanwhile: put them back, newest first.
                    let handoffs: Vec<_> = messages
                        .into_iter()
                        .rev()
                        .filter_map(|m| self.ns.requeue(channel, m, now()))
                        .collect();
                    self.hub.deliver(&self.ns, handoffs);
                }
            }
            Err(error) => {
                let error = HubError::from(error);
                self.hub.observer.refused(&error);
                self.outbox.fail_receive(receive_id, error);
            }
        }
    }

    /// Withdraws a pending receive; the answer comes as an event, after any delivery
    /// already made for it.
    pub(crate) fn cancel(&mut self, receive_id: u64) {
        if let Some(p) = self.outbox.cancel_receive(receive_id) {
            // If the engine no longer has the waiter, a sender holds it and will find it
            // gone from `pending`, and put its message back.
            self.ns.cancel(&p.channel, p.waiter_id);
        }
    }

    fn ack(&mut self, request_id: u64, outcome: Result<OpOutcome, HubError>) {
        if let Err(error) = &outcome {
            self.hub.observer.refused(error);
        }
        let event = Event::Result {
            request_id,
            outcome,
        };
        if let Some(order) = &self.order {
            let mut order = order.lock();
            if !order.slots.is_empty() {
                order.slots.push_back(Some(event));
                return;
            }
        }
        self.acks.push(event);
    }

    /// Applies `op` where its channel lives; when that is another node, its result comes
    /// later and the results after it wait for it, so the client gets them in order.
    fn apply_routed(&mut self, request_id: u64, op: RemoteOp) {
        let forward = self.hub.elsewhere(self.ns.name(), &op);
        let (Some(forward), Some(order)) = (forward, self.order.clone()) else {
            let outcome = self.hub.apply_in(&self.ns, op);
            self.ack(request_id, outcome);
            return;
        };
        // What came before this operation leaves first.
        self.flush_acks();
        let seq = {
            let mut order = order.lock();
            order.slots.push_back(None);
            order.head + order.slots.len() as u64 - 1
        };
        let hub = Arc::clone(&self.hub);
        let ns = Arc::clone(&self.ns);
        let outbox = Arc::clone(&self.outbox);
        tokio::spawn(async move {
            let outcome = match forward.await {
                Ok(Some(outcome)) => Ok(outcome),
                Ok(None) => hub.apply_in(&ns, op),
                Err(error) => Err(error),
            };
            if let Err(error) = &outcome {
                hub.observer.refused(error);
            }
            let ready = order.lock().fill(
                seq,
                Event::Result {
                    request_id,
                    outcome,
                },
            );
            outbox.push_all(ready);
        });
    }

    /// Sends a message; acknowledged at the next [`SessionHandle::flush_acks`].
    pub(crate) fn send(
        &mut self,
        request_id: u64,
        channel: &str,
        payload: Bytes,
        capacity: usize,
        expiry: Duration,
    ) {
        if self.order.is_some() {
            let op = RemoteOp::Send {
                channel: channel.to_owned(),
                payload,
                capacity,
                expiry,
            };
            return self.apply_routed(request_id, op);
        }
        let outcome = self
            .hub
            .send_in(&self.ns, channel, payload, capacity, expiry)
            .map(|(delivered, queued)| OpOutcome::Sent {
                delivered,
                queued: Some(queued),
            });
        self.ack(request_id, outcome);
    }

    /// Adds a channel to a group; acknowledged at the next flush.
    pub(crate) fn group_add(
        &mut self,
        request_id: u64,
        group: &str,
        channel: &str,
        group_expiry: Duration,
    ) {
        if self.order.is_some() {
            let op = RemoteOp::GroupAdd {
                group: group.to_owned(),
                channel: channel.to_owned(),
                group_expiry,
            };
            return self.apply_routed(request_id, op);
        }
        let outcome = self
            .ns
            .group_add(group, channel, group_expiry, now())
            .map(OpOutcome::Changed)
            .map_err(HubError::from);
        self.ack(request_id, outcome);
    }

    /// Removes a channel from a group; acknowledged at the next flush.
    pub(crate) fn group_discard(&mut self, request_id: u64, group: &str, channel: &str) {
        if self.order.is_some() {
            let op = RemoteOp::GroupDiscard {
                group: group.to_owned(),
                channel: channel.to_owned(),
            };
            return self.apply_routed(request_id, op);
        }
        let outcome = self
            .ns
            .group_discard(group, channel)
            .map(OpOutcome::Changed)
            .map_err(HubError::from);
        self.ack(request_id, outcome);
    }

    /// Sends a message to a group; acknowledged at the next flush.
    pub(crate) fn group_send(
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
    pub(crate) fn fail(&mut self, request_id: u64, error: HubError) {
        self.ack(request_id, Err(error));
    }

    /// Writes the acknowledgements collected since the last flush.
    pub(crate) fn flush_acks(&mut self) {
        if !self.acks.is_empty() {
            self.outbox.push_all(self.acks.drain(..));
        }
    }

    /// Ends the session for good: releases its channels and memberships now.
    pub(crate) fn close(&mut self) {
        self.flush_acks();
        self.detach(true);
        self.outbox
            .push_last(Event::Closing(CloseReason::ClientClose));
    }

    /// Ends this stream: withdraws its pending receives, puts the deliveries it never wrote
    /// back in their channels, and detaches the session (it stays resumable for the lease
    /// grace period).
    pub(crate) fn end(mut self) {
        self.detach(false);
    }

    /// Gives up a session that was just opened: it is released at once.
    pub(super) fn abandon(mut self) {
        self.detach(true);
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
            sessions.remove(&self.key).expect("present");
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
