//! The Session stream: the open handshake, then one stream of server frames that applies
//! each inbound frame's operations in order and drains the session's outbox into frames.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use futures_util::Stream;
use tonic::{Code, Response, Status, Streaming};

use crate::{
    grpc::{
        ChannelLayerGrpc, FRAME_TARGET_BYTES, OPEN_TIMEOUT, SessionStream,
        convert::{self, CapacityCache},
        frame::{opened_event, to_frame},
        guard::catch,
        status::{inbound_failed, invalid_argument, status},
    },
    hub::{Batch, Observer, OpenRequest, OperationCounts, Outbox, SessionHandle},
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

        let mut reader = SessionReader {
            capacities: Arc::clone(&self.capacities),
            observer: Arc::clone(self.hub.observer()),
            abort: None,
        };
        let outbox = handle.outbox();
        let first_ops: Vec<_> = operations.collect();
        let mut abort = None;
        let mut ending = None;
        let reading = match reader.apply(&mut handle, first_ops) {
            Flow::Continue => {
                handle.flush_acks();
                Some(Reading {
                    reader,
                    handle,
                    inbound,
                })
            }
            Flow::Closed => None,
            Flow::Abort => {
                abort = reader.abort.take();
                outbox.finish(None);
                ending = Some(handle);
                None
            }
        };
        Ok(Response::new(Box::pin(SessionFrames {
            opened: Some(opened_frame),
            reading,
            abort,
            ending,
            outbox,
            shared_deliveries,
            max_frame_bytes: self.max_frame_bytes.min(FRAME_TARGET_BYTES),
            done: false,
        })))
    }
}

/// The server's side of one Session stream, polled by the stream's task: it reads the
/// client's frames and applies their operations in order, then writes what the session's
/// outbox holds (the answers to those operations, deliveries, results from other nodes)
/// as frames.
///
/// Reading and writing share one task, so a client's frame costs one wakeup of it: the
/// frame's answers are taken from the outbox in the poll that applied it. Events pushed by
/// other sessions wake it through the outbox. The stream is polled for its next frame only
/// while the client has room for it (HTTP/2 flow control), so a client that stops reading
/// its answers is no longer read either, and nothing piles up in its outbox.
struct SessionFrames {
    /// The `opened` frame, written first.
    opened: Option<pb::SessionResponse>,
    /// The client's side, until it ends.
    reading: Option<Reading>,
    /// Why the stream ends, if not with OK.
    abort: Option<Status>,
    /// The session once the client's side has ended, detached when the outbox is drained
    /// (and when the stream is dropped, if that comes first).
    ending: Option<SessionHandle>,
    outbox: Arc<Outbox>,
    shared_deliveries: bool,
    max_frame_bytes: usize,
    /// The stream has ended.
    done: bool,
}

/// The client's side of a Session stream.
struct Reading {
    reader: SessionReader,
    handle: SessionHandle,
    inbound: Streaming<pb::SessionRequest>,
}

/// How the client's side ended.
enum ReadEnd {
    /// The client closed the session (its handle is released).
    Closed,
    /// The client ended or broke its side of the stream.
    Ended,
    /// An operation failed the stream (the abort status is set).
    Aborted,
}

/// Frames applied in one poll before the outbox is drained.
const FRAMES_PER_POLL: usize = 16;

