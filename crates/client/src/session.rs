//! The [`Session`] stream: operations queued by any task go out in frames within the frame
//! limits (written by one task), and the server's events are dispatched to the receives,
//! acknowledgements and cancels waiting for them.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::stream;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::{
    ClientError, GroupSent, GrpcClient, Received, SendOptions, SendReport, expiry_ms,
    proto::{
        frame::FrameBuilder,
        v1::{self as pb, session_event, session_operation::Operation},
    },
};

enum Answer {
    Delivery(pb::Delivery),
    Failed(pb::ErrorDetail),
}

#[derive(Default)]
struct Dispatch {
    receives: HashMap<u64, (String, oneshot::Sender<Answer>)>,
    /// Operations awaiting their result, in the order they were queued, which is the
    /// order the server acknowledges them in.
    results: VecDeque<(u64, oneshot::Sender<pb::OperationResult>)>,
    cancels: HashMap<u64, VecDeque<oneshot::Sender<bool>>>,
    /// Messages delivered to receives whose caller had gone; the next receive of the
    /// channel takes them first.
    leftovers: HashMap<String, VecDeque<Received>>,
    closed: bool,
    closing: Option<i32>,
}

struct SessionShared {
    dispatch: Mutex<Dispatch>,
    /// The operations' queue; taken away when the session is dropped, which ends the
    /// request stream.
    ops: Mutex<Option<mpsc::UnboundedSender<Operation>>>,
    next_id: AtomicU64,
}

impl SessionShared {
    fn queue(&self, op: Operation) -> Result<(), ClientError> {
        match &*self.ops.lock() {
            Some(ops) => ops.send(op).map_err(|_| ClientError::SessionClosed),
            None => Err(ClientError::SessionClosed),
        }
    }
}

/// A session stream: receives multiplexed on one stream, and sends and group operations
/// batched into frames.
pub struct Session {
    shared: Arc<SessionShared>,
    opened: pb::SessionOpened,
}

