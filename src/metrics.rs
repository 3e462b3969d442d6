//! Prometheus metrics: the one list of every metric the server exports, the recorder, the
//! hub observer, the per-RPC tower layer and the HTTP endpoint (`/metrics`, `/healthz`,
//! `/readyz`).
//!
//! Names follow Prometheus' conventions: `chanlayer_` first, a base unit (`_seconds`,
//! `_bytes`) where there is one, `_total` on counters only. Labels take values from small
//! fixed sets (`method`, `code`, `reason`, `limit`); channel and group names never appear.
//!
//! Most values cost nothing on the hot path: the gauges and most counters are read from
//! [`Hub::stats`] when Prometheus scrapes. Only what the hub cannot count itself is
//! recorded as it happens, through registered handles: the delivery latency and group
//! fan-out histograms ([`HubMetrics`], the hub's [`Observer`]) and the per-RPC counters
//! and latencies ([`RpcMetricsLayer`]).

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tonic::{Code, body::Body};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    config::ServeArgs,
    core,
    hub::{Hub, Observer, OperationCounts},
};

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Its name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its unit.
    pub unit: Unit,
    /// Its labels.
    pub labels: &'static [&'static str],
    /// What it measures.
    pub help: &'static str,
}

macro_rules! metrics_list {
    ($( $(#[$doc:meta])* $ident:ident = $name:literal, $kind:ident, $unit:ident, [$($label:literal),*], $help:literal; )*) => {
        $( $(#[$doc])* pub const $ident: &str = $name; )*
        /// Every metric the server exports, with its description.
        pub const METRICS: &[Metric] = &[
            $( Metric { name: $name, kind: Kind::$kind, unit: Unit::$unit, labels: &[$($label),*], help: $help }, )*
        ];
    };
}

metrics_list! {
    /// Messages accepted by send and group send (one per member reached).
    MESSAGES_SENT = "chanlayer_messages_sent_total", Counter, Count, [],
        "Messages accepted by send and group_send, one per member a group message reached.";
    /// Messages handed to a receive.
    MESSAGES_DELIVERED = "chanlayer_messages_delivered_total", Counter, Count, [],
        "Messages delivered to a receive.";
    /// Messages lost, by reason.
    MESSAGES_DROPPED = "chanlayer_messages_dropped_total", Counter, Count, ["reason"],
        "Messages dropped unread, by reason: channel_full, expired, session_gone, flushed.";
    /// Time from send to delivery.
    DELIVERY_LATENCY = "chanlayer_delivery_latency_seconds", Histogram, Seconds, [],
        "Time from a message's send to its delivery to a receive.";
    /// Group send calls.
    GROUP_SENDS = "chanlayer_group_sends_total", Counter, Count, [],
        "group_send calls that reached the engine.";
    /// Members one group send reached or dropped.
    GROUP_SEND_FANOUT = "chanlayer_group_send_fanout", Histogram, Count, [],
        "Members of the group at each group_send (delivered plus dropped).";
    /// Memberships.
    MEMBERSHIPS = "chanlayer_group_memberships", Gauge, Count, [],
        "Group memberships.";
    /// Memberships removed other than by group_discard.
    MEMBERSHIPS_REMOVED = "chanlayer_group_memberships_removed_total", Counter, Count, ["reason"],
        "Memberships removed without group_discard, by reason: expired, session_gone.";
    /// Groups.
    GROUPS = "chanlayer_groups", Gauge, Count, [],
        "Groups with members.";
    /// Channels.
    CHANNELS = "chanlayer_channels", Gauge, Count, [],
        "Channels with queued messages or waiting receives.";
    /// Queued messages.
    QUEUED_MESSAGES = "chanlayer_queued_messages", Gauge, Count, [],
        "Messages queued in channels (expired ones until the sweeper frees them).";
    /// Their bytes.
    QUEUED_BYTES = "chanlayer_queued_bytes", Gauge, Bytes, [],
        "Payload bytes of the queued messages.";
    /// Pending receives.
    PENDING_RECEIVES = "chanlayer_pending_receives", Gauge, Count, [],
        "Receives waiting for a message.";
    /// Sessions by state.
    SESSIONS = "chanlayer_sessions", Gauge, Count, ["state"],
        "Sessions by state: open (with a stream) or detached (awaiting resume).";
    /// Sessions opened.
    SESSIONS_OPENED = "chanlayer_sessions_opened_total", Counter, Count, ["kind"],
        "Session streams opened, by kind: new or resumed.";
    /// Sessions released.
    SESSIONS_RELEASED = "chanlayer_sessions_released_total", Counter, Count, [],
        "Sessions released, on close or after their lease ran out.";
    /// Configured limits.
    LIMIT = "chanlayer_limit", Gauge, Count, ["limit"],
        "Configured limits: message_bytes, pending_receives_per_session, sessions, channels_per_namespace, groups_per_namespace, members_per_group, namespaces.";
    /// Refusals because of a limit.
    LIMIT_HITS = "chanlayer_limit_hits_total", Counter, Count, ["limit"],
        "Calls refused because a limit was reached, by limit (see chanlayer_limit).";
    /// RPCs finished.
    RPC_HANDLED = "chanlayer_grpc_server_handled_total", Counter, Count, ["method", "code"],
        "gRPC calls finished, unary and streaming, by method and status code.";
    /// Unary RPC latency.
    RPC_LATENCY = "chanlayer_grpc_server_handling_seconds", Histogram, Seconds, ["method", "code"],
        "Time to answer a unary gRPC call, by method and status code.";
    /// Streams' lifetime.
    STREAM_DURATION = "chanlayer_grpc_server_stream_duration_seconds", Histogram, Seconds, ["method", "code"],
        "Lifetime of a streaming gRPC call, by method and status code.";
    /// Session frames' handling time.
    SESSION_FRAME_LATENCY = "chanlayer_session_frame_handling_seconds", Histogram, Seconds, [],
        "Time to apply the operations of one frame received on a Session stream.";
    /// Session operations.
    SESSION_OPERATIONS = "chanlayer_session_operations_total", Counter, Count, ["op"],
        "Operations received on Session streams, by op: receive, cancel, send, group_add, group_discard, group_send, close.";
    /// Session operations refused.
    SESSION_ERRORS = "chanlayer_session_errors_total", Counter, Count, ["code", "reason"],
        "Operations and receives of Session streams answered with an error inside the stream, by status code and ErrorInfo reason.";
    /// Frames received on streams.
    STREAM_RECEIVED = "chanlayer_grpc_server_stream_messages_received_total", Counter, Count, ["method"],
        "Frames (gRPC messages) received on streaming calls, by method.";
    /// Frames sent on streams.
    STREAM_SENT = "chanlayer_grpc_server_stream_messages_sent_total", Counter, Count, ["method"],
        "Frames (gRPC messages) sent on streaming calls, by method.";
    /// Bytes received.
    RECEIVED_BYTES = "chanlayer_grpc_server_received_bytes_total", Counter, Bytes, ["method"],
        "Bytes of gRPC messages received, headers of the framing included, by method.";
    /// Bytes sent.
    SENT_BYTES = "chanlayer_grpc_server_sent_bytes_total", Counter, Bytes, ["method"],
        "Bytes of gRPC messages sent, headers of the framing included, by method.";
    /// Refused for authentication.
    AUTH_FAILURES = "chanlayer_auth_failures_total", Counter, Count, ["reason"],
        "Calls refused as UNAUTHENTICATED, by reason: missing or invalid token.";
    /// Readiness.
    READY = "chanlayer_ready", Gauge, Count, [],
        "1 while the server accepts calls, 0 while it drains.";
    /// Uptime.
    UPTIME = "chanlayer_uptime_seconds", Gauge, Seconds, [],
        "Time since the server started.";
    /// Build information.
    BUILD_INFO = "chanlayer_build_info", Gauge, Count, ["version"],
        "Always 1; the version label says which build runs.";
}

/// Buckets of the latency histograms, in seconds: 50 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Buckets of the streams' lifetimes, in seconds: 1 s to a day.
const STREAM_BUCKETS: &[f64] = &[
    1.0,
    10.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86400.0,
];

/// Buckets of the group fan-out, in members.
const FANOUT_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0, 100000.0,
];

/// Describes every metric to the installed recorder.
pub fn describe() {
    for m in METRICS {
        match m.kind {
            Kind::Counter => describe_counter!(m.name, m.unit, m.help),
            Kind::Gauge => describe_gauge!(m.name, m.unit, m.help),
            Kind::Histogram => describe_histogram!(m.name, m.unit, m.help),
        }
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(RPC_LATENCY.into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(STREAM_DURATION.into()), STREAM_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(GROUP_SEND_FANOUT.into()),
                        FANOUT_BUCKETS,
                    )
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; chanlayer's is unused");
            }
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// Sets the `chanlayer_limit` gauges from the configuration.
pub fn record_limits(args: &ServeArgs) {
    let limits = [
        ("message_bytes", args.max_message_bytes),
        ("pending_receives_per_session", args.max_pending_receives),
        ("sessions", args.max_sessions),
        ("channels_per_namespace", args.max_channels_per_namespace),
        ("groups_per_namespace", args.max_groups_per_namespace),
        ("members_per_group", args.max_members_per_group),
        ("namespaces", args.max_namespaces),
    ];
    for (limit, value) in limits {
        gauge!(LIMIT, "limit" => limit).set(value as f64);
    }
}

/// Copies the hub's counters and gauges into the recorder (at each scrape).
pub fn refresh(hub: &Hub, ready: bool) {
    let s = hub.stats();
    let c = &s.core;
    counter!(MESSAGES_SENT).absolute(c.sent_total);
    counter!(MESSAGES_DELIVERED).absolute(s.delivered_total);
    for (reason, value) in [
        ("channel_full", c.dropped_channel_full_total),
        ("expired", c.dropped_expired_total),
        ("session_gone", c.dropped_session_gone_total),
        ("flushed", c.dropped_flushed_total),
    ] {
        counter!(MESSAGES_DROPPED, "reason" => reason).absolute(value);
    }
    counter!(MEMBERSHIPS_REMOVED, "reason" => "expired").absolute(c.memberships_expired_total);
    counter!(MEMBERSHIPS_REMOVED, "reason" => "session_gone")
        .absolute(c.memberships_released_total);
    gauge!(MEMBERSHIPS).set(c.memberships as f64);
    gauge!(GROUPS).set(c.groups as f64);
    gauge!(CHANNELS).set(c.channels as f64);
    gauge!(QUEUED_MESSAGES).set(c.queued_messages as f64);
    gauge!(QUEUED_BYTES).set(c.queued_bytes as f64);
    gauge!(PENDING_RECEIVES).set(c.waiting_receives as f64);
    gauge!(SESSIONS, "state" => "open").set(s.sessions_open as f64);
    gauge!(SESSIONS, "state" => "detached").set(s.sessions_detached as f64);
    counter!(SESSIONS_OPENED, "kind" => "new").absolute(s.sessions_opened_total);
    counter!(SESSIONS_OPENED, "kind" => "resumed").absolute(s.sessions_resumed_total);
    counter!(SESSIONS_RELEASED).absolute(s.sessions_released_total);
    gauge!(UPTIME).set(s.uptime.as_secs_f64());
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}

/// A histogram with fixed buckets kept in atomics: recording is a search over the
/// bounds and three relaxed additions, cheap enough for once per delivered message. It is
/// rendered beside the recorder's output.
pub struct AtomicHistogram {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    /// One count per bound (not cumulative) and one for +Inf.
    buckets: Box<[std::sync::atomic::AtomicU64]>,
    /// The sum, in nanoseconds.
    sum_nanos: std::sync::atomic::AtomicU64,
}

impl AtomicHistogram {
    fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Self {
        Self {
            name,
            help,
            bounds,
            buckets: (0..=bounds.len()).map(|_| Default::default()).collect(),
            sum_nanos: Default::default(),
        }
    }

    /// Records a duration.
    pub fn record(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let index = self.bounds.partition_point(|&b| b < seconds);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            value.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Appends it to a Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let name = self.name;
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(self.buckets.iter()) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
        out.push('\n');
    }
}

/// The hub's observer: records what the hub does not count itself, through handles
/// registered once.
pub struct HubMetrics {
    delivery_latency: AtomicHistogram,
    frame_latency: AtomicHistogram,
    group_sends: Counter,
    fanout: Histogram,
    /// One counter per operation kind, in the order of [`OPERATION_KINDS`].
    operations: [Counter; 7],
}

/// The `op` label values of `chanlayer_session_operations_total`.
const OPERATION_KINDS: [&str; 7] = [
    "receive",
    "cancel",
    "send",
    "group_add",
    "group_discard",
    "group_send",
    "close",
];

impl HubMetrics {
    /// Registers the handles with the installed recorder.
    pub fn new() -> Self {
        let help = |name: &str| {
            METRICS
                .iter()
                .find(|m| m.name == name)
                .map_or("", |m| m.help)
        };
        Self {
            delivery_latency: AtomicHistogram::new(
                DELIVERY_LATENCY,
                help(DELIVERY_LATENCY),
                LATENCY_BUCKETS,
            ),
            frame_latency: AtomicHistogram::new(
                SESSION_FRAME_LATENCY,
                help(SESSION_FRAME_LATENCY),
                LATENCY_BUCKETS,
            ),
            group_sends: counter!(GROUP_SENDS),
            fanout: histogram!(GROUP_SEND_FANOUT),
            operations: OPERATION_KINDS.map(|op| counter!(SESSION_OPERATIONS, "op" => op)),
        }
    }

    /// Appends what the recorder does not hold to a text exposition.
    pub fn render(&self, out: &mut String) {
        self.delivery_latency.render(out);
        self.frame_latency.render(out);
    }
}

impl Default for HubMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for HubMetrics {
    fn delivered(&self, latency: Duration) {
        self.delivery_latency.record(latency);
    }

    fn group_sent(&self, delivered: usize, dropped: usize) {
        self.group_sends.increment(1);
        self.fanout.record((delivered + dropped) as f64);
    }

    fn session_released(&self, _expired: bool, _report: &core::ReleaseReport) {}

    fn frame_handled(&self, operations: &OperationCounts, elapsed: Duration) {
        self.frame_latency.record(elapsed);
        let counts = [
            operations.receive,
            operations.cancel,
            operations.send,
            operations.group_add,
            operations.group_discard,
            operations.group_send,
            operations.close,
        ];
        for (counter, count) in self.operations.iter().zip(counts) {
            if count > 0 {
                counter.increment(u64::from(count));
            }
        }
    }

    fn refused(&self, error: &crate::hub::HubError) {
        let (code, reason) = crate::grpc::status::classify(error);
        counter!(SESSION_ERRORS, "code" => code_label(code), "reason" => reason).increment(1);
        if code == Code::ResourceExhausted
            && let Some(limit) = limit_label(reason, &error.to_string())
        {
            counter!(LIMIT_HITS, "limit" => limit).increment(1);
        }
    }
}

/// Whether the server accepts calls; `/readyz` and `chanlayer_ready` report it.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Sets it.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Reads it.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct HttpState {
    hub: Arc<Hub>,
    hub_metrics: Arc<HubMetrics>,
    handle: PrometheusHandle,
    ready: Readiness,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the process ends, and
/// keeps the recorder's histograms drained between scrapes.
pub fn spawn_http(
    listener: TcpListener,
    hub: Arc<Hub>,
    hub_metrics: Arc<HubMetrics>,
    handle: PrometheusHandle,
    ready: Readiness,
) -> tokio::task::JoinHandle<()> {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(HttpState {
            hub,
            hub_metrics,
            handle,
            ready,
        });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics endpoint failed");
        }
    })
}

/// Binds the metrics listener; logs and returns `None` when the address is taken, so that
/// the channel layer runs even when its metrics cannot.
pub async fn bind(addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "metrics listening");
            }
            Some(listener)
        }
        Err(error) => {
            tracing::error!(%addr, %error, "cannot serve metrics; continuing without them");
            None
        }
    }
}

