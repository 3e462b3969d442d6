//! The tonic adapter: the only module that sees generated types. It validates requests,
//! converts them for the hub, and maps errors to statuses (`status`).
//!
//! One addition to the design's `Delivery{receive_id, channel, message}` answer: a stream
//! opened with `shared_deliveries` gets the deliveries one group send makes to its receives
//! as one `SharedDelivery` (the message once, then the receive ids; see `to_frame`). A
//! group send to the 10 000 members one process holds costs that process, and the server,
//! one copy of the message instead of 10 000, with a channel name each. The hub is
//! unchanged: it still queues one delivery per receive, and only the frame encoding merges.

pub mod convert;
pub mod status;

use std::{pin::Pin, sync::Arc, time::Duration};

use futures_util::{Stream, stream};
use tonic::{Code, Request, Response, Status, Streaming};

use self::{
    convert::CapacityCache,
    status::{invalid_argument, status, to_detail},
};
use crate::{
    core::Message,
    hub::{
        Batch, CloseReason, Event, Hub, Observer, OpOutcome, OpenRequest, Opened, OperationCounts,
        SessionHandle,
    },
    proto::v1::{
        self as pb, channel_layer_service_server::ChannelLayerService, session_event,
        session_operation::Operation,
    },
};

/// How long a new Session stream may take to send its `open` operation.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// How much payload a server frame carries before the rest waits for the next frame
/// (a single larger message still goes alone). Large frames cost more than they save:
/// the encoder's buffer grows by copying, and the client's decoder likewise.
const FRAME_TARGET_BYTES: usize = crate::proto::frame::FRAME_PAYLOAD;

/// The largest page of group members.
const MAX_PAGE_SIZE: usize = 10_000;

/// The service implementation.
pub struct ChannelLayerGrpc {
    hub: Arc<Hub>,
    capacities: Arc<CapacityCache>,
    max_frame_bytes: usize,
}

impl ChannelLayerGrpc {
    /// The service over `hub`; server frames carry up to `max_frame_bytes` of payload.
    pub fn new(hub: Arc<Hub>, max_frame_bytes: usize) -> Self {
        Self {
            hub,
            capacities: Arc::new(CapacityCache::default()),
            max_frame_bytes,
        }
    }
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::SessionResponse, Status>> + Send>>;

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

#[tonic::async_trait]
impl ChannelLayerService for ChannelLayerGrpc {
    async fn send(
        &self,
        request: Request<pb::SendRequest>,
    ) -> Result<Response<pb::SendResponse>, Status> {
        let r = request.into_inner();
        let delivered = self.hub.send(
            &r.namespace,
            &r.channel,
            r.message,
            convert::capacity(r.capacity),
            convert::expiry(r.expiry_ms),
        )?;
        Ok(Response::new(pb::SendResponse { delivered }))
    }

    async fn group_add(
        &self,
        request: Request<pb::GroupAddRequest>,
    ) -> Result<Response<pb::GroupAddResponse>, Status> {
        let r = request.into_inner();
        let added = self.hub.group_add(
            &r.namespace,
            &r.group,
            &r.channel,
            convert::group_expiry(r.group_expiry_seconds),
        )?;
        Ok(Response::new(pb::GroupAddResponse { added }))
    }

    async fn group_discard(
        &self,
        request: Request<pb::GroupDiscardRequest>,
    ) -> Result<Response<pb::GroupDiscardResponse>, Status> {
        let r = request.into_inner();
        let removed = self.hub.group_discard(&r.namespace, &r.group, &r.channel)?;
        Ok(Response::new(pb::GroupDiscardResponse { removed }))
    }

    async fn group_send(
        &self,
        request: Request<pb::GroupSendRequest>,
    ) -> Result<Response<pb::GroupSendResponse>, Status> {
        let r = request.into_inner();
        let rules = self.capacities.rules(r.capacity, &r.channel_capacity)?;
        let (delivered, dropped) = self.hub.group_send(
            &r.namespace,
            &r.group,
            r.message,
            &rules,
            convert::expiry(r.expiry_ms),
        )?;
        Ok(Response::new(pb::GroupSendResponse {
            delivered: delivered as u32,
            dropped: dropped as u32,
        }))
    }