impl Session {
    pub(crate) async fn open(
        mut grpc: GrpcClient,
        open: pb::OpenOperation,
    ) -> Result<Self, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel::<Operation>();
        tx.send(Operation::Open(open)).expect("receiver is alive");
        // One frame: what is queued now, within the frame limits; an operation that does not
        // fit opens the next frame.
        let frames = stream::unfold((rx, None), |(mut rx, next)| async move {
            let mut frame = FrameBuilder::new();
            frame.push(match next {
                Some(op) => op,
                None => rx.recv().await?,
            });
            let mut next = None;
            while let Ok(op) = rx.try_recv() {
                if !frame.has_room_for(&op) {
                    next = Some(op);
                    break;
                }
                frame.push(op);
            }
            Some((frame.into_request(), (rx, next)))
        });
        let mut inbound = grpc.session(frames).await?.into_inner();
        let first = inbound.message().await?.ok_or(ClientError::SessionClosed)?;
        let mut events = first.events.into_iter();
        let opened = match events.next().and_then(|e| e.event) {
            Some(session_event::Event::Opened(opened)) => opened,
            _ => {
                return Err(ClientError::Status(Status::internal(
                    "the server's first session event was not opened",
                )));
            }
        };
        let shared = Arc::new(SessionShared {
            dispatch: Mutex::new(Dispatch::default()),
            ops: Mutex::new(Some(tx)),
            next_id: AtomicU64::new(1),
        });
        let reader = Arc::clone(&shared);
        tokio::spawn(async move {
            let rest: Vec<_> = events.collect();
            dispatch(&reader, rest);
            while let Ok(Some(frame)) = inbound.message().await {
                dispatch(&reader, frame.events);
            }
            let mut d = reader.dispatch.lock();
            d.closed = true;
            d.receives.clear();
            d.results.clear();
            d.cancels.clear();
        });
        Ok(Self { shared, opened })
    }

    /// The session's client prefix.
    pub fn client_prefix(&self) -> &str {
        &self.opened.client_prefix
    }

    /// The token that resumes this session on a new stream.
    pub fn resume_token(&self) -> &str {
        &self.opened.resume_token
    }

    /// What the server answered to open.
    pub fn opened(&self) -> &pb::SessionOpened {
        &self.opened
    }

    /// A new process-specific channel name: `<prefix>.<client_prefix>!<random>`.
    pub fn new_channel(&self, prefix: &str) -> String {
        let random: u64 = rand::random();
        format!("{prefix}.{}!{random:016x}", self.opened.client_prefix)
    }

    /// How the server closed the stream, if it said.
    pub fn closing_reason(&self) -> Option<pb::SessionCloseReason> {
        self.shared
            .dispatch
            .lock()
            .closing
            .and_then(|r| pb::SessionCloseReason::try_from(r).ok())
    }

    /// True when the stream has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.dispatch.lock().closed
    }

    /// Receives one message from `channel`, waiting for it.
    pub async fn receive(&self, channel: &str) -> Result<Received, ClientError> {
        let mut messages = self.receive_many(channel, 1).await?;
        Ok(messages.remove(0))
    }

    /// Receives between one and `max` messages from `channel`, waiting for the first.
    /// Dropping the future cancels the receive; a message that was already on its way
    /// is kept for the next receive of the channel.
    pub async fn receive_many(
        &self,
        channel: &str,
        max: u32,
    ) -> Result<Vec<Received>, ClientError> {
        let pending = self.start_receive(channel, max)?;
        pending.wait().await
    }

    /// Registers a receive and returns a handle to wait for it or cancel it.
    pub fn start_receive(&self, channel: &str, max: u32) -> Result<PendingReceive, ClientError> {
        let receive_id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut d = self.shared.dispatch.lock();
            if d.closed {
                return Err(ClientError::SessionClosed);
            }
            if let Some(buffered) = d.leftovers.get_mut(channel)
                && let Some(first) = buffered.pop_front()
            {
                let mut messages = vec![first];
                while messages.len() < max.max(1) as usize {
                    match buffered.pop_front() {
                        Some(m) => messages.push(m),
                        None => break,
                    }
                }
                return Ok(PendingReceive {
                    receive_id,
                    ready: Some(messages),
                    rx: None,
                    shared: Arc::clone(&self.shared),
                    done: true,
                });
            }
            d.receives.insert(receive_id, (channel.to_owned(), tx));
        }
        self.shared.queue(Operation::Receive(pb::ReceiveOperation {
            receive_id,
            channel: channel.to_owned(),
            max_messages: max,
        }))?;
        Ok(PendingReceive {
            receive_id,
            ready: None,
            rx: Some(rx),
            shared: Arc::clone(&self.shared),
            done: false,
        })
    }

    fn next_request_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn request(
        &self,
        request_id: u64,
        op: Operation,
    ) -> impl Future<Output = Result<pb::OperationResult, ClientError>> + use<> {
        let (tx, rx) = oneshot::channel();
        let queued = {
            // Queue under the dispatch lock, so `results` stays in queue order.
            let mut d = self.shared.dispatch.lock();
            if d.closed {
                Err(ClientError::SessionClosed)
            } else {
                let queued = self.shared.queue(op);
                if queued.is_ok() {
                    d.results.push_back((request_id, tx));
                }
                queued
            }
        };
        async move {
            queued?;
            let result = rx.await.map_err(|_| ClientError::SessionClosed)?;
            match result.error {
                Some(detail) => Err(ClientError::from_detail(detail)),
                None => Ok(result),
            }
        }
    }

    /// Sends a message on the stream. The operation is queued when this is called; the
    /// future waits for its acknowledgement and gives whether the message went straight to
    /// a waiting receive.
    pub fn send(
        &self,
        channel: &str,
        message: Bytes,
        options: SendOptions,
    ) -> impl Future<Output = Result<bool, ClientError>> + use<> {
        let report = self.send_reporting(channel, message, options);
        async move { Ok(report.await?.delivered) }
    }

    /// [`send`](Self::send), giving the whole acknowledgement: also how many messages the
    /// channel holds after this one (see `OperationResult.queued`).
    pub fn send_reporting(
        &self,
        channel: &str,
        message: Bytes,
        options: SendOptions,
    ) -> impl Future<Output = Result<SendReport, ClientError>> + use<> {
        let request_id = self.next_request_id();
        let ack = self.request(
            request_id,
            Operation::Send(pb::SendOperation {
                request_id,
                channel: channel.to_owned(),
                message,
                capacity: options.capacity,
                expiry_ms: expiry_ms(options.expiry),
            }),
        );
        async move {
            let result = ack.await?;
            Ok(SendReport {
                delivered: result.delivered,
                queued: result.queued,
            })
        }
    }

    /// Adds a channel to a group on the stream.
    pub fn group_add(
        &self,
        group: &str,
        channel: &str,
    ) -> impl Future<Output = Result<bool, ClientError>> + use<> {
        let request_id = self.next_request_id();
        let ack = self.request(
            request_id,
            Operation::GroupAdd(pb::GroupAddOperation {
                request_id,
                group: group.to_owned(),
                channel: channel.to_owned(),
                group_expiry_seconds: 0,
            }),
        );
        async move { Ok(ack.await?.changed) }
    }

    /// Removes a channel from a group on the stream.
    pub fn group_discard(
        &self,
        group: &str,
        channel: &str,
    ) -> impl Future<Output = Result<bool, ClientError>> + use<> {
        let request_id = self.next_request_id();
        let ack = self.request(
            request_id,
            Operation::GroupDiscard(pb::GroupDiscardOperation {
                request_id,
                group: group.to_owned(),
                channel: channel.to_owned(),
            }),
        );
        async move { Ok(ack.await?.changed) }
    }

    /// Sends a message to a group on the stream.
    pub fn group_send(
        &self,
        group: &str,
        message: Bytes,
        options: SendOptions,
    ) -> impl Future<Output = Result<GroupSent, ClientError>> + use<> {
        let request_id = self.next_request_id();
        let ack = self.request(
            request_id,
            Operation::GroupSend(pb::GroupSendOperation {
                request_id,
                group: group.to_owned(),
                message,
                capacity: options.capacity,
                channel_capacity: Vec::new(),
                expiry_ms: expiry_ms(options.expiry),
            }),
        );
        async move {
            let result = ack.await?;
            Ok(GroupSent {
                delivered: result.delivered_count,
                dropped: result.dropped_count,
            })
        }
    }

    /// Queues a raw operation, for operations this type does not wrap.
    pub fn queue_raw(&self, op: Operation) -> Result<(), ClientError> {
        self.shared.queue(op)
    }

    /// Ends the session for good: the server releases its channels and memberships now.
    pub fn close(&self) -> Result<(), ClientError> {
        self.shared.queue(Operation::Close(pb::CloseOperation {}))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Ending the request stream ends the session's stream on the server, which keeps
        // the session resumable for its lease grace period.
        self.shared.ops.lock().take();
    }
}