impl Stream for SessionFrames {
    type Item = Result<pb::SessionResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(frame) = this.opened.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(reading) = &mut this.reading
            && let Poll::Ready(end) = reading.poll_frames(cx, &this.outbox)
        {
            let Reading {
                mut reader, handle, ..
            } = this.reading.take().expect("reading");
            this.abort = reader.abort.take();
            match end {
                ReadEnd::Closed => {}
                // Detached now: the deliveries not yet written go back to their
                // channels, for the session's next stream or another receiver.
                ReadEnd::Ended => handle.end(),
                // The client is still there: what is queued (the answers to the
                // operations before the failure) goes out before the status, then the
                // session is detached.
                ReadEnd::Aborted => {
                    this.outbox.finish(None);
                    this.ending = Some(handle);
                }
            }
        }
        match this.outbox.poll_batch(cx, this.max_frame_bytes) {
            Poll::Ready(Batch::Events(events)) => {
                Poll::Ready(Some(Ok(to_frame(events, this.shared_deliveries))))
            }
            Poll::Ready(Batch::End) => {
                this.done = true;
                if let Some(handle) = this.ending.take() {
                    handle.end();
                }
                Poll::Ready(this.abort.take().map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SessionFrames {
    /// The server drops a stream the client reset (as grpc.aio does to a stream whose read
    /// is cancelled, when `asyncio.run` ends) without reading it further, so the frames the
    /// client wrote before the reset may still be buffered: they are applied now, as they
    /// would have been had the server read them sooner, and their answers go nowhere. A
    /// send that left the client before the reset is applied, whatever the race.
    fn drop(&mut self) {
        if let Some(reading) = &mut self.reading {
            reading.apply_buffered(&self.outbox);
        }
    }
}

impl Reading {
    /// Applies the client's frames that have arrived, up to [`FRAMES_PER_POLL`], with the
    /// stream's `outbox` corked meanwhile; ready when the client's side is over.
    fn poll_frames(&mut self, cx: &mut Context<'_>, outbox: &Outbox) -> Poll<ReadEnd> {
        for _ in 0..FRAMES_PER_POLL {
            let frame = match Pin::new(&mut self.inbound).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) => return Poll::Ready(ReadEnd::Ended),
                Poll::Ready(Some(Err(error))) => {
                    // A frame too large or undecodable, or a stream the client broke off:
                    // the stream ends with a status that says which, never a silent OK.
                    tracing::debug!(%error, "session stream broke");
                    self.reader.fail(inbound_failed(&error));
                    return Poll::Ready(ReadEnd::Ended);
                }
            };
            match self.apply_frame(frame, outbox) {
                Flow::Continue => {}
                Flow::Closed => return Poll::Ready(ReadEnd::Closed),
                Flow::Abort => return Poll::Ready(ReadEnd::Aborted),
            }
        }
        // More frames may have arrived: come back once this poll's answers are taken.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Applies the client's frames already received, without waiting for more: those of
    /// a stream that is being dropped. At most the stream's receive window is buffered.
    fn apply_buffered(&mut self, outbox: &Outbox) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut applied = 0usize;
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut self.inbound).poll_next(&mut cx) {
            applied += 1;
            if !matches!(self.apply_frame(frame, outbox), Flow::Continue) {
                break;
            }
        }
        if applied > 0 {
            tracing::debug!(
                frames = applied,
                "applied the frames of a reset session stream"
            );
        }
    }

    /// Applies one frame's operations with the stream's `outbox` corked: its answers wake
    /// nobody, the caller takes them next.
    fn apply_frame(&mut self, frame: pb::SessionRequest, outbox: &Outbox) -> Flow {
        outbox.cork();
        let flow = self.reader.apply(&mut self.handle, frame.operations);
        if let Flow::Continue = flow {
            self.handle.flush_acks();
        }
        outbox.uncork();
        flow
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

/// Applies the operations of a session's inbound frames in order.
struct SessionReader {
    capacities: Arc<CapacityCache>,
    observer: Arc<dyn Observer>,
    /// Why the stream must end, once an operation or frame broke it.
    abort: Option<Status>,
}

impl SessionReader {
    fn fail(&mut self, status: Status) -> Flow {
        self.abort = Some(status);
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
            // The answers of the operations before the failure go out, with the deliveries
            // already queued; the stream then ends with INTERNAL, which answers every
            // receive still pending, and the session is detached as for any ended stream,
            // so it can be resumed.
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