    async fn flush(
        &self,
        request: Request<pb::FlushRequest>,
    ) -> Result<Response<pb::FlushResponse>, Status> {
        let r = request.into_inner();
        let report = self.hub.flush(&r.namespace)?;
        Ok(Response::new(pb::FlushResponse {
            dropped_messages: report.dropped_messages,
            removed_groups: report.removed_groups,
        }))
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::GetGroupResponse>, Status> {
        let r = request.into_inner();
        let size = self.hub.group_size(&r.namespace, &r.group)?;
        Ok(Response::new(pb::GetGroupResponse {
            group: r.group,
            member_count: size as u32,
        }))
    }

    async fn list_group_members(
        &self,
        request: Request<pb::ListGroupMembersRequest>,
    ) -> Result<Response<pb::ListGroupMembersResponse>, Status> {
        let r = request.into_inner();
        let page_size = match r.page_size as usize {
            0 => 1_000,
            n if n > MAX_PAGE_SIZE => {
                return Err(invalid_argument(
                    "INVALID_PAGE_SIZE",
                    format!("page_size {n} is larger than the maximum of {MAX_PAGE_SIZE}"),
                ));
            }
            n => n,
        };
        // The page token is the name of the last member of the previous page: member
        // names are ASCII, so it is printable and needs no encoding.
        if r.page_token.len() >= crate::core::names::MAX_NAME_LENGTH {
            return Err(invalid_argument(
                "INVALID_PAGE_TOKEN",
                "page_token is not one this server issued",
            ));
        }
        let page = self
            .hub
            .group_members(&r.namespace, &r.group, &r.page_token, page_size)?;
        let next_page_token = match (page.more, page.members.last()) {
            (true, Some((name, _))) => name.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListGroupMembersResponse {
            members: page
                .members
                .into_iter()
                .map(|(channel, left)| pb::GroupMember {
                    channel,
                    expires_in_ms: ms(left),
                })
                .collect(),
            next_page_token,
            total_size: page.total as u32,
        }))
    }

    async fn get_channel(
        &self,
        request: Request<pb::GetChannelRequest>,
    ) -> Result<Response<pb::GetChannelResponse>, Status> {
        let r = request.into_inner();
        let info = self.hub.channel_info(&r.namespace, &r.channel)?;
        Ok(Response::new(pb::GetChannelResponse {
            channel: r.channel,
            queued_messages: info.queued_messages as u32,
            queued_bytes: info.queued_bytes as u64,
            waiting_receives: info.waiting_receives as u32,
            oldest_message_age_ms: ms(info.oldest_message_age),
        }))
    }

