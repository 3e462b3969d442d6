//! The metrics endpoint of the real binary: after real traffic over gRPC, `/metrics` shows
//! each metric with the value the traffic implies; `/healthz` and `/readyz` answer, and
//! `/readyz` fails while the server drains.

use crate::support;

use std::time::Duration;

use chanlayer_client::SendOptions;
use support::{Server, eventually, ns};

const SENT: &str = "chanlayer_messages_sent_total";
const DELIVERED: &str = "chanlayer_messages_delivered_total";
const DROPPED: &str = "chanlayer_messages_dropped_total";
const HANDLED: &str = "chanlayer_grpc_server_handled_total";

fn method(name: &str) -> String {
    format!("method=\"chanlayer.v1.ChannelLayerService/{name}\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_traffic() {
    let server = Server::start(&["--sweep-interval-ms", "20", "--max-message-bytes", "2048"]);
    let before = server.scrape();
    assert_eq!(before.value(SENT), 0.0);
    assert_eq!(before.value("chanlayer_sessions{state=\"open\"}"), 0.0);
    assert_eq!(
        before.value("chanlayer_limit{limit=\"message_bytes\"}"),
        2048.0
    );
    assert_eq!(before.value("chanlayer_ready"), 1.0);

    let client = server.client(&ns("metrics")).await;
    let session = client.session().await.expect("session");
    let me = session.new_channel("specific");

    // A group of one member, three group sends, three deliveries.
    assert!(client.group_add("room", &me).await.expect("group_add"));
    for i in 0..3u8 {
        let sent = client
            .group_send("room", vec![i])
            .await
            .expect("group_send");
        assert_eq!(sent.delivered, 1);
    }
    for _ in 0..3 {
        session.receive(&me).await.expect("receive");
    }
    // One more for a receive that waits, so that a receive is pending.
    let pending = session
        .start_receive("worker.idle", 1)
        .expect("start_receive");

    // A channel of capacity 1: the second send is refused as full.
    let full = SendOptions {
        capacity: 1,
        expiry: None,
    };
    client
        .send_with("full", &b"a"[..], full)
        .await
        .expect("first fits");
    let refused = client.send_with("full", &b"b"[..], full).await;
    assert_eq!(
        refused.expect_err("full").reason().as_deref(),
        Some("CHANNEL_FULL")
    );

    // A message that expires unread.
    let short = SendOptions {
        capacity: 0,
        expiry: Some(Duration::from_millis(10)),
    };
    client
        .send_with("brief", &b"c"[..], short)
        .await
        .expect("send");

    // A message larger than the limit.
    let large = client.send("big", vec![0u8; 4096]).await;
    assert_eq!(
        large.expect_err("too large").reason().as_deref(),
        Some("MESSAGE_TOO_LARGE")
    );

    // Two messages for another process's channel; that process then closes its session.
    let other = client.session().await.expect("second session");
    let theirs = other.new_channel("specific");
    client.send(&theirs, &b"d"[..]).await.expect("send");
    client.send(&theirs, &b"e"[..]).await.expect("send");

    // Two messages in a namespace that is then flushed.
    let flushed = server.client(&ns("metrics-flushed")).await;
    flushed.send("x", &b"f"[..]).await.expect("send");
    flushed.send("y", &b"g"[..]).await.expect("send");

    assert!(
        eventually(Duration::from_secs(5), || async {
            server
                .scrape()
                .value(&format!("{DROPPED}{{reason=\"expired\"}}"))
                == 1.0
        })
        .await,
        "the expired message is counted"
    );
    let m = server.scrape();
    assert_eq!(m.value("chanlayer_sessions{state=\"open\"}"), 2.0);
    assert_eq!(
        m.value("chanlayer_sessions_opened_total{kind=\"new\"}"),
        2.0
    );
    assert_eq!(m.value("chanlayer_pending_receives"), 1.0);
    assert_eq!(m.value("chanlayer_groups"), 1.0);
    assert_eq!(m.value("chanlayer_group_memberships"), 1.0);
    // "full" and the other process's channel hold messages; "worker.idle" has a waiter.
    assert_eq!(m.value("chanlayer_queued_messages"), 5.0);
    assert_eq!(m.value("chanlayer_queued_bytes"), 5.0);
    assert!(m.value("chanlayer_channels") >= 4.0);

    other.close().expect("close");
    assert_eq!(flushed.flush().await.expect("flush").dropped_messages, 2);
    // The release is counted before the messages it drops.
    assert!(
        eventually(Duration::from_secs(5), || async {
            let m = server.scrape();
            m.value("chanlayer_sessions_released_total") == 1.0
                && m.value(&format!("{DROPPED}{{reason=\"session_gone\"}}")) == 2.0
        })
        .await,
        "the closed session is released, its messages dropped"
    );

    let m = server.scrape();
    // 3 group copies, "a", "c", "d", "e", "f", "g".
    assert_eq!(m.value(SENT), 9.0);
    assert_eq!(m.value(DELIVERED), 3.0);
    assert_eq!(
        m.value(&format!("{DROPPED}{{reason=\"channel_full\"}}")),
        1.0
    );
    assert_eq!(m.value(&format!("{DROPPED}{{reason=\"expired\"}}")), 1.0);
    assert_eq!(
        m.value(&format!("{DROPPED}{{reason=\"session_gone\"}}")),
        2.0
    );
    assert_eq!(m.value(&format!("{DROPPED}{{reason=\"flushed\"}}")), 2.0);
    assert_eq!(m.value("chanlayer_queued_messages"), 1.0);
    assert_eq!(m.value("chanlayer_sessions{state=\"open\"}"), 1.0);

    // Group sends and their fan-out.
    assert_eq!(m.value("chanlayer_group_sends_total"), 3.0);
    assert_eq!(m.value("chanlayer_group_send_fanout_count"), 3.0);
    assert_eq!(m.value("chanlayer_group_send_fanout_sum"), 3.0);
    assert_eq!(m.value("chanlayer_group_send_fanout_bucket{le=\"0\"}"), 0.0);
    assert_eq!(m.value("chanlayer_group_send_fanout_bucket{le=\"1\"}"), 3.0);

    // Send-to-delivery latency: one observation per delivered message, all short.
    assert_eq!(m.value("chanlayer_delivery_latency_seconds_count"), 3.0);
    assert_eq!(
        m.value("chanlayer_delivery_latency_seconds_bucket{le=\"10\"}"),
        3.0
    );
    assert!(m.value("chanlayer_delivery_latency_seconds_sum") < 5.0);

    // Per-RPC counts and latencies by method and code.
    let ok = "code=\"OK\"";
    assert_eq!(m.sum(HANDLED, &[&method("GroupSend"), ok]), 3.0);
    assert_eq!(m.sum(HANDLED, &[&method("GroupAdd"), ok]), 1.0);
    assert_eq!(m.sum(HANDLED, &[&method("Send"), ok]), 6.0);
    assert_eq!(
        m.sum(HANDLED, &[&method("Send"), "code=\"RESOURCE_EXHAUSTED\""]),
        2.0
    );
    assert_eq!(m.sum(HANDLED, &[&method("Flush"), ok]), 1.0);
    assert_eq!(
        m.sum(
            "chanlayer_grpc_server_handling_seconds_count",
            &[&method("GroupSend"), ok]
        ),
        3.0
    );
    // Stream frames: the sessions' opens, receives and close went in; opened events and
    // deliveries came out.
    let session_method = method("Session");
    assert!(
        m.sum(
            "chanlayer_grpc_server_stream_messages_received_total",
            &[&session_method]
        ) >= 4.0
    );
    assert!(
        m.sum(
            "chanlayer_grpc_server_stream_messages_sent_total",
            &[&session_method]
        ) >= 4.0
    );
    assert!(
        m.sum(
            "chanlayer_grpc_server_received_bytes_total",
            &[&method("Send")]
        ) > 4096.0
    );

    // The refusals that limits caused.
    assert_eq!(
        m.value("chanlayer_limit_hits_total{limit=\"message_bytes\"}"),
        1.0
    );

    // The pending receive is withdrawn; the first session ends.
    assert!(pending.cancel().await.expect("cancel"));
    session.close().expect("close");
    assert!(
        eventually(Duration::from_secs(5), || async {
            let m = server.scrape();
            m.value("chanlayer_pending_receives") == 0.0
                && m.value("chanlayer_sessions{state=\"open\"}") == 0.0
                && m.sum(HANDLED, &[&session_method]) == 2.0
        })
        .await,
        "sessions and receives are gone: {}",
        server.scrape().0
    );

    // Session streams: each operation counted by kind, each frame timed, and a refusal
    // inside the stream counted by code and reason.
    let m = server.scrape();
    let ops = "chanlayer_session_operations_total";
    assert!(m.value(&format!("{ops}{{op=\"receive\"}}")) >= 4.0);
    assert_eq!(m.value(&format!("{ops}{{op=\"cancel\"}}")), 1.0);
    assert_eq!(m.value(&format!("{ops}{{op=\"close\"}}")), 2.0);
    let frames = m.value("chanlayer_session_frame_handling_seconds_count");
    assert!(frames >= 6.0, "{frames} frames timed");
    let third = client.session().await.expect("third session");
    let refused = third
        .send(
            "no spaces allowed",
            bytes::Bytes::from_static(b"h"),
            SendOptions::default(),
        )
        .await;
    assert_eq!(
        refused.expect_err("invalid name").reason().as_deref(),
        Some("INVALID_CHANNEL_NAME")
    );
    let m = server.scrape();
    assert_eq!(
        m.value(
            "chanlayer_session_errors_total{code=\"INVALID_ARGUMENT\",reason=\"INVALID_CHANNEL_NAME\"}"
        ),
        1.0
    );
    assert_eq!(m.value(&format!("{ops}{{op=\"send\"}}")), 1.0);

    // Never a channel or group name as a label.
    let text = server.scrape().0;
    for name in [
        "\"room\"",
        "specific",
        "worker.idle",
        "brief",
        "\"full\"",
        "\"big\"",
    ] {
        assert!(
            !text
                .lines()
                .any(|l| !l.starts_with('#') && l.contains(name)),
            "{name} appears in the metrics"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_metric_is_exported() {
    let server = Server::start(&[]);
    let client = server.client(&ns("metrics-listed")).await;
    let session = client.session().await.expect("session");
    let me = session.new_channel("specific");
    client.group_add("g", &me).await.expect("group_add");
    client.group_send("g", &b"x"[..]).await.expect("group_send");
    session.receive(&me).await.expect("receive");
    // A stream's lifetime is recorded when it ends.
    session.close().expect("close");
    let stream_ended = eventually(Duration::from_secs(5), || async {
        server
            .scrape()
            .has("chanlayer_grpc_server_stream_duration_seconds_count")
    })
    .await;
    assert!(stream_ended, "the session's end is recorded");
    let text = server.scrape();
    for metric in chanlayer::metrics::METRICS {
        let present = text.has(metric.name) || text.has(&format!("{}_count", metric.name));
        // Counters that only move on refusals appear once something is refused.
        let on_refusal = [
            chanlayer::metrics::AUTH_FAILURES,
            chanlayer::metrics::LIMIT_HITS,
            chanlayer::metrics::SESSION_ERRORS,
        ];
        // Cluster metrics exist only in cluster mode (the cluster module checks them).
        let clustered = metric.name.starts_with("chanlayer_cluster_");
        assert!(
            present || clustered || on_refusal.contains(&metric.name),
            "{} is not exported:\n{}",
            metric.name,
            text.0
        );
        assert!(
            !present || text.0.contains(&format!("# HELP {} ", metric.name)),
            "{} has no description",
            metric.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_and_readyz_fails_while_draining() {
    let mut server = Server::start(&["--drain-delay-ms", "3000"]);
    assert_eq!(server.http_get("/healthz").0, 200);
    assert_eq!(server.http_get("/readyz").0, 200);
    assert_eq!(server.http_get("/nowhere").0, 404);
    server.terminate();
    assert!(
        eventually(Duration::from_secs(2), || async {
            server.http_get("/readyz").0 == 503
        })
        .await,
        "readyz fails once draining starts"
    );
    assert_eq!(server.http_get("/healthz").0, 200);
    assert_eq!(server.scrape().value("chanlayer_ready"), 0.0);
    assert!(server.wait_exit(Duration::from_secs(15)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let server = Server::start(&["--metrics-listen", "off"]);
    assert!(server.metrics_addr.is_none());
    let client = server.client(&ns("metrics-off")).await;
    client.send("c", &b"x"[..]).await.expect("send");
    assert_eq!(client.stats().await.expect("stats").messages_sent_total, 1);
}

#[tokio::test]
async fn limits_hit_inside_session_streams_are_counted() {
    let server = Server::start(&["--max-pending-receives", "1", "--max-message-bytes", "1024"]);
    let client = server.client(&ns("stream-limits")).await;
    let session = client.session().await.expect("session");
    let _held = session.start_receive("held", 1).expect("receive");
    let refused = session.receive("second").await.expect_err("over the limit");
    assert_eq!(
        refused.reason().as_deref(),
        Some("TOO_MANY_PENDING_RECEIVES")
    );
    let refused = session
        .send(
            "c",
            bytes::Bytes::from(vec![0u8; 2048]),
            SendOptions::default(),
        )
        .await
        .expect_err("too large");
    assert_eq!(refused.reason().as_deref(), Some("MESSAGE_TOO_LARGE"));
    let m = server.scrape();
    assert_eq!(
        m.value("chanlayer_limit_hits_total{limit=\"pending_receives_per_session\"}"),
        1.0
    );
    assert_eq!(
        m.value("chanlayer_limit_hits_total{limit=\"message_bytes\"}"),
        1.0
    );
}

#[tokio::test]
async fn a_limit_hit_is_counted_as_the_limit_the_server_refused_at() {
    let server = Server::start(&["--max-channels-per-namespace", "1"]);
    // The namespace's name mentions another limit: the label must not come from text.
    let client = server.client("my-namespaces").await;
    client
        .send("c1", &b"a"[..])
        .await
        .expect("the first channel");
    let refused = client.send("c2", &b"b"[..]).await.expect_err("one channel");
    assert_eq!(refused.reason().as_deref(), Some("LIMIT_EXCEEDED"));
    // The same refusal inside a session stream.
    let session = client.session().await.expect("session");
    let refused = session
        .send(
            "c3",
            bytes::Bytes::from_static(b"c"),
            SendOptions::default(),
        )
        .await
        .expect_err("one channel");
    assert_eq!(refused.reason().as_deref(), Some("LIMIT_EXCEEDED"));
    let m = server.scrape();
    assert_eq!(
        m.value("chanlayer_limit_hits_total{limit=\"channels_per_namespace\"}"),
        2.0
    );
    assert_eq!(
        m.value("chanlayer_limit_hits_total{limit=\"namespaces\"}"),
        0.0
    );
}
