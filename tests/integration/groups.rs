//! Groups, flush, namespaces and introspection over real gRPC.

use crate::support;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use bytes::Bytes;
use chanlayer::proto::v1::{self as pb, CapacityRule, capacity_rule::Pattern};
use chanlayer_client::SendOptions;
use support::Server;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn group_send_reaches_every_member_once() {
    let server = Server::start(&[]);
    let client = server.client("groups").await;
    let session = client.session().await.unwrap();
    let members: Vec<String> = (0..5).map(|_| session.new_channel("specific")).collect();
    for m in &members {
        assert!(client.group_add("room", m).await.unwrap());
    }
    assert!(
        !client.group_add("room", &members[0]).await.unwrap(),
        "re-adding is fine"
    );
    assert_eq!(client.group_size("room").await.unwrap(), 5);
    let sent = client.group_send("room", b("hi")).await.unwrap();
    assert_eq!((sent.delivered, sent.dropped), (5, 0));
    for m in &members {
        assert_eq!(session.receive(m).await.unwrap().payload, b("hi"));
    }
    assert!(client.group_discard("room", &members[0]).await.unwrap());
    assert!(!client.group_discard("room", &members[0]).await.unwrap());
    assert!(!client.group_discard("nobody", &members[0]).await.unwrap());
    let sent = client.group_send("room", b("again")).await.unwrap();
    assert_eq!(sent.delivered, 4);
    let sent = client.group_send("empty-group", b("x")).await.unwrap();
    assert_eq!((sent.delivered, sent.dropped), (0, 0));
}

#[tokio::test]
async fn group_send_drops_for_full_members_and_reports_it() {
    let server = Server::start(&[]);
    let client = server.client("full").await;
    client.group_add("g", "roomy").await.unwrap();
    client.group_add("g", "tight.1").await.unwrap();
    let rules = vec![CapacityRule {
        pattern: Some(Pattern::Glob("tight.*".into())),
        capacity: 1,
    }];
    let opts = SendOptions::default();
    let first = client
        .group_send_with("g", b("1"), opts, rules.clone())
        .await
        .unwrap();
    assert_eq!((first.delivered, first.dropped), (2, 0));
    let second = client
        .group_send_with("g", b("2"), opts, rules.clone())
        .await
        .unwrap();
    assert_eq!((second.delivered, second.dropped), (1, 1));
    let regex = vec![CapacityRule {
        pattern: Some(Pattern::Regex("tig".into())),
        capacity: 1,
    }];
    let third = client
        .group_send_with("g", b("3"), opts, regex)
        .await
        .unwrap();
    assert_eq!((third.delivered, third.dropped), (1, 1));
    let bad = vec![CapacityRule {
        pattern: Some(Pattern::Regex("(".into())),
        capacity: 1,
    }];
    let err = client
        .group_send_with("g", b("4"), opts, bad)
        .await
        .unwrap_err();
    assert_eq!(err.reason().as_deref(), Some("INVALID_CAPACITY_RULE"));
    assert_eq!(
        client.channel_info("roomy").await.unwrap().queued_messages,
        3
    );
    assert_eq!(client.stats().await.unwrap().dropped_channel_full_total, 2);
}

