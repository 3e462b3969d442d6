//! One stream's outbox: the events it has yet to write to its client, and the receives it
//! has pending. The session handle registers and cancels receives through it, the hub
//! delivers into it, and the stream's writer drains it ([`Outbox::poll_batch`]).

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::task::AtomicWaker;
use parking_lot::{Mutex, MutexGuard};

use crate::{
    core::{self, Message},
    hub::HubError,
};

/// Why a session stream ends from the server's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The server shuts down.
    Shutdown,
    /// The client asked.
    ClientClose,
    /// Another stream resumed the session.
    ResumedElsewhere,
}

/// The outcome of a send or group operation made on a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpOutcome {
    /// `send`: whether the message went straight to a waiting receive.
    Sent {
        /// True when handed to a waiting receive.
        delivered: bool,
        /// Messages the channel holds afterwards (0 when handed to a waiting receive);
        /// `None` when this node cannot know (a normal channel that a cluster shares
        /// through JetStream, whose stream alone counts).
        queued: Option<usize>,
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
pub(crate) enum Event {
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
pub(crate) struct HubWaiter {
    pub(crate) id: u64,
    pub(crate) receive_id: u64,
    pub(crate) channel: Arc<str>,
    pub(crate) outbox: Arc<Outbox>,
    /// The receive's `max_messages`.
    pub(crate) max_messages: usize,
}

impl core::Waiter for HubWaiter {
    fn id(&self) -> u64 {
        self.id
    }

    fn max_messages(&self) -> usize {
        self.max_messages
    }
}

/// A receive registered with the engine, as the outbox knows it.
pub(crate) struct PendingReceive {
    /// The engine's waiter for it.
    pub(crate) waiter_id: u64,
    /// Its channel.
    pub(crate) channel: Arc<str>,
}

/// What [`Outbox::add_receive`] did.
pub(crate) enum AddReceive {
    /// The receive is pending.
    Added,
    /// The stream is gone: nothing was registered, nothing will be answered.
    Closed,
    /// The receive was refused; the refusal is queued for the client.
    Refused(HubError),
}

#[derive(Default)]
struct OutboxState {
    events: VecDeque<Event>,
    pending: HashMap<u64, PendingReceive>,
    /// No more events are accepted: the stream is gone or going.
    closed: bool,
    /// The stream ends once the queued events are written.
    finishing: bool,
    /// The stream's writer is applying one of its client's frames, and drains the outbox
    /// right after: what is pushed meanwhile does not wake it (see [`Outbox::cork`]).
    corked: bool,
}

/// Messages of a delivery that was never written, with their channel.
pub(crate) type Unsent = (Arc<str>, Vec<Message>);

/// The events a stream has yet to write, and the receives it has pending.
pub(crate) struct Outbox {
    state: Mutex<OutboxState>,
    /// The writer waiting in [`Outbox::poll_batch`].
    writer: AtomicWaker,
}

/// What [`Outbox::poll_batch`] gives the writer.
pub(crate) enum Batch {
    /// Events to write now.
    Events(Vec<Event>),
    /// The stream is over.
    End,
}

impl Outbox {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(OutboxState::default()),
            writer: AtomicWaker::new(),
        })
    }

    /// Holds the writer's wakeups back until [`Outbox::uncork`]: for the writer itself,
    /// while it applies a frame of its client, whose deliveries and acknowledgements it
    /// then takes in one batch without having woken itself for each.
    pub(crate) fn cork(&self) {
        self.state.lock().corked = true;
    }

    /// Lets pushes wake the writer again. Wakes nobody: the writer that corked the outbox
    /// polls it next ([`Outbox::poll_batch`]), which takes what was pushed meanwhile.
    pub(crate) fn uncork(&self) {
        self.state.lock().corked = false;
    }

    /// Releases the lock and wakes the writer, unless the outbox is corked.
    fn wake(&self, state: MutexGuard<'_, OutboxState>) {
        let corked = state.corked;
        drop(state);
        if !corked {
            self.writer.wake();
        }
    }

    pub(crate) fn push_all(&self, events: impl IntoIterator<Item = Event>) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        state.events.extend(events);
        self.wake(state);
    }

    /// Delivers `messages` to the pending receive `receive_id` if it is still the one
    /// registered as `waiter_id`; otherwise gives the messages back.
    pub(crate) fn deliver(
        &self,
        waiter: &HubWaiter,
        messages: Vec<Message>,
    ) -> Result<(), Vec<Message>> {
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
        self.wake(state);
        Ok(())
    }

    /// Registers the pending receive `receive_id`, to be fulfilled by the engine's waiter
    /// `waiter_id` on `channel`. A receive id already pending, or one receive more than
    /// `max_pending`, is refused: the refusal is queued for the client as a
    /// `ReceiveFailed` and returned, for the observer.
    pub(crate) fn add_receive(
        &self,
        receive_id: u64,
        waiter_id: u64,
        channel: &Arc<str>,
        max_pending: usize,
    ) -> AddReceive {
        let mut state = self.state.lock();
        if state.closed {
            return AddReceive::Closed;
        }
        let error = if state.pending.contains_key(&receive_id) {
            HubError::DuplicateReceiveId { receive_id }
        } else if state.pending.len() >= max_pending {
            HubError::TooManyPendingReceives { limit: max_pending }
        } else {
            state.pending.insert(
                receive_id,
                PendingReceive {
                    waiter_id,
                    channel: Arc::clone(channel),
                },
            );
            return AddReceive::Added;
        };
        state.events.push_back(Event::ReceiveFailed {
            receive_id,
            error: error.clone(),
        });
        self.wake(state);
        AddReceive::Refused(error)
    }

    /// Fails the pending receive `receive_id`: withdraws it and tells the client why.
    pub(crate) fn fail_receive(&self, receive_id: u64, error: HubError) {
        let mut state = self.state.lock();
        state.pending.remove(&receive_id);
        if !state.closed {
            state
                .events
                .push_back(Event::ReceiveFailed { receive_id, error });
        }
        self.wake(state);
    }

    /// Withdraws the pending receive `receive_id` and queues the answer to the cancel
    /// (after any delivery already queued for it). Returns the receive when it was
    /// pending, so that its waiter can be withdrawn from the engine.
    pub(crate) fn cancel_receive(&self, receive_id: u64) -> Option<PendingReceive> {
        let mut state = self.state.lock();
        let pending = state.pending.remove(&receive_id);
        if !state.closed {
            state.events.push_back(Event::Cancelled {
                receive_id,
                was_pending: pending.is_some(),
            });
        }
        self.wake(state);
        pending
    }

    /// Takes up to `max_bytes` of payload of the queued events (at least one event), says
    /// the stream is over, or registers the writer to be woken by the next push.
    pub(crate) fn poll_batch(&self, cx: &mut Context<'_>, max_bytes: usize) -> Poll<Batch> {
        // Registered before looking, so that a push after the look wakes this writer.
        self.writer.register(cx.waker());
        let mut state = self.state.lock();
        if !state.events.is_empty() {
            let mut batch = Vec::with_capacity(state.events.len().min(1024));
            let mut bytes = 0;
            while let Some(event) = state.events.front() {
                let size = event_size(event);
                if !batch.is_empty() && bytes + size > max_bytes {
                    // The rest waits for the next poll, which follows this batch's write.
                    break;
                }
                bytes += size;
                batch.push(state.events.pop_front().expect("front exists"));
            }
            return Poll::Ready(Batch::Events(batch));
        }
        if state.finishing || state.closed {
            return Poll::Ready(Batch::End);
        }
        Poll::Pending
    }

    /// Ends the stream once queued events are written; accepts no more events.
    pub(crate) fn finish(&self, last: Option<Event>) {
        let mut state = self.state.lock();
        if !state.closed {
            if let Some(event) = last {
                state.events.push_back(event);
            }
            state.closed = true;
        }
        state.finishing = true;
        drop(state);
        self.writer.wake();
    }

    /// Queues the stream's last event after [`Outbox::close`], so the writer still sends it.
    pub(crate) fn push_last(&self, event: Event) {
        self.state.lock().events.push_back(event);
        self.writer.wake();
    }

    /// Closes the outbox for good: returns the pending receives (to withdraw from the
    /// engine) and the deliveries never written (to put back in their channels).
    pub(crate) fn close(&self) -> (Vec<PendingReceive>, Vec<Unsent>) {
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
        self.writer.wake();
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
