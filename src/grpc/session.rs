//! The Session stream: the open handshake, the reader that applies each inbound frame's
//! operations in order, and the writer that drains the session's outbox into frames.

use std::{sync::Arc, time::Duration};

use futures_util::stream;
use tonic::{Code, Response, Status, Streaming};

use crate::{
    grpc::{
        ChannelLayerGrpc, FRAME_TARGET_BYTES, OPEN_TIMEOUT, SessionStream,
        convert::{self, CapacityCache},
        frame::{opened_event, to_frame},
        guard::catch,
        status::{inbound_failed, invalid_argument, status},
    },
    hub::{Batch, Observer, OpenRequest, OperationCounts, SessionHandle},
    proto::v1::{self as pb, session_operation::Operation},
};

impl ChannelLayerGrpc {
    /// Opens a session on `inbound`, whose first frame must start with `open`, and
    /// returns the stream of server frames.
    pub(super) async fn open_session(
        &self,
        mut inbound: Streaming<pb::SessionRequest>,
    ) -> Result<Response<SessionStream>, Status> {
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
        let (mut handle, opened) = self
            .hub
            .open_session(OpenRequest {
                namespace: open.namespace,
                client_prefix: open.client_prefix,
                resume_token: open.resume_token,
            })
            .await?;
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
        let outbox = handle.outbox();
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
                Ok(Some(frame)) => {
                    // What the frame causes for this session leaves after one wakeup.
                    outbox.cork();
                    let flow = self.apply(&mut handle, frame.operations);
                    if let Flow::Continue = flow {
                        handle.flush_acks();
                    }
                    outbox.uncork();
                    match flow {
                        Flow::Continue => {}
                        Flow::Closed => return,
                        Flow::Abort => break,
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // A frame too large or undecodable, or a stream the client broke off:
                    // the stream ends with a status that says which, never a silent OK.
                    tracing::debug!(%error, "session stream broke");
                    self.fail(inbound_failed(&error));
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
        let applied = catch("applying a Session frame's operations", || {
            self.apply_operations(handle, operations, &mut counts)
        });
        self.observer.frame_handled(&counts, started.elapsed());
        match applied {
            Ok(flow) => flow,
            // The answers of the operations before the failure go out; the stream then
            // ends with INTERNAL, which answers every receive still pending, and the
            // session is detached as for any ended stream (its deliveries not yet written
            // go back to their channels), so it can be resumed.
            Err(status) => {
                handle.flush_acks();
                self.fail(status)
            }
        }
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