    async fn get_server_stats(
        &self,
        _request: Request<pb::GetServerStatsRequest>,
    ) -> Result<Response<pb::GetServerStatsResponse>, Status> {
        let s = self.hub.stats();
        Ok(Response::new(pb::GetServerStatsResponse {
            uptime_seconds: s.uptime.as_secs(),
            sessions_open: s.sessions_open,
            sessions_detached: s.sessions_detached,
            pending_receives: s.core.waiting_receives,
            channels: s.core.channels,
            groups: s.core.groups,
            memberships: s.core.memberships,
            queued_messages: s.core.queued_messages,
            queued_bytes: s.core.queued_bytes,
            messages_sent_total: s.core.sent_total,
            messages_delivered_total: s.delivered_total,
            dropped_channel_full_total: s.core.dropped_channel_full_total,
            dropped_expired_total: s.core.dropped_expired_total,
            dropped_session_gone_total: s.core.dropped_session_gone_total,
            dropped_flushed_total: s.core.dropped_flushed_total,
            memberships_expired_total: s.core.memberships_expired_total,
            memberships_released_total: s.core.memberships_released_total,
        }))
    }

    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = request.into_inner();
        let first = match tokio::time::timeout(OPEN_TIMEOUT, inbound.message()).await {
            Err(_) => {
                return Err(status(
                    Code::FailedPrecondition,
                    "SESSION_NOT_OPEN",
                    "no open operation arrived within 30 seconds of the stream's start",
                ));
            }
            Ok(Err(error)) => return Err(error),
            Ok(Ok(None)) => {
                return Err(status(
                    Code::FailedPrecondition,
                    "SESSION_NOT_OPEN",
                    "the stream ended before its open operation",
                ));
            }
            Ok(Ok(Some(frame))) => frame,
        };
        let mut operations = first.operations.into_iter();
        let open = match operations.next().and_then(|op| op.operation) {
            Some(Operation::Open(open)) => open,
            _ => {
                return Err(status(
                    Code::FailedPrecondition,
                    "SESSION_NOT_OPEN",
                    "the first operation of a Session stream must be open",
                ));
            }
        };
        let client_name = open.client_name.clone();
        let shared_deliveries = open.shared_deliveries;
        let (mut handle, opened) = self.hub.open_session(OpenRequest {
            namespace: open.namespace,
            client_prefix: open.client_prefix,
            resume_token: open.resume_token,
        })?;
        tracing::debug!(
            client_prefix = %opened.client_prefix,
            resumed = opened.resumed,
            client = %client_name,
            "session opened"
        );
        let config = self.hub.config();
        let opened_frame = pb::SessionResponse {
            events: vec![opened_event(
                &opened,
                config.lease_grace,
                config.limits.max_message_bytes,
                config.max_pending_receives,
            )],
        };

        let abort: Arc<parking_lot::Mutex<Option<Status>>> = Arc::default();
        let mut reader = SessionReader {
            capacities: Arc::clone(&self.capacities),
            abort: Arc::clone(&abort),
            observer: Arc::clone(self.hub.observer()),
        };
        let outbox = handle.outbox();
        let first_ops: Vec<_> = operations.collect();
        match reader.apply(&mut handle, first_ops) {
            Flow::Continue => {
                handle.flush_acks();
                let shutdown = self.hub.shutdown_signal();
                tokio::spawn(reader.run(handle, inbound, shutdown));
            }
            Flow::Closed => {}
            Flow::Abort => handle.end(),
        }