/// A receive registered on a session.
pub struct PendingReceive {
    receive_id: u64,
    ready: Option<Vec<Received>>,
    rx: Option<oneshot::Receiver<Answer>>,
    shared: Arc<SessionShared>,
    done: bool,
}

impl PendingReceive {
    /// The receive's id on the stream.
    pub fn id(&self) -> u64 {
        self.receive_id
    }

    /// Waits for the messages.
    pub async fn wait(mut self) -> Result<Vec<Received>, ClientError> {
        if let Some(ready) = self.ready.take() {
            return Ok(ready);
        }
        // The receiver stays in `self` while waiting, so that if this future is dropped,
        // `Drop` finds a delivery that already arrived and keeps it.
        let rx = self.rx.as_mut().expect("a pending receive has a receiver");
        let answer = rx.await.map_err(|_| ClientError::SessionClosed);
        self.done = true;
        match answer? {
            Answer::Delivery(delivery) => Ok(to_received(delivery)),
            Answer::Failed(detail) => Err(ClientError::from_detail(detail)),
        }
    }

    /// Cancels the receive. Returns the server's `was_pending`: false means the messages
    /// were already on their way; they are kept for the channel's next receive.
    pub async fn cancel(mut self) -> Result<bool, ClientError> {
        self.done = true;
        if self.ready.is_some() {
            // Served from the local buffer: give the messages back.
            let ready = self.ready.take().unwrap_or_default();
            let mut d = self.shared.dispatch.lock();
            for m in ready.into_iter().rev() {
                d.leftovers
                    .entry(m.channel.to_string())
                    .or_default()
                    .push_front(m);
            }
            return Ok(false);
        }
        cancel_receive(&self.shared, self.receive_id)?.await
    }
}

