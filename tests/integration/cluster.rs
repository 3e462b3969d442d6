//! Cluster mode against a real NATS cluster: three `nats-server` processes routed to each
//! other on loopback and two or three chanlayer nodes as real processes, each node on its
//! own NATS server. Every test asserts counts.

use crate::support::{self, nats};

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use bytes::Bytes;
use chanlayer::proto::v1 as pb;
use chanlayer_client::{Client, SendOptions};
use nats::{NatsCluster, TwoNodes, node, wait_nodes, wait_ready};
use support::eventually;

use nats::NS;

/// GetGroup's member count and missing nodes.
async fn group_answer(client: &Client, group: &str) -> (u32, u32) {
    let answer = client
        .grpc()
        .get_group(pb::GetGroupRequest {
            namespace: NS.into(),
            group: group.into(),
        })
        .await
        .unwrap()
        .into_inner();
    (answer.member_count, answer.missing_nodes)
}

/// The server stats of the node `client` talks to, alone.
async fn node_stats(client: &Client) -> pb::GetServerStatsResponse {
    client
        .grpc()
        .get_server_stats(pb::GetServerStatsRequest {
            this_node_only: true,
        })
        .await
        .unwrap()
        .into_inner()
}

fn b(s: String) -> Bytes {
    Bytes::from(s)
}