async fn render(State(state): State<HttpState>) -> impl IntoResponse {
    refresh(&state.hub, state.ready.get());
    let mut text = state.handle.render();
    state.hub_metrics.render(&mut text);
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.ready.get() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    }
}

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
pub fn code_label(code: Code) -> &'static str {
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

/// The `limit` label of a refusal's `ErrorInfo` reason and message, when a limit caused it.
fn limit_label(reason: &str, message: &str) -> Option<&'static str> {
    match reason {
        "MESSAGE_TOO_LARGE" => Some("message_bytes"),
        "TOO_MANY_PENDING_RECEIVES" => Some("pending_receives_per_session"),
        "TOO_MANY_SESSIONS" => Some("sessions"),
        "LIMIT_EXCEEDED" if message.contains("members in group") => Some("members_per_group"),
        "LIMIT_EXCEEDED" if message.contains("namespaces") => Some("namespaces"),
        "LIMIT_EXCEEDED" if message.ends_with(" groups") => Some("groups_per_namespace"),
        "LIMIT_EXCEEDED" => Some("channels_per_namespace"),
        _ => None,
    }
}

/// Counts a refusal that a limit caused, from the status the server answered.
fn count_limit_hit(status: &tonic::Status) {
    use tonic_types::StatusExt;
    if status.code() != Code::ResourceExhausted {
        return;
    }
    if let Some(info) = status.get_details_error_info()
        && let Some(limit) = limit_label(&info.reason, status.message())
    {
        counter!(LIMIT_HITS, "limit" => limit).increment(1);
    }
}