        let max_frame_bytes = self.max_frame_bytes.min(FRAME_TARGET_BYTES);
        let events = stream::unfold(
            (Some(opened_frame), outbox, abort, false),
            move |(first, outbox, abort, done)| async move {
                if done {
                    return None;
                }
                if let Some(frame) = first {
                    return Some((Ok(frame), (None, outbox, abort, false)));
                }
                match outbox.next_batch(max_frame_bytes).await {
                    Batch::Events(events) => {
                        let frame = to_frame(events, shared_deliveries);
                        Some((Ok(frame), (None, outbox, abort, false)))
                    }
                    Batch::End => {
                        let error = abort.lock().take();
                        error.map(|status| (Err(status), (None, outbox, abort, true)))
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(events)))
    }
}

fn opened_event(
    opened: &Opened,
    lease_grace: Duration,
    max_message_bytes: usize,
    max_pending_receives: usize,
) -> pb::SessionEvent {
    pb::SessionEvent {
        event: Some(session_event::Event::Opened(pb::SessionOpened {
            client_prefix: opened.client_prefix.clone(),
            resume_token: opened.resume_token.clone(),
            resumed: opened.resumed,
            lease_grace_ms: ms(lease_grace),
            max_message_bytes: max_message_bytes as u64,
            max_pending_receives: max_pending_receives.min(u32::MAX as usize) as u32,
        })),
    }
}

/// Builds one server frame of `events`.
///
/// On a stream opened with `shared_deliveries`, consecutive one-message deliveries of the
/// same message (the members of a group that wait on this stream, as one group send left
/// them in the outbox) become one `SharedDelivery`: the message is encoded once and each
/// receive costs its id, instead of a `Delivery` with the channel name and a copy of the
/// message each. Order is kept: only neighbours merge.
fn to_frame(events: Vec<Event>, shared: bool) -> pb::SessionResponse {
    let now = tokio::time::Instant::now().into_std();
    let mut out = Vec::with_capacity(events.len());
    let mut run: Option<Run> = None;
    for event in events {
        match event {
            Event::Delivery {
                receive_id,
                channel,
                messages,
            } if shared && messages.len() == 1 => {
                let joins = match &run {
                    Some(Run::One {
                        messages: first, ..
                    }) => same_message(&first[0], &messages[0]),
                    Some(Run::Many { message, .. }) => same_message(message, &messages[0]),
                    None => false,
                };
                if joins {
                    run = run.map(|r| r.join(receive_id));
                    continue;
                }
                let one = Run::One {
                    receive_id,
                    channel,
                    messages,
                };
                if let Some(previous) = run.replace(one) {
                    out.push(previous.into_proto(now));
                }
            }
            other => {
                if let Some(previous) = run.take() {
                    out.push(previous.into_proto(now));
                }
                out.push(to_proto(other, now));
            }
        }
    }
    if let Some(last) = run {
        out.push(last.into_proto(now));
    }
    pb::SessionResponse { events: out }
}

/// Deliveries of one message in a row, as [`to_frame`] gathers them.
enum Run {
    /// One so far: it stays a plain `Delivery` unless another joins it.
    One {
        receive_id: u64,
        channel: Arc<str>,
        messages: Vec<Message>,
    },
    /// Several: a `SharedDelivery`.
    Many {
        receive_ids: Vec<u64>,
        message: Message,
    },
}

impl Run {
    /// Adds a receive the same message goes to.
    fn join(self, receive_id: u64) -> Self {
        match self {
            Self::One {
                receive_id: first,
                mut messages,
                ..
            } => Self::Many {
                receive_ids: vec![first, receive_id],
                message: messages.pop().expect("one message"),
            },
            Self::Many {
                mut receive_ids,
                message,
            } => {
                receive_ids.push(receive_id);
                Self::Many {
                    receive_ids,
                    message,
                }
            }
        }
    }

