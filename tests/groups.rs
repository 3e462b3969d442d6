//! Groups, flush, namespaces and introspection over real gRPC.

mod support;

use std::time::Duration;

use bytes::Bytes;
use chanlayer::{
    client::SendOptions,
    proto::v1::{CapacityRule, capacity_rule::Pattern},
};
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
