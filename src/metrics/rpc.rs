//! The per-RPC tower layer: counts and times every gRPC call by method and status code,
//! counts the frames and bytes of each, and counts the refusals at a limit by the limit the
//! status's `ErrorInfo` names.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use ::metrics::{Counter, counter, histogram};
use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::{Code, body::Body};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    core::{LIMIT_METADATA_KEY, Limit},
    metrics::names::*,
};

/// The gRPC methods the server knows, as label values; anything else is `unknown`.
const METHODS: &[(&str, bool)] = &[
    ("chanlayer.v1.ChannelLayerService/Send", false),
    ("chanlayer.v1.ChannelLayerService/GroupAdd", false),
    ("chanlayer.v1.ChannelLayerService/GroupDiscard", false),
    ("chanlayer.v1.ChannelLayerService/GroupSend", false),
    ("chanlayer.v1.ChannelLayerService/Flush", false),
    ("chanlayer.v1.ChannelLayerService/GetGroup", false),
    ("chanlayer.v1.ChannelLayerService/ListGroupMembers", false),
    ("chanlayer.v1.ChannelLayerService/GetChannel", false),
    ("chanlayer.v1.ChannelLayerService/GetServerStats", false),
    ("chanlayer.v1.ChannelLayerService/Session", true),
    ("grpc.health.v1.Health/Check", false),
    ("grpc.health.v1.Health/Watch", true),
    ("grpc.health.v1.Health/List", false),
    (
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        true,
    ),
    (
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        true,
    ),
];

/// The label of a request path, and whether the method streams.
fn method_label(path: &str) -> (&'static str, bool) {
    let path = path.strip_prefix('/').unwrap_or(path);
    METHODS
        .iter()
        .find(|(m, _)| *m == path)
        .copied()
        .unwrap_or(("unknown", false))
}

/// The label of a status code: its canonical name, as grpc-go and Prometheus' gRPC
/// exporters spell it (`OK`, `NOT_FOUND`, ...).
pub(crate) fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The limit a refusal hit, as its `ErrorInfo` metadata names it (see
/// [`LIMIT_METADATA_KEY`]); never read from the message.
fn limit_of(status: &tonic::Status) -> Option<Limit> {
    use tonic_types::StatusExt;
    if status.code() != Code::ResourceExhausted {
        return None;
    }
    let info = status.get_details_error_info()?;
    Limit::from_name(info.metadata.get(LIMIT_METADATA_KEY)?)
}

/// Counts a refusal that a limit caused, from the status the server answered.
fn count_limit_hit(status: &tonic::Status) {
    if let Some(limit) = limit_of(status) {
        counter!(LIMIT_HITS, "limit" => limit.name()).increment(1);
    }
}

/// A tower layer that counts and times every gRPC call by method and status code, and
/// counts the frames and bytes of each. `None` turns it into a pass-through.
#[derive(Clone, Default)]
pub(crate) struct RpcMetricsLayer {
    enabled: bool,
}

impl RpcMetricsLayer {
    /// The layer; a pass-through unless `enabled`.
    pub(crate) fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            enabled: self.enabled,
            handles: Arc::default(),
        }
    }
}

/// Per-method handles, registered on first use; frame counters for streams only.
#[derive(Clone)]
struct MethodHandles {
    received: Option<Counter>,
    sent: Option<Counter>,
    received_bytes: Counter,
    sent_bytes: Counter,
}

/// The service of [`RpcMetricsLayer`].
#[derive(Clone)]
pub(crate) struct RpcMetrics<S> {
    inner: S,
    enabled: bool,
    handles: Arc<parking_lot::Mutex<HashMap<&'static str, MethodHandles>>>,
}

impl<S> RpcMetrics<S> {
    fn handles(&self, method: &'static str, streaming: bool) -> MethodHandles {
        self.handles
            .lock()
            .entry(method)
            .or_insert_with(|| MethodHandles {
                received: streaming.then(|| counter!(STREAM_RECEIVED, "method" => method)),
                sent: streaming.then(|| counter!(STREAM_SENT, "method" => method)),
                received_bytes: counter!(RECEIVED_BYTES, "method" => method),
                sent_bytes: counter!(SENT_BYTES, "method" => method),
            })
            .clone()
    }
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for RpcMetrics<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !self.enabled {
            return Box::pin(inner.call(request));
        }
        let start = Instant::now();
        let (method, streaming) = method_label(request.uri().path());
        let handles = self.handles(method, streaming);
        let request = request.map(|body| {
            Body::new(Counted {
                inner: body,
                frames: FrameCounter::default(),
                messages: handles.received.clone(),
                bytes: handles.received_bytes.clone(),
                call: None,
            })
        });
        Box::pin(async move {
            let response = inner.call(request).await?;
            let header_status = tonic::Status::from_header_map(response.headers());
            let mut call = CallRecord {
                method,
                streaming,
                start,
                code: None,
            };
            if let Some(status) = header_status {
                // A trailers-only answer: the call failed before any message.
                count_limit_hit(&status);
                call.code = Some(status.code());
            }
            Ok(response.map(|body| {
                Body::new(Counted {
                    inner: body,
                    frames: FrameCounter::default(),
                    messages: handles.sent,
                    bytes: handles.sent_bytes,
                    call: Some(call),
                })
            }))
        })
    }
}