/// A tower layer that counts and times every gRPC call by method and status code, and
/// counts the frames and bytes of each. `None` turns it into a pass-through.
#[derive(Clone, Default)]
pub struct RpcMetricsLayer {
    enabled: bool,
}

impl RpcMetricsLayer {
    /// The layer; a pass-through unless `enabled`.
    pub fn new(enabled: bool) -> Self {
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
pub struct RpcMetrics<S> {
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
    fn names_are_prometheus_native() {
        let mut seen = std::collections::HashSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("chanlayer_"), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            if m.unit == Unit::Seconds {
                assert!(m.name.ends_with("_seconds"), "{}", m.name);
            }
            for label in m.labels {
                assert!(
                    [
                        "method", "code", "reason", "limit", "state", "kind", "version", "op"
                    ]
                    .contains(label),
                    "{}: unbounded label {label}",
                    m.name
                );
            }
        }
    }

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
    fn limits_are_named() {
        assert_eq!(limit_label("MESSAGE_TOO_LARGE", ""), Some("message_bytes"));
        assert_eq!(
            limit_label(
                "LIMIT_EXCEEDED",
                "namespace \"a\" has reached its limit of 3 groups"
            ),
            Some("groups_per_namespace")
        );
        assert_eq!(limit_label("CHANNEL_FULL", ""), None);
    }

    #[test]
    fn the_recorder_renders_described_histograms_with_buckets() {
        let handle = install();
        histogram!(RPC_LATENCY, "method" => "m", "code" => "OK").record(0.001);
        let text = handle.render();
        assert!(
            text.contains("chanlayer_grpc_server_handling_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains("# HELP chanlayer_grpc_server_handling_seconds"),
            "{text}"
        );
    }

    #[test]
    fn atomic_histograms_render_cumulative_buckets() {
        let h = AtomicHistogram::new("x_seconds", "help", &[0.001, 0.01]);
        h.record(Duration::from_micros(500));
        h.record(Duration::from_millis(1));
        h.record(Duration::from_millis(5));
        h.record(Duration::from_secs(1));
        let mut text = String::new();
        h.render(&mut text);
        assert!(
            text.contains("x_seconds_bucket{le=\"0.001\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("x_seconds_bucket{le=\"0.01\"} 3\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("x_seconds_count 4\n"), "{text}");
        assert!(text.contains("x_seconds_sum 1.0065\n"), "{text}");
    }
}
