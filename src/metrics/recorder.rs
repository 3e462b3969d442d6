//! The Prometheus recorder, installed once per process with the histograms' buckets, the
//! `chanlayer_limit` gauges, and the values read from the hub at each scrape.

use std::sync::OnceLock;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::{cluster::Cluster, config::ServeArgs, core::Limit, hub::Hub, metrics::names::*};

/// Buckets of the latency histograms, in seconds: 50 µs to 10 s.
pub(super) const LATENCY_BUCKETS: &[f64] = &[
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
pub(crate) fn describe() {
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
pub(crate) fn install() -> PrometheusHandle {
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
pub(crate) fn record_limits(args: &ServeArgs) {
    let limits = [
        (Limit::MessageBytes, args.max_message_bytes),
        (Limit::PendingReceivesPerSession, args.max_pending_receives),
        (Limit::Sessions, args.max_sessions),
        (Limit::SessionsPerNamespace, args.max_sessions_per_namespace),
        (Limit::Connections, args.max_connections),
        (Limit::ChannelsPerNamespace, args.max_channels_per_namespace),
        (Limit::GroupsPerNamespace, args.max_groups_per_namespace),
        (Limit::MembersPerGroup, args.max_members_per_group),
        (Limit::Namespaces, args.max_namespaces),
        (Limit::Capacity, args.max_capacity),
        (Limit::Expiry, args.max_expiry_ms),
        (Limit::GroupExpiry, args.max_group_expiry_seconds),
        (
            Limit::QueuedBytesPerNamespace,
            args.max_queued_bytes_per_namespace,
        ),
        (Limit::QueuedBytes, args.max_queued_bytes),
    ];
    for (limit, value) in limits {
        gauge!(LIMIT, "limit" => limit.name()).set(value as f64);
    }
}

/// Copies the hub's counters and gauges into the recorder (at each scrape).
pub(crate) fn refresh(hub: &Hub, ready: bool) {
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
    gauge!(NAMESPACES).set(s.namespaces as f64);
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

/// Copies the cluster's counters into the recorder (at each scrape).
pub(crate) fn refresh_cluster(cluster: &Cluster) {
    use std::sync::atomic::Ordering::Relaxed;
    let s = cluster.stats();
    gauge!(CLUSTER_CONNECTED).set(if *cluster.connected().borrow() {
        1.0
    } else {
        0.0
    });
    gauge!(CLUSTER_NODES).set(cluster.nodes_seen() as f64);
    gauge!(CLUSTER_PREFIXES).set(cluster.prefixes_held() as f64);
    counter!(CLUSTER_RECONNECTS).absolute(s.reconnects.load(Relaxed));
    counter!(CLUSTER_PUBLISHED, "kind" => "group_send")
        .absolute(s.group_sends_published.load(Relaxed));
    counter!(CLUSTER_PUBLISHED, "kind" => "request").absolute(s.requests_sent.load(Relaxed));
    counter!(CLUSTER_PUBLISHED, "kind" => "batch").absolute(s.batches_sent.load(Relaxed));
    counter!(CLUSTER_RECEIVED, "kind" => "group_send")
        .absolute(s.group_sends_received.load(Relaxed));
    counter!(CLUSTER_RECEIVED, "kind" => "request").absolute(s.requests_received.load(Relaxed));
    counter!(CLUSTER_PUBLISHED, "kind" => "normal").absolute(s.normal_queued.load(Relaxed));
    counter!(CLUSTER_RECEIVED, "kind" => "normal").absolute(s.normal_fetched.load(Relaxed));
    counter!(CLUSTER_DROPPED, "reason" => "normal_full").absolute(s.normal_full.load(Relaxed));
    counter!(CLUSTER_DROPPED, "reason" => "normal_expired")
        .absolute(s.normal_expired.load(Relaxed));
    counter!(CLUSTER_DROPPED, "reason" => "normal_failed").absolute(s.normal_dropped.load(Relaxed));
    counter!(CLUSTER_DELIVERIES, "origin" => "remote")
        .absolute(s.remote_group_deliveries.load(Relaxed));
    counter!(CLUSTER_DROPPED, "reason" => "no_owner").absolute(s.no_owner.load(Relaxed));
    counter!(CLUSTER_DROPPED, "reason" => "backlog_full").absolute(s.backlog_full.load(Relaxed));
    counter!(CLUSTER_DROPPED, "reason" => "bad_envelope").absolute(s.bad_envelopes.load(Relaxed));
    counter!(CLUSTER_DROPPED, "reason" => "handover_failed")
        .absolute(s.handover_failures.load(Relaxed));
    counter!(CLUSTER_REQUEST_ERRORS, "reason" => "timeout")
        .absolute(s.request_timeouts.load(Relaxed));
    counter!(CLUSTER_PARTIAL_SURVEYS).absolute(s.partial_surveys.load(Relaxed));
}

#[cfg(test)]
mod tests {
    use ::metrics::histogram;

    use super::*;

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
}