fn cancel_receive(
    shared: &Arc<SessionShared>,
    receive_id: u64,
) -> Result<impl Future<Output = Result<bool, ClientError>> + use<>, ClientError> {
    let (tx, rx) = oneshot::channel();
    {
        let mut d = shared.dispatch.lock();
        if d.closed {
            return Err(ClientError::SessionClosed);
        }
        d.cancels.entry(receive_id).or_default().push_back(tx);
        // The receive's caller is gone: a delivery that still comes goes to leftovers.
        if let Some((_, sender)) = d.receives.get_mut(&receive_id) {
            let (dead, _) = oneshot::channel();
            *sender = dead;
        }
    }
    shared.queue(Operation::Cancel(pb::CancelOperation { receive_id }))?;
    Ok(async move { rx.await.map_err(|_| ClientError::SessionClosed) })
}

impl Drop for PendingReceive {
    fn drop(&mut self) {
        let mut back = self.ready.take().unwrap_or_default();
        if !self.done {
            // Withdraw the receive first: after this, a delivery that still comes goes to
            // the leftovers; then keep one that already arrived.
            if let Ok(ack) = cancel_receive(&self.shared, self.receive_id) {
                drop(ack);
            }
            if let Some(mut rx) = self.rx.take()
                && let Ok(Answer::Delivery(delivery)) = rx.try_recv()
            {
                back = to_received(delivery);
            }
        }
        if back.is_empty() {
            return;
        }
        let mut d = self.shared.dispatch.lock();
        for m in back.into_iter().rev() {
            d.leftovers
                .entry(m.channel.to_string())
                .or_default()
                .push_front(m);
        }
    }
}

fn to_received(delivery: pb::Delivery) -> Vec<Received> {
    let channel: Arc<str> = delivery.channel.into();
    delivery
        .messages
        .into_iter()
        .map(|m| Received {
            channel: channel.clone(),
            payload: m.message,
            expires_in: Duration::from_millis(m.expires_in_ms),
        })
        .collect()
}

/// Hands `delivery` to the receive waiting on `tx`; keeps its messages for the channel's
/// next receive when that one is gone.
fn answer(d: &mut Dispatch, tx: oneshot::Sender<Answer>, delivery: pb::Delivery) {
    if let Err(Answer::Delivery(delivery)) = tx.send(Answer::Delivery(delivery)) {
        let channel = delivery.channel.clone();
        d.leftovers
            .entry(channel)
            .or_default()
            .extend(to_received(delivery));
    }
}

fn dispatch(shared: &SessionShared, events: Vec<pb::SessionEvent>) {
    let mut d = shared.dispatch.lock();
    for event in events.into_iter().filter_map(|e| e.event) {
        match event {
            session_event::Event::Delivery(delivery) => {
                if let Some((_, tx)) = d.receives.remove(&delivery.receive_id) {
                    answer(&mut d, tx, delivery);
                }
            }
            session_event::Event::SharedDelivery(one) => {
                for receive_id in one.receive_ids {
                    if let Some((channel, tx)) = d.receives.remove(&receive_id) {
                        let delivery = pb::Delivery {
                            receive_id,
                            channel,
                            messages: vec![pb::DeliveredMessage {
                                message: one.message.clone(),
                                expires_in_ms: one.expires_in_ms,
                            }],
                        };
                        answer(&mut d, tx, delivery);
                    }
                }
            }
            session_event::Event::ReceiveFailed(failed) => {
                if let Some((_, tx)) = d.receives.remove(&failed.receive_id) {
                    let _ = tx.send(Answer::Failed(failed.error.unwrap_or_default()));
                }
            }
            session_event::Event::Result(result) => {
                let position = match d.results.front() {
                    Some((id, _)) if *id == result.request_id => Some(0),
                    _ => d
                        .results
                        .iter()
                        .position(|(id, _)| *id == result.request_id),
                };
                if let Some((_, tx)) = position.and_then(|p| d.results.remove(p)) {
                    let _ = tx.send(result);
                }
            }
            session_event::Event::Cancelled(cancelled) => {
                if cancelled.was_pending {
                    d.receives.remove(&cancelled.receive_id);
                }
                if let Some(waiting) = d.cancels.get_mut(&cancelled.receive_id) {
                    if let Some(tx) = waiting.pop_front() {
                        let _ = tx.send(cancelled.was_pending);
                    }
                    if waiting.is_empty() {
                        d.cancels.remove(&cancelled.receive_id);
                    }
                }
            }
            session_event::Event::Closing(closing) => d.closing = Some(closing.reason),
            session_event::Event::Opened(_) => {}
        }
    }
}