fn opts(capacity: u32, expiry: Option<Duration>) -> SendOptions {
    SendOptions { capacity, expiry }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_reaches_another_nodes_channel_with_its_capacity_and_expiry() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&[]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let session = on_b.session().await.unwrap();

    // A plain send, received on B.
    let channel = session.new_channel("specific");
    on_a.send(&channel, "hello").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), session.receive(&channel))
        .await
        .expect("delivered")
        .unwrap();
    assert_eq!(&got.payload[..], b"hello");

    // Capacity 3, enforced by B's core, refused on A with B's reason.
    let full = session.new_channel("specific");
    for i in 0..3 {
        on_a.send_with(&full, format!("m{i}"), opts(3, None))
            .await
            .unwrap();
    }
    let error = on_a
        .send_with(&full, "m3", opts(3, None))
        .await
        .unwrap_err();
    assert_eq!(error.reason().as_deref(), Some("CHANNEL_FULL"), "{error:?}");
    assert_eq!(on_b.channel_info(&full).await.unwrap().queued_messages, 3);

    // Expiry, counted on B from the message's arrival.
    let short = session.new_channel("specific");
    on_a.send_with(
        &short,
        "soon gone",
        opts(0, Some(Duration::from_millis(200))),
    )
    .await
    .unwrap();
    on_a.send_with(&short, "kept", opts(0, None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = session.receive(&short).await.unwrap();
    assert_eq!(&got.payload[..], b"kept");

    // A session stream's send to B's channel, acknowledged in order with local sends.
    let sender = on_a.session().await.unwrap();
    let local = sender.new_channel("specific");
    let remote = session.new_channel("specific");
    let mut acks = Vec::new();
    for i in 0..200 {
        let target = if i % 2 == 0 { &remote } else { &local };
        acks.push(sender.send(target, b(format!("{i}")), opts(1000, None)));
    }
    for ack in acks {
        ack.await.unwrap();
    }
    for i in (0..200).step_by(2) {
        let got = session.receive(&remote).await.unwrap();
        assert_eq!(got.payload, b(format!("{i}")));
    }
    assert_eq!(
        on_a.channel_info(&local).await.unwrap().queued_messages,
        100
    );
    // The remote messages are on B, not on A.
    assert_eq!(on_a.channel_info(&remote).await.unwrap().queued_messages, 0);

    // 1 000 sends to B's channel pipelined on one stream: they leave A in batches, and
    // every one is applied once, in order, and acknowledged.
    let remote = session.new_channel("specific");
    let acks: Vec<_> = (0..1000)
        .map(|i| sender.send(&remote, b(format!("{i}")), opts(2000, None)))
        .collect();
    for ack in acks {
        ack.await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 1000 {
        let batch =
            tokio::time::timeout(Duration::from_secs(5), session.receive_many(&remote, 100))
                .await
                .expect("delivered")
                .unwrap();
        got.extend(batch.into_iter().map(|m| m.payload));
    }
    assert_eq!(
        got,
        (0..1000).map(|i| b(format!("{i}"))).collect::<Vec<_>>()
    );
    let batches =
        t.a.scrape()
            .sum("chanlayer_cluster_published_total", &["kind=\"batch\""]);
    assert!(batches > 0.0, "no batch left A");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_sessions_get_an_immediate_send_from_another_node() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&[]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let mut delivered = 0;
    for i in 0..100 {
        let session = on_b.session().await.unwrap();
        let channel = session.new_channel("specific");
        on_a.send(&channel, format!("{i}")).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), session.receive(&channel)).await;
        if let Ok(Ok(m)) = got {
            assert_eq!(m.payload, b(format!("{i}")));
            delivered += 1;
        }
        session.close().unwrap();
    }
    assert_eq!(delivered, 100, "fresh sessions: {delivered}/100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_sends_from_every_node_reach_each_member_once_in_order() {
    let _serial = nats::SERIAL.lock().await;
    let nats = NatsCluster::start();
    let nodes = [
        node(&nats, 0, "a", &[]),
        node(&nats, 1, "b", &[]),
        node(&nats, 2, "c", &[]),
    ];
    wait_nodes(&nodes.iter().collect::<Vec<_>>());
    let clients = [
        nodes[0].client(NS).await,
        nodes[1].client(NS).await,
        nodes[2].client(NS).await,
    ];
    // Two members on A, one on B, none on C; the one on B added through C (forwarded).
    let sa = clients[0].session().await.unwrap();
    let sb = clients[1].session().await.unwrap();
    let members = [
        (0, sa.new_channel("specific")),
        (0, sa.new_channel("specific")),
        (1, sb.new_channel("specific")),
    ];
    for (i, (owner, channel)) in members.iter().enumerate() {
        let via = if i == 2 { 2 } else { *owner };
        assert!(clients[via].group_add("room", channel).await.unwrap());
    }
    assert_eq!(clients[2].group_size("room").await.unwrap(), 3);
    let mut listed = clients[2].group_members("room").await.unwrap();
    listed.sort();
    let mut expected: Vec<String> = members.iter().map(|(_, c)| c.clone()).collect();
    expected.sort();
    assert_eq!(listed, expected);

    const SENDS: usize = 1_000;
    let mut senders = Vec::new();
    for (n, client) in clients.iter().enumerate() {
        let client = client.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..SENDS {
                client
                    .group_send_with("room", format!("{n}:{i}"), opts(10_000, None), Vec::new())
                    .await
                    .unwrap();
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    for (owner, channel) in &members {
        let session = if *owner == 0 { &sa } else { &sb };
        let mut last: HashMap<String, i64> = HashMap::new();
        let mut count = 0;
        while count < 3 * SENDS {
            let batch =
                tokio::time::timeout(Duration::from_secs(10), session.receive_many(channel, 500))
                    .await
                    .unwrap_or_else(|_| panic!("{channel}: only {count} of {} arrived", 3 * SENDS))
                    .unwrap();
            for m in batch {
                let text = String::from_utf8(m.payload.to_vec()).unwrap();
                let (sender, i) = text.split_once(':').unwrap();
                let i: i64 = i.parse().unwrap();
                let previous = last.insert(sender.to_owned(), i).unwrap_or(-1);
                assert_eq!(i, previous + 1, "{channel}: out of order from {sender}");
                count += 1;
            }
        }
        assert_eq!(count, 3 * SENDS);
        let left = clients[*owner].channel_info(channel).await.unwrap();
        assert_eq!(left.queued_messages, 0, "{channel} got more than once");
    }
    // The memberless node delivered nothing.
    let c_stats = node_stats(&clients[2]).await;
    assert_eq!(c_stats.messages_delivered_total, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_add_right_after_a_session_opens_loses_no_remote_group_send() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&[]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let mut delivered = 0;
    const ROUNDS: usize = 200;
    for i in 0..ROUNDS {
        let session = on_b.session().await.unwrap();
        let channel = session.new_channel("specific");
        let group = format!("g{i}");
        // Added from A: forwarded to B, which holds the channel.
        assert!(on_a.group_add(&group, &channel).await.unwrap());
        let sent = on_a.group_send(&group, format!("{i}")).await.unwrap();
        assert_eq!(sent.delivered, 0, "the member is B's, not A's");
        if let Ok(Ok(m)) =
            tokio::time::timeout(Duration::from_secs(2), session.receive(&channel)).await
        {
            assert_eq!(m.payload, b(format!("{i}")));
            delivered += 1;
        }
        session.close().unwrap();
    }
    assert_eq!(delivered, ROUNDS, "{delivered}/{ROUNDS}");
    // Closed sessions took their memberships with them, cluster-wide.
    assert!(
        eventually(Duration::from_secs(5), || async {
            on_a.group_size("g0").await.unwrap() == 0
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_flush_answer_for_the_whole_cluster() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&[]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let sa = on_a.session().await.unwrap();
    let sb = on_b.session().await.unwrap();
    for s in [&sa, &sb] {
        for _ in 0..3 {
            let c = s.new_channel("specific");
            on_a.group_add("everyone", &c).await.unwrap();
            on_a.send(&c, "queued").await.unwrap();
        }
    }
    assert_eq!(on_a.group_size("everyone").await.unwrap(), 6);
    assert_eq!(on_b.group_size("everyone").await.unwrap(), 6);
    assert_eq!(on_b.group_members("everyone").await.unwrap().len(), 6);
    // Server stats sum both nodes; this node alone on request.
    let all = on_b.stats().await.unwrap();
    assert_eq!((all.nodes, all.missing_nodes), (2, 0));
    assert_eq!(
        (all.memberships, all.queued_messages, all.sessions_open),
        (6, 6, 2)
    );
    let only_b = node_stats(&on_b).await;
    assert_eq!(
        (only_b.nodes, only_b.memberships, only_b.queued_messages),
        (1, 3, 3)
    );
    let flushed = on_b.flush().await.unwrap();
    assert_eq!(flushed.dropped_messages, 6);
    // Every cluster metric is exported in cluster mode, and counts what happened.
    let metrics = t.a.scrape();
    for metric in chanlayer::metrics::METRICS {
        if metric.name.starts_with("chanlayer_cluster_") {
            assert!(metrics.has(metric.name), "{} is not exported", metric.name);
        }
    }
    assert_eq!(metrics.value("chanlayer_cluster_connected"), 1.0);
    assert_eq!(metrics.value("chanlayer_cluster_nodes"), 1.0);
    assert!(metrics.sum("chanlayer_cluster_published_total", &["kind=\"request\""]) >= 3.0);
    assert_eq!(on_a.group_size("everyone").await.unwrap(), 0);
    assert_eq!(on_a.stats().await.unwrap().queued_messages, 0);
    assert_eq!(on_b.stats().await.unwrap().queued_messages, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_prefix_held_on_one_node_is_refused_on_another() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&[]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let open = |prefix: &str| pb::OpenOperation {
        namespace: NS.into(),
        client_prefix: prefix.into(),
        ..Default::default()
    };
    let held = on_a.open_session(open("taken1")).await.unwrap();
    let Err(error) = on_b.open_session(open("taken1")).await else {
        panic!("a prefix held on A was accepted on B");
    };
    assert_eq!(
        error.reason().as_deref(),
        Some("CLIENT_PREFIX_IN_USE"),
        "{error:?}"
    );
    // A receive on another node's channel is refused, not stolen.
    let theirs = held.new_channel("specific");
    let mine = on_b.session().await.unwrap();
    let error = mine.receive(&theirs).await.unwrap_err();
    assert_eq!(
        error.reason().as_deref(),
        Some("CHANNEL_NOT_OWNED"),
        "{error:?}"
    );
    // Once released, the prefix is free on B.
    held.close().unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            on_b.open_session(open("taken1")).await.is_ok()
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_leaves_the_others_serving() {
    let _serial = nats::SERIAL.lock().await;
    // Heartbeats every second: the dead node is waited for during three of them.
    let slow_beats = ["--cluster-heartbeat-ms", "1000"];
    let mut t = TwoNodes::start(&slow_beats).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let sa = on_a.session().await.unwrap();
    let sb = on_b.session().await.unwrap();
    let mine = sa.new_channel("specific");
    let theirs = sb.new_channel("specific");
    on_a.group_add("room", &mine).await.unwrap();
    on_a.group_add("room", &theirs).await.unwrap();
    assert_eq!(on_a.group_size("room").await.unwrap(), 2);

    t.b.kill();
    // Until its heartbeats are overdue, the dead node is waited for, and the answer says
    // that its part is missing.
    assert_eq!(group_answer(&on_a, "room").await, (1, 1));
    const SENDS: usize = 1_000;
    let mut slowest = Duration::ZERO;
    for i in 0..SENDS {
        let started = Instant::now();
        on_a.group_send_with("room", format!("{i}"), opts(10_000, None), Vec::new())
            .await
            .unwrap();
        slowest = slowest.max(started.elapsed());
    }
    // A send to the dead node's channel neither hangs nor fails.
    let started = Instant::now();
    on_a.send(&theirs, "to the dead").await.unwrap();
    slowest = slowest.max(started.elapsed());
    assert!(
        slowest < Duration::from_millis(2_500),
        "an operation took {slowest:?}"
    );
    let mut count = 0;
    while count < SENDS {
        let batch = tokio::time::timeout(Duration::from_secs(5), sa.receive_many(&mine, 500))
            .await
            .expect("A's own member keeps receiving")
            .unwrap();
        count += batch.len();
    }
    assert_eq!(count, SENDS, "survivors: {count}/{SENDS}");
    // Once its heartbeats are overdue, nobody waits for the dead node.
    assert!(
        eventually(Duration::from_secs(5), || async {
            group_answer(&on_a, "room").await == (1, 0)
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_node_makes_its_channels_fail_fast_and_stalls_nobody() {
    let _serial = nats::SERIAL.lock().await;
    let timeout = ["--cluster-request-timeout-ms", "1000"];
    let t = TwoNodes::start(&timeout).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let sa = on_a.session().await.unwrap();
    let sb = on_b.session().await.unwrap();
    let mine = sa.new_channel("specific");
    let theirs = sb.new_channel("specific");
    on_a.group_add("room", &mine).await.unwrap();
    // B answers A right before it hangs.
    on_a.send(&theirs, "before").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), sb.receive(&theirs))
        .await
        .expect("B answers before it hangs")
        .unwrap();
    assert_eq!(&got.payload[..], b"before");

    let pid = t.b.pid().to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill runs")
    };
    signal("-STOP");
    let started = Instant::now();
    let error = on_a.send(&theirs, "lost?").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        error.reason().as_deref(),
        Some("OWNER_UNREACHABLE"),
        "{error:?}"
    );
    assert!(took < Duration::from_millis(2_500), "took {took:?}");
    // A's own traffic goes on meanwhile.
    for i in 0..100 {
        on_a.group_send("room", format!("{i}")).await.unwrap();
    }
    let got = sa.receive_many(&mine, 100).await.unwrap();
    assert!(!got.is_empty());
    signal("-CONT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_killed_moves_its_node_to_another() {
    let _serial = nats::SERIAL.lock().await;
    let mut t = TwoNodes::start(&[]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let sb = on_b.session().await.unwrap();
    let theirs = sb.new_channel("specific");
    on_a.group_add("room", &theirs).await.unwrap();

    t.nats.servers[1].kill();
    // B reconnects to another server; delivery from A to B's member comes back.
    let back = eventually(Duration::from_secs(10), || async {
        on_a.group_send("room", "ping").await.is_ok()
            && matches!(
                tokio::time::timeout(Duration::from_millis(300), sb.receive(&theirs)).await,
                Ok(Ok(_))
            )
    })
    .await;
    assert!(
        back,
        "B's member did not receive again after its NATS server died"
    );
    let mut delivered = 0;
    for i in 0..100 {
        on_a.group_send_with("room", format!("{i}"), opts(1_000, None), Vec::new())
            .await
            .unwrap();
    }
    while delivered < 100 {
        let batch = tokio::time::timeout(Duration::from_secs(5), sb.receive_many(&theirs, 100))
            .await
            .expect("delivered")
            .unwrap();
        delivered += batch.iter().filter(|m| &m.payload[..] != b"ping").count();
    }
    assert_eq!(delivered, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_all_of_nats_down_cluster_operations_fail_fast_and_local_ones_work() {
    let _serial = nats::SERIAL.lock().await;
    let mut nats = NatsCluster::start();
    let a = node(&nats, 0, "a", &[]);
    let on_a: Client = a.client(NS).await;
    let sa = on_a.session().await.unwrap();
    let mine = sa.new_channel("specific");

    for server in &mut nats.servers {
        server.kill();
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while a.http_get("/readyz").0 == 200 {
        assert!(
            Instant::now() < deadline,
            "still ready 3 s after NATS went away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let error = on_a.group_send("room", "x").await.unwrap_err();
    assert_eq!(
        error.reason().as_deref(),
        Some("CLUSTER_UNAVAILABLE"),
        "{error:?}"
    );
    assert_eq!(error.code(), tonic::Code::Unavailable);
    // The node's own channels still work.
    on_a.send(&mine, "local").await.unwrap();
    assert_eq!(&sa.receive(&mine).await.unwrap().payload[..], b"local");

    for server in &mut nats.servers {
        server.restart();
    }
    nats.wait_routed(Duration::from_secs(15));
    assert!(
        wait_ready(&a, Duration::from_secs(10)),
        "not ready after NATS came back"
    );
    on_a.group_add("room", &mine).await.unwrap();
    assert_eq!(on_a.group_send("room", "y").await.unwrap().delivered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_sent_before_a_session_opened_reaches_it_on_its_node() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&[]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    // A layer knows its prefix before its first receive opens a session: sends and
    // memberships made meanwhile are kept by the node they reached (no node holds the
    // prefix yet)...
    let channel = "specific.late1!x";
    for i in 0..3 {
        on_a.send(channel, format!("{i}")).await.unwrap();
    }
    assert!(on_a.group_add("late-room", channel).await.unwrap());
    // ...and handed to the node where the session opens.
    let session = on_b
        .open_session(pb::OpenOperation {
            namespace: NS.into(),
            client_prefix: "late1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for i in 0..3 {
        let got = tokio::time::timeout(Duration::from_secs(5), session.receive(channel))
            .await
            .expect("handed over")
            .unwrap();
        assert_eq!(got.payload, b(format!("{i}")));
    }
    // The membership moved: A holds no member any more, and a group send from A reaches
    // the member on B once the handed-over group_add has landed there.
    assert!(
        eventually(Duration::from_secs(5), || async {
            let sent = on_a.group_send("late-room", "after").await.unwrap();
            assert_eq!(sent.delivered, 0, "the member stayed on A");
            on_b.channel_info(channel).await.unwrap().queued_messages >= 1
        })
        .await,
        "the membership did not move to the session's node"
    );
    let got = session.receive(channel).await.unwrap();
    assert_eq!(&got.payload[..], b"after");
    assert_eq!(on_a.channel_info(channel).await.unwrap().queued_messages, 0);
    assert_eq!(group_answer(&on_a, "late-room").await, (1, 0));
}

/// An operation for a client prefix that no node holds, and that no node claimed lately, is
/// asked for once and kept at once. Only a prefix another node announced a moment ago is
/// asked for again while the announcement's subscription spreads (up to 511 ms); a send to
/// the channel of a session that ended, or a layer's first operations on its own channels
/// before its session opens, used to wait all of that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_for_a_prefix_nobody_holds_is_kept_after_one_request() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&[]).await;
    let on_a = t.on_a.clone();
    let requests =
        |m: &support::Metrics| m.sum("chanlayer_cluster_published_total", &["kind=\"request\""]);
    let no_owner =
        |m: &support::Metrics| m.sum("chanlayer_cluster_dropped_total", &["reason=\"no_owner\""]);
    let before = t.a.scrape();
    let channel = "specific.gone1!x";
    on_a.send(channel, "kept").await.unwrap();
    assert!(on_a.group_add("gone-room", channel).await.unwrap());
    let after = t.a.scrape();
    // One request each; a third may be the probe that asks every 2 s about what was kept.
    let asked = requests(&after) - requests(&before);
    assert!(
        (2.0..=3.0).contains(&asked),
        "{asked} requests for 2 operations"
    );
    assert_eq!(no_owner(&after) - no_owner(&before), 2.0);
    assert_eq!(on_a.channel_info(channel).await.unwrap().queued_messages, 1);
    assert_eq!(on_a.group_size("gone-room").await.unwrap(), 1);
}