#[tokio::test]
async fn fifo_holds_per_channel_through_group_send() {
    let server = Server::start(&[]);
    let client = server.client("gfifo").await;
    let session = client.session().await.unwrap();
    let me = session.new_channel("specific");
    client.group_add("g", &me).await.unwrap();
    let opts = SendOptions {
        capacity: 1000,
        expiry: None,
    };
    for i in 0..200 {
        if i % 2 == 0 {
            client
                .send_with(&me, b(&i.to_string()), opts)
                .await
                .unwrap();
        } else {
            client
                .group_send_with("g", b(&i.to_string()), opts, vec![])
                .await
                .unwrap();
        }
    }
    let mut got = Vec::new();
    while got.len() < 200 {
        got.extend(
            session
                .receive_many(&me, 64)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.payload),
        );
    }
    let expected: Vec<Bytes> = (0..200).map(|i| b(&i.to_string())).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn memberships_expire_after_group_expiry() {
    let server = Server::start(&["--sweep-interval-ms", "100"]);
    let client = server.client("gexp").await;
    client
        .group_add_with("g", "short", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    client.group_add("g", "long").await.unwrap();
    assert_eq!(client.group_size("g").await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(client.group_size("g").await.unwrap(), 1);
    assert_eq!(client.group_send("g", b("x")).await.unwrap().delivered, 1);
    assert_eq!(
        client.channel_info("short").await.unwrap().queued_messages,
        0
    );
    assert_eq!(client.stats().await.unwrap().memberships_expired_total, 1);
}

#[tokio::test]
async fn group_members_are_listed_in_pages() {
    let server = Server::start(&[]);
    let client = server.client("pages").await;
    let mut expected: Vec<String> = (0..2_500).map(|i| format!("member.{i:05}")).collect();
    for m in &expected {
        client.group_add("big", m).await.unwrap();
    }
    expected.sort();
    assert_eq!(client.group_members("big").await.unwrap(), expected);
    let err = client
        .grpc()
        .list_group_members(chanlayer::proto::v1::ListGroupMembersRequest {
            namespace: "pages".into(),
            group: "big".into(),
            page_size: 1_000_000,
            page_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn flush_clears_one_namespace_only() {
    let server = Server::start(&[]);
    let a = server.client("ns-a").await;
    let b_client = server.client("ns-b").await;
    for c in [&a, &b_client] {
        c.send("chan", b(c.namespace())).await.unwrap();
        c.group_add("g", "chan").await.unwrap();
    }
    let waiting_session = a.session().await.unwrap();
    let waiting = waiting_session.start_receive("waits", 1).unwrap();
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            a.channel_info("waits").await.unwrap().waiting_receives == 1
        })
        .await
    );
    let report = a.flush().await.unwrap();
    assert_eq!((report.dropped_messages, report.removed_groups), (1, 1));
    assert_eq!(a.channel_info("chan").await.unwrap().queued_messages, 0);
    assert_eq!(a.group_size("g").await.unwrap(), 0);
    assert_eq!(
        b_client.channel_info("chan").await.unwrap().queued_messages,
        1
    );
    assert_eq!(b_client.group_size("g").await.unwrap(), 1);
    // A receive that waited across the flush gets what is sent after it.
    a.send("waits", b("after")).await.unwrap();
    assert_eq!(waiting.wait().await.unwrap()[0].payload, b("after"));
    // Same names in two namespaces never meet.
    let session_b = b_client.session().await.unwrap();
    assert_eq!(session_b.receive("chan").await.unwrap().payload, b("ns-b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_send_to_10_000_members_is_fast() {
    let server = Server::start(&[]);
    let client = server.client("fanout").await;
    let session = client.session().await.unwrap();
    let members: Vec<String> = (0..10_000).map(|i| format!("specific.x!{i}")).collect();
    let adds: Vec<_> = members
        .iter()
        .map(|m| session.group_add("big", m))
        .collect();
    for add in adds {
        add.await.unwrap();
    }
    let start = std::time::Instant::now();
    let sent = client.group_send("big", b("fan")).await.unwrap();
    let took = start.elapsed();
    assert_eq!(sent.delivered, 10_000);
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.queued_messages, 10_000);
    // Not a performance gate (the benchmarks measure it); a sanity bound on a noisy box.
    assert!(took < Duration::from_secs(2), "group_send took {took:?}");
}

/// Opens a raw session stream (with or without `shared_deliveries`), waits on `members`
/// channels of it that are in one group, sends the group a message and returns the events
/// that answer the receives, with the receive id of each channel.
async fn group_send_to_waiting_receives(
    shared: bool,
    members: usize,
) -> (Vec<pb::session_event::Event>, HashMap<u64, String>) {
    use pb::{session_event::Event, session_operation::Operation};
    let server = Server::start(&[]);
    let client = server.client("shared").await;
    let op = |operation| pb::SessionOperation {
        operation: Some(operation),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::SessionRequest {
        operations: vec![op(Operation::Open(pb::OpenOperation {
            namespace: client.namespace().to_owned(),
            shared_deliveries: shared,
            ..Default::default()
        }))],
    })
    .await
    .unwrap();
    let mut inbound = client
        .grpc()
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let prefix = match inbound.message().await.unwrap().unwrap().events[0]
        .event
        .clone()
    {
        Some(Event::Opened(opened)) => opened.client_prefix,
        other => panic!("expected opened, got {other:?}"),
    };
    let mut channels = HashMap::new();
    for i in 0..members {
        let channel = format!("{prefix}!member{i}");
        client.group_add("room", &channel).await.unwrap();
        channels.insert(100 + i as u64, channel);
    }
    // A member without a waiting receive gets the message queued, not delivered.
    client
        .group_add("room", &format!("{prefix}!idle"))
        .await
        .unwrap();
    tx.send(pb::SessionRequest {
        operations: channels
            .iter()
            .map(|(id, channel)| {
                op(Operation::Receive(pb::ReceiveOperation {
                    receive_id: *id,
                    channel: channel.clone(),
                    max_messages: 1,
                }))
            })
            .collect(),
    })
    .await
    .unwrap();
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            client.stats().await.unwrap().pending_receives == members as u64
        })
        .await
    );
    let sent = client.group_send("room", b("hello")).await.unwrap();
    assert_eq!(sent.delivered as usize, members + 1);
    let mut events = Vec::new();
    let mut answered = 0;
    while answered < members {
        let frame = tokio::time::timeout(Duration::from_secs(5), inbound.message())
            .await
            .expect("deliveries arrive")
            .unwrap()
            .unwrap();
        for event in frame.events.into_iter().filter_map(|e| e.event) {
            answered += match &event {
                Event::Delivery(_) => 1,
                Event::SharedDelivery(shared) => shared.receive_ids.len(),
                other => panic!("unexpected event {other:?}"),
            };
            events.push(event);
        }
    }
    assert_eq!(
        client
            .channel_info(&format!("{prefix}!idle"))
            .await
            .unwrap()
            .queued_messages,
        1
    );
    (events, channels)
}

