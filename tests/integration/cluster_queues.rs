//! Normal channels in cluster mode, against a real NATS cluster with JetStream: three
//! `nats-server` processes routed on loopback and two chanlayer nodes as real processes.
//! A message sent through any node is received once, by one receive on any node, with the
//! cluster's capacity and the message's expiry. Every test asserts counts.

use crate::support::{self, nats};

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use chanlayer_client::{Client, SendOptions, Session};
use nats::{NS, TwoNodes};
use support::eventually;

fn opts(expiry: Option<Duration>) -> SendOptions {
    SendOptions {
        capacity: 0,
        expiry,
    }
}

/// Receives from `channel` on `session` into `into` until the task is aborted.
fn drain(session: Session, channel: &'static str, into: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        while let Ok(messages) = session.receive_many(channel, 8).await {
            let mut into = into.lock().unwrap();
            for m in messages {
                into.push(String::from_utf8(m.payload.to_vec()).unwrap());
            }
        }
    });
}

async fn receive_one(session: &Session, channel: &str) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(5), session.receive(channel))
        .await
        .ok()
        .map(|m| String::from_utf8(m.unwrap().payload.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_channel_read_from_two_nodes_gets_each_message_once() {
    let _serial = nats::SERIAL.lock().await;
    // Room for every message: this test is about each message reaching one reader, and the
    // 1 000 sends may outrun the readers for a moment (capacity has a test of its own).
    let t = TwoNodes::start(&["--cluster-normal-capacity", "2000"]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let on_a_got = Arc::new(Mutex::new(Vec::new()));
    let on_b_got = Arc::new(Mutex::new(Vec::new()));
    // Two workers on each node.
    for (client, got) in [(&on_a, &on_a_got), (&on_b, &on_b_got)] {
        for _ in 0..2 {
            drain(client.session().await.unwrap(), "work", Arc::clone(got));
        }
    }
    // 500 messages sent through each node, unary and on a session stream.
    let stream_a = on_a.session().await.unwrap();
    let mut acks = Vec::new();
    for i in 0..500 {
        acks.push(stream_a.send("work", format!("a{i}").into(), SendOptions::default()));
        on_b.send("work", format!("b{i}")).await.unwrap();
    }
    for ack in acks {
        ack.await.unwrap();
    }
    let total = || on_a_got.lock().unwrap().len() + on_b_got.lock().unwrap().len();
    let done = eventually(Duration::from_secs(10), || {
        let n = total();
        async move { n >= 1000 }
    })
    .await;
    assert!(done, "received {} of 1000", total());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all: Vec<String> = on_a_got
        .lock()
        .unwrap()
        .iter()
        .chain(on_b_got.lock().unwrap().iter())
        .cloned()
        .collect();
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 1000, "received {} messages", all.len());
    assert_eq!(distinct.len(), 1000, "duplicates among {}", all.len());
    // Whichever node's receive asks first gets a message: the split between the nodes is
    // not fixed, but a worker on A alone gets every message sent through B.
    let worker = on_a.session().await.unwrap();
    for i in 0..50 {
        on_b.send("work-on-a", format!("{i}")).await.unwrap();
    }
    for i in 0..50 {
        assert_eq!(
            receive_one(&worker, "work-on-a").await.as_deref(),
            Some(format!("{i}").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_channel_has_the_clusters_capacity_and_each_messages_expiry() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&["--cluster-normal-capacity", "3"]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());

    // Three through A, the fourth refused on B, with the reason of a single node.
    for i in 0..3 {
        on_a.send("jobs", format!("j{i}")).await.unwrap();
    }
    let error = on_b.send("jobs", "j3").await.unwrap_err();
    assert_eq!(error.reason().as_deref(), Some("CHANNEL_FULL"), "{error:?}");
    // One taken on B frees a place for A.
    let worker = on_b.session().await.unwrap();
    assert_eq!(receive_one(&worker, "jobs").await.as_deref(), Some("j0"));
    on_a.send("jobs", "j4").await.unwrap();
    let mut rest = Vec::new();
    for _ in 0..3 {
        rest.push(receive_one(&worker, "jobs").await.expect("a message"));
    }
    assert_eq!(rest, ["j1", "j2", "j4"]);

    // A message past its expiry is never delivered.
    on_a.send_with("short", "soon gone", opts(Some(Duration::from_millis(200))))
        .await
        .unwrap();
    on_a.send_with("short", "kept", opts(None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receive_one(&worker, "short").await.as_deref(), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefetching_receive_fetches_its_batch_to_its_node_and_no_more() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&[]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    for i in 0..30 {
        on_a.send("batch", format!("m{i:02}")).await.unwrap();
    }
    let text = |m: &chanlayer_client::Received| String::from_utf8(m.payload.to_vec()).unwrap();
    // A receive of up to 10 on B: its node fetches 10 for it (the first comes to it).
    let worker_b = on_b.session().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), worker_b.receive_many("batch", 10))
        .await
        .expect("a delivery on B")
        .unwrap();
    assert_eq!(first.iter().map(text).collect::<Vec<_>>()[0], "m00");
    // The rest of B's batch is on B: a receive on A gets the first message after it.
    let worker_a = on_a.session().await.unwrap();
    assert_eq!(
        receive_one(&worker_a, "batch").await.as_deref(),
        Some("m10")
    );
    // B's next receive takes the rest of its batch, in order, without another fetch.
    let mut on_b_got: Vec<String> = first.iter().map(text).collect();
    while on_b_got.len() < 10 {
        let more = tokio::time::timeout(Duration::from_secs(5), worker_b.receive_many("batch", 10))
            .await
            .expect("B's batch")
            .unwrap();
        on_b_got.extend(more.iter().map(text));
    }
    let expected: Vec<String> = (0..10).map(|i| format!("m{i:02}")).collect();
    assert_eq!(on_b_got[..10], expected[..]);
    // Every message once in all: the 19 left, through A one at a time.
    let mut rest = Vec::new();
    while rest.len() + on_b_got.len() < 29 {
        rest.push(
            receive_one(&worker_a, "batch")
                .await
                .expect("a message on A"),
        );
    }
    let mut all: Vec<String> = on_b_got.into_iter().chain(rest).collect();
    all.push("m10".into());
    all.sort();
    let sent: Vec<String> = (0..30).map(|i| format!("m{i:02}")).collect();
    assert_eq!(all, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_a_normal_member_on_both_nodes_queues_each_send_once() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&[]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    // The same normal channel joined to the group through both nodes, and a process-
    // specific member on B.
    on_a.group_add("tasks", "task-queue").await.unwrap();
    on_b.group_add("tasks", "task-queue").await.unwrap();
    let session = on_b.session().await.unwrap();
    let specific = session.new_channel("specific");
    on_b.group_add("tasks", &specific).await.unwrap();
    for i in 0..100 {
        let from = if i % 2 == 0 { &on_a } else { &on_b };
        from.group_send("tasks", format!("t{i}")).await.unwrap();
    }
    let got = Arc::new(Mutex::new(Vec::new()));
    drain(
        on_a.session().await.unwrap(),
        "task-queue",
        Arc::clone(&got),
    );
    let done = eventually(Duration::from_secs(10), || {
        let n = got.lock().unwrap().len();
        async move { n >= 100 }
    })
    .await;
    assert!(
        done,
        "the normal member got {} of 100",
        got.lock().unwrap().len()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = got.lock().unwrap().clone();
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 100, "the normal member got {} copies", got.len());
    assert_eq!(distinct.len(), 100);
    // The specific member gets each once, each sender's in order.
    let mut specific_got = Vec::new();
    for _ in 0..100 {
        specific_got.push(receive_one(&session, &specific).await.expect("delivered"));
    }
    for parity in [0, 1] {
        let from_one: Vec<&String> = specific_got
            .iter()
            .filter(|m| m[1..].parse::<u32>().unwrap() % 2 == parity)
            .collect();
        let want: Vec<String> = (0..100)
            .filter(|i| i % 2 == parity)
            .map(|i| format!("t{i}"))
            .collect();
        assert_eq!(from_one, want.iter().collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_empties_the_normal_channels_of_its_namespace_only() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&["--cluster-normal-capacity", "5"]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    let other: Client = t.a.client("other-namespace").await;
    for i in 0..5 {
        on_a.send("backlog", format!("m{i}")).await.unwrap();
        other.send("backlog", format!("o{i}")).await.unwrap();
    }
    assert!(
        on_b.send("backlog", "m5").await.is_err(),
        "full before flush"
    );
    on_b.flush().await.unwrap();
    // The channel takes five again, and holds only what came after the flush.
    for i in 0..5 {
        on_b.send("backlog", format!("n{i}")).await.unwrap();
    }
    let worker = on_a.session().await.unwrap();
    assert_eq!(receive_one(&worker, "backlog").await.as_deref(), Some("n0"));
    // The other namespace kept its messages.
    let other_worker = other.session().await.unwrap();
    assert_eq!(
        receive_one(&other_worker, "backlog").await.as_deref(),
        Some("o0")
    );
    assert_eq!(NS, on_a.namespace());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_local_normal_channels_stay_on_the_node_a_send_reaches() {
    let _serial = nats::SERIAL.lock().await;
    let t = TwoNodes::start(&["--cluster-normal-channels", "node-local"]).await;
    let (on_a, on_b) = (t.on_a.clone(), t.on_b.clone());
    on_a.send("local-work", "on a").await.unwrap();
    assert_eq!(
        on_a.channel_info("local-work")
            .await
            .unwrap()
            .queued_messages,
        1
    );
    assert_eq!(
        on_b.channel_info("local-work")
            .await
            .unwrap()
            .queued_messages,
        0
    );
    let worker = on_a.session().await.unwrap();
    assert_eq!(
        receive_one(&worker, "local-work").await.as_deref(),
        Some("on a")
    );
    // With capacity from the request, as on a single node.
    for i in 0..3 {
        on_b.send_with(
            "bounded",
            format!("{i}"),
            SendOptions {
                capacity: 3,
                expiry: None,
            },
        )
        .await
        .unwrap();
    }
    let error = on_b
        .send_with(
            "bounded",
            "3",
            SendOptions {
                capacity: 3,
                expiry: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.reason().as_deref(), Some("CHANNEL_FULL"));
}