    fn into_proto(self, now: std::time::Instant) -> pb::SessionEvent {
        match self {
            Self::One {
                receive_id,
                channel,
                messages,
            } => to_proto(
                Event::Delivery {
                    receive_id,
                    channel,
                    messages,
                },
                now,
            ),
            Self::Many {
                receive_ids,
                message,
            } => pb::SessionEvent {
                event: Some(session_event::Event::SharedDelivery(pb::SharedDelivery {
                    receive_ids,
                    expires_in_ms: expires_in_ms(&message, now),
                    message: message.payload,
                })),
            },
        }
    }
}

/// True when `b` is the same message as `a`: one payload shared by a group send (not merely
/// equal bytes) with the same expiry.
fn same_message(a: &Message, b: &Message) -> bool {
    a.payload.as_ptr() == b.payload.as_ptr()
        && a.payload.len() == b.payload.len()
        && a.expires_at == b.expires_at
}

fn expires_in_ms(message: &Message, now: std::time::Instant) -> u64 {
    ms(message.expires_at.saturating_duration_since(now)).max(1)
}

fn to_proto(event: Event, now: std::time::Instant) -> pb::SessionEvent {
    let event = match event {
        Event::Delivery {
            receive_id,
            channel,
            messages,
        } => session_event::Event::Delivery(pb::Delivery {
            receive_id,
            channel: channel.to_string(),
            messages: messages
                .into_iter()
                .map(|m| pb::DeliveredMessage {
                    expires_in_ms: expires_in_ms(&m, now),
                    message: m.payload,
                })
                .collect(),
        }),
        Event::Result {
            request_id,
            outcome,
        } => {
            let mut result = pb::OperationResult {
                request_id,
                ..Default::default()
            };
            match outcome {
                Ok(OpOutcome::Sent { delivered, queued }) => {
                    result.delivered = delivered;
                    result.queued = Some(u32::try_from(queued).unwrap_or(u32::MAX));
                }
                Ok(OpOutcome::Changed(changed)) => result.changed = changed,
                Ok(OpOutcome::GroupSent { delivered, dropped }) => {
                    result.delivered_count = delivered;
                    result.dropped_count = dropped;
                }
                Err(error) => result.error = Some(to_detail(&error)),
            }
            session_event::Event::Result(result)
        }
        Event::ReceiveFailed { receive_id, error } => {
            session_event::Event::ReceiveFailed(pb::ReceiveFailed {
                receive_id,
                error: Some(to_detail(&error)),
            })
        }
        Event::Cancelled {
            receive_id,
            was_pending,
        } => session_event::Event::Cancelled(pb::ReceiveCancelled {
            receive_id,
            was_pending,
        }),
        Event::Closing(reason) => session_event::Event::Closing(pb::SessionClosing {
            reason: match reason {
                CloseReason::Shutdown => pb::SessionCloseReason::Shutdown,
                CloseReason::ClientClose => pb::SessionCloseReason::ClientClose,
                CloseReason::ResumedElsewhere => pb::SessionCloseReason::ResumedElsewhere,
            } as i32,
        }),
    };
    pb::SessionEvent { event: Some(event) }
}

/// What reading a frame decided.
enum Flow {
    /// Keep reading.
    Continue,
    /// The client closed the session.
    Closed,
    /// The stream is broken; the abort status is set.
    Abort,
}

/// Reads a session's inbound frames and applies their operations in order.
struct SessionReader {
    capacities: Arc<CapacityCache>,
    abort: Arc<parking_lot::Mutex<Option<Status>>>,
    observer: Arc<dyn Observer>,
}

impl SessionReader {
    async fn run(
        mut self,
        mut handle: SessionHandle,
        mut inbound: Streaming<pb::SessionRequest>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut shutting_down = false;
        loop {
            let frame = if shutting_down {
                // Keep reading until the client ends the stream, but not for long.
                match tokio::time::timeout(Duration::from_secs(5), inbound.message()).await {
                    Ok(frame) => frame,
                    Err(_) => break,
                }
            } else {
                tokio::select! {
                    frame = inbound.message() => frame,
                    _ = shutdown.wait_for(|down| *down) => {
                        shutting_down = true;
                        continue;
                    }
                }
            };
            match frame {
                Ok(Some(frame)) => match self.apply(&mut handle, frame.operations) {
                    Flow::Continue => handle.flush_acks(),
                    Flow::Closed => return,
                    Flow::Abort => break,
                },
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(%error, "session stream broke");
                    break;
                }
            }
        }
        handle.end();
    }

    fn fail(&self, status: Status) -> Flow {
        *self.abort.lock() = Some(status);
        Flow::Abort
    }

    /// Applies one frame's operations and reports the frame to the observer.
    fn apply(&mut self, handle: &mut SessionHandle, operations: Vec<pb::SessionOperation>) -> Flow {
        let started = std::time::Instant::now();
        let mut counts = OperationCounts::default();
        let flow = self.apply_operations(handle, operations, &mut counts);
        self.observer.frame_handled(&counts, started.elapsed());
        flow
    }