/// What is recorded when a response ends.
struct CallRecord {
    method: &'static str,
    streaming: bool,
    start: Instant,
    code: Option<Code>,
}

impl CallRecord {
    fn trailers(&mut self, trailers: &HeaderMap) {
        if self.code.is_none()
            && let Some(status) = tonic::Status::from_header_map(trailers)
        {
            count_limit_hit(&status);
            self.code = Some(status.code());
        }
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        // A response dropped before its status was written was cut off by the client.
        let code = code_label(self.code.unwrap_or(Code::Cancelled));
        let elapsed = self.start.elapsed().as_secs_f64();
        counter!(RPC_HANDLED, "method" => self.method, "code" => code).increment(1);
        let name = if self.streaming {
            STREAM_DURATION
        } else {
            RPC_LATENCY
        };
        histogram!(name, "method" => self.method, "code" => code).record(elapsed);
    }
}

/// Counts the gRPC messages in a body: each is a 5-byte header (a flag and a big-endian
/// length) and its payload, and HTTP/2 data frames may split or join them.
#[derive(Default)]
struct FrameCounter {
    header: [u8; 5],
    header_len: usize,
    remaining: u64,
}

impl FrameCounter {
    /// Feeds a chunk; returns how many messages started in it.
    fn feed(&mut self, mut chunk: &[u8]) -> u64 {
        let mut started = 0;
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skip = (self.remaining as usize).min(chunk.len());
                self.remaining -= skip as u64;
                chunk = &chunk[skip..];
                continue;
            }
            let take = (5 - self.header_len).min(chunk.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&chunk[..take]);
            self.header_len += take;
            chunk = &chunk[take..];
            if self.header_len == 5 {
                self.header_len = 0;
                started += 1;
                let length = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                self.remaining = u64::from(length);
            }
        }
        started
    }
}

/// A body that counts what goes through it.
struct Counted {
    inner: Body,
    frames: FrameCounter,
    messages: Option<Counter>,
    bytes: Counter,
    call: Option<CallRecord>,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.bytes.increment(data.remaining() as u64);
                if let Some(messages) = &this.messages {
                    let started = this.frames.feed(data.chunk());
                    if started > 0 {
                        messages.increment(started);
                    }
                }
            } else if let (Some(trailers), Some(call)) = (frame.trailers_ref(), &mut this.call) {
                call.trailers(trailers);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_counted_across_chunks() {
        let mut counter = FrameCounter::default();
        let mut wire = Vec::new();
        for payload in [&b"hello"[..], b"", b"a longer payload"] {
            wire.push(0);
            wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            wire.extend_from_slice(payload);
        }
        assert_eq!(FrameCounter::default().feed(&wire), 3);
        let total: u64 = wire.chunks(3).map(|c| counter.feed(c)).sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn limits_are_named_by_the_error_info_never_by_the_message() {
        use tonic_types::{ErrorDetails, StatusExt};
        let refusal = |code, reason: &str, limit: Option<&str>, message: &str| {
            let metadata: HashMap<String, String> = limit
                .map(|l| (LIMIT_METADATA_KEY.to_owned(), l.to_owned()))
                .into_iter()
                .collect();
            tonic::Status::with_error_details(
                code,
                message,
                ErrorDetails::with_error_info(reason, "chanlayer.dev", metadata),
            )
        };
        let channels = refusal(
            Code::ResourceExhausted,
            "LIMIT_EXCEEDED",
            Some("channels_per_namespace"),
            "namespace \"my-namespaces\" has reached its limit of 1 channels",
        );
        assert_eq!(limit_of(&channels), Some(Limit::ChannelsPerNamespace));
        let size = refusal(
            Code::ResourceExhausted,
            "MESSAGE_TOO_LARGE",
            Some("message_bytes"),
            "",
        );
        assert_eq!(limit_of(&size), Some(Limit::MessageBytes));
        let full = refusal(Code::ResourceExhausted, "CHANNEL_FULL", None, "namespaces");
        assert_eq!(limit_of(&full), None);
        let other = refusal(Code::InvalidArgument, "X", Some("sessions"), "");
        assert_eq!(limit_of(&other), None);
    }
}