#[tokio::test]
async fn a_stream_with_shared_deliveries_gets_one_event_per_group_send() {
    let (events, channels) = group_send_to_waiting_receives(true, 50).await;
    let [pb::session_event::Event::SharedDelivery(shared)] = &events[..] else {
        panic!("expected one shared delivery, got {events:?}");
    };
    assert_eq!(shared.message, b("hello"));
    assert!(shared.expires_in_ms > 0);
    let mut ids = shared.receive_ids.clone();
    ids.sort_unstable();
    let mut expected: Vec<u64> = channels.keys().copied().collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "every waiting receive, once");
}

#[tokio::test]
async fn a_stream_without_shared_deliveries_gets_a_delivery_per_receive() {
    let (events, channels) = group_send_to_waiting_receives(false, 50).await;
    assert_eq!(events.len(), 50);
    let mut seen = HashSet::new();
    for event in events {
        let pb::session_event::Event::Delivery(delivery) = event else {
            panic!("expected deliveries only, got {event:?}");
        };
        assert_eq!(channels[&delivery.receive_id], delivery.channel);
        assert_eq!(delivery.messages.len(), 1);
        assert_eq!(delivery.messages[0].message, b("hello"));
        assert!(seen.insert(delivery.receive_id));
    }
}

#[tokio::test]
async fn the_rust_client_hands_a_shared_delivery_to_each_waiting_receive() {
    let server = Server::start(&[]);
    let client = server.client("shared-rs").await;
    let session = client.session().await.unwrap();
    let channels: Vec<String> = (0..30).map(|_| session.new_channel("member")).collect();
    for channel in &channels {
        client.group_add("room", channel).await.unwrap();
    }
    let pending: Vec<_> = channels
        .iter()
        .map(|channel| session.start_receive(channel, 1).unwrap())
        .collect();
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            client.stats().await.unwrap().pending_receives == 30
        })
        .await
    );
    client.group_send("room", b("to all")).await.unwrap();
    for (channel, receive) in channels.iter().zip(pending) {
        let got = receive.wait().await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(&*got[0].channel, channel.as_str());
        assert_eq!(got[0].payload, b("to all"));
    }
}