    fn apply_operations(
        &mut self,
        handle: &mut SessionHandle,
        operations: Vec<pb::SessionOperation>,
        counts: &mut OperationCounts,
    ) -> Flow {
        let mut operations = operations.into_iter();
        while let Some(op) = operations.next() {
            match op.operation {
                Some(Operation::Receive(r)) => {
                    counts.receive += 1;
                    handle.receive(r.receive_id, &r.channel, (r.max_messages as usize).max(1));
                }
                Some(Operation::Cancel(c)) => {
                    counts.cancel += 1;
                    handle.cancel(c.receive_id);
                }
                Some(Operation::Send(s)) => {
                    counts.send += 1;
                    handle.send(
                        s.request_id,
                        &s.channel,
                        s.message,
                        convert::capacity(s.capacity),
                        convert::expiry(s.expiry_ms),
                    );
                }
                Some(Operation::GroupAdd(g)) => {
                    counts.group_add += 1;
                    handle.group_add(
                        g.request_id,
                        &g.group,
                        &g.channel,
                        convert::group_expiry(g.group_expiry_seconds),
                    );
                }
                Some(Operation::GroupDiscard(g)) => {
                    counts.group_discard += 1;
                    handle.group_discard(g.request_id, &g.group, &g.channel);
                }
                Some(Operation::GroupSend(g)) => {
                    counts.group_send += 1;
                    match self.capacities.rules(g.capacity, &g.channel_capacity) {
                        Ok(rules) => handle.group_send(
                            g.request_id,
                            &g.group,
                            g.message,
                            &rules,
                            convert::expiry(g.expiry_ms),
                        ),
                        Err(error) => handle.fail(g.request_id, error),
                    }
                }
                Some(Operation::Close(_)) => {
                    counts.close += 1;
                    // Operations after close are not served.
                    let ignored = operations.count();
                    if ignored > 0 {
                        tracing::debug!(ignored, "operations after close ignored");
                    }
                    handle.close();
                    return Flow::Closed;
                }
                Some(Operation::Open(_)) => {
                    handle.flush_acks();
                    return self.fail(status(
                        Code::FailedPrecondition,
                        "SESSION_ALREADY_OPEN",
                        "open may only be the first operation of a Session stream",
                    ));
                }
                None => {
                    handle.flush_acks();
                    return self.fail(invalid_argument(
                        "UNKNOWN_OPERATION",
                        "a session operation has no operation this server knows; \
                         is the client newer than the server?",
                    ));
                }
            }
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;

    fn delivery(receive_id: u64, message: &Message) -> Event {
        Event::Delivery {
            receive_id,
            channel: format!("c{receive_id}").into(),
            messages: vec![message.clone()],
        }
    }

    fn kinds(frame: &pb::SessionResponse) -> Vec<String> {
        frame
            .events
            .iter()
            .map(|e| match e.event.as_ref().expect("an event") {
                session_event::Event::Delivery(d) => format!("delivery {}", d.receive_id),
                session_event::Event::SharedDelivery(s) => format!("shared {:?}", s.receive_ids),
                session_event::Event::Result(r) => format!("result {}", r.request_id),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn only_neighbouring_deliveries_of_one_message_merge() {
        let now = Instant::now();
        let expiry = Duration::from_secs(60);
        let group = Message::new(Bytes::from_static(b"group"), now, expiry);
        // Equal bytes, but another message.
        let equal = Message::new(Bytes::copy_from_slice(b"group"), now, expiry);
        let events = || {
            vec![
                delivery(1, &group),
                delivery(2, &group),
                delivery(3, &group),
                Event::Result {
                    request_id: 9,
                    outcome: Ok(OpOutcome::Changed(true)),
                },
                delivery(4, &group),
                delivery(5, &equal),
                delivery(6, &equal),
            ]
        };
        assert_eq!(
            kinds(&to_frame(events(), true)),
            [
                "shared [1, 2, 3]",
                "result 9",
                "delivery 4",
                "shared [5, 6]"
            ]
        );
        assert_eq!(
            kinds(&to_frame(events(), false)),
            [
                "delivery 1",
                "delivery 2",
                "delivery 3",
                "result 9",
                "delivery 4",
                "delivery 5",
                "delivery 6"
            ]
        );
        let frame = to_frame(events(), true);
        let Some(session_event::Event::Delivery(alone)) = &frame.events[2].event else {
            panic!("a lone delivery stays a delivery");
        };
        assert_eq!(&*alone.channel, "c4");
        assert_eq!(alone.messages[0].message, Bytes::from_static(b"group"));
    }
}
