//! The one list of every metric the server exports, with its kind, unit, labels and
//! description, and the name constants the rest of the server records under.

use ::metrics::Unit;

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
    /// Namespaces.
    NAMESPACES = "chanlayer_namespaces", Gauge, Count, [],
        "Namespaces that hold channels, groups or sessions (an empty one is removed by the sweeper).";
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
        "Configured limits: message_bytes, pending_receives_per_session, sessions, channels_per_namespace, groups_per_namespace, members_per_group, namespaces, capacity, expiry_ms, group_expiry_seconds, queued_bytes_per_namespace, queued_bytes, sessions_per_namespace, connections.";
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
    /// Connected to NATS (cluster mode).
    CLUSTER_CONNECTED = "chanlayer_cluster_connected", Gauge, Count, [],
        "Cluster mode: 1 while the node is connected to NATS, 0 while it is not.";
    /// Other nodes seen.
    CLUSTER_NODES = "chanlayer_cluster_nodes", Gauge, Count, [],
        "Cluster mode: other nodes heard from within three heartbeats.";
    /// Reconnections.
    CLUSTER_RECONNECTS = "chanlayer_cluster_reconnects_total", Counter, Count, [],
        "Cluster mode: times the node lost its NATS connection.";
    /// Published for other nodes.
    CLUSTER_PUBLISHED = "chanlayer_cluster_published_total", Counter, Count, ["kind"],
        "Cluster mode: messages sent to other nodes, by kind: group_send, request (a send, group_add or group_discard forwarded to the node holding the channel), batch (one NATS message carrying several such requests for one node), normal (queued on a normal channel in the cluster's stream).";
    /// Received from other nodes.
    CLUSTER_RECEIVED = "chanlayer_cluster_received_total", Counter, Count, ["kind"],
        "Cluster mode: messages received from other nodes, by kind: group_send, request, normal (fetched from the cluster's stream for a receive of this node).";
    /// Deliveries by origin.
    CLUSTER_DELIVERIES = "chanlayer_cluster_deliveries_total", Counter, Count, ["origin"],
        "Cluster mode: group messages delivered to this node's members, by origin: local (sent on this node) or remote.";
    /// Cross-node drops.
    CLUSTER_DROPPED = "chanlayer_cluster_dropped_total", Counter, Count, ["reason"],
        "Cluster mode: cross-node messages not delivered as addressed, by reason: no_owner (no node held the channel; kept here), backlog_full (the publish queue was full), bad_envelope (unreadable), handover_failed (kept for a client prefix before its session opened, and not handed to the node that holds it), normal_full (refused by a full normal channel), normal_expired (fetched from a normal channel past its expiry), normal_failed (a group send's copy for a normal member not queued).";
    /// Forwarded operations that failed.
    CLUSTER_REQUEST_ERRORS = "chanlayer_cluster_request_errors_total", Counter, Count, ["reason"],
        "Cluster mode: forwarded operations that failed, by reason: timeout (the owner did not answer).";
    /// Partial answers.
    CLUSTER_PARTIAL_SURVEYS = "chanlayer_cluster_partial_surveys_total", Counter, Count, [],
        "Cluster mode: cluster-wide answers (group size, members, flush) given without some nodes.";
    /// Client prefixes held.
    CLUSTER_PREFIXES = "chanlayer_cluster_prefix_subscriptions", Gauge, Count, [],
        "Cluster mode: client prefixes this node holds and serves on NATS.";
    /// Build information.
    BUILD_INFO = "chanlayer_build_info", Gauge, Count, ["version"],
        "Always 1; the version label says which build runs.";
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
                        "method", "code", "reason", "limit", "state", "kind", "version", "op",
                        "origin"
                    ]
                    .contains(label),
                    "{}: unbounded label {label}",
                    m.name
                );
            }
        }
    }
}
