//! Send, receive, capacity, expiry and bad input, through real gRPC against the binary.

use crate::support;

use std::{collections::HashSet, time::Duration};

use bytes::Bytes;
use chanlayer::proto::v1::{self as pb, session_operation::Operation};
use chanlayer_client::{ClientError, SendOptions};
use support::Server;
use tonic::Code;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn send_then_receive_in_fifo_order() {
    let server = Server::start(&[]);
    let client = server.client("fifo").await;
    let session = client.session().await.unwrap();
    for i in 0..50 {
        assert!(!client.send("work", b(&i.to_string())).await.unwrap());
    }
    for i in 0..50 {
        let m = session.receive("work").await.unwrap();
        assert_eq!(m.payload, b(&i.to_string()));
        assert_eq!(&*m.channel, "work");
        assert!(m.expires_in > Duration::from_secs(50) && m.expires_in <= Duration::from_secs(60));
    }
}

#[tokio::test]
async fn a_waiting_receive_gets_the_next_send() {
    let server = Server::start(&[]);
    let client = server.client("wait").await;
    let session = client.session().await.unwrap();
    let pending = session.start_receive("later", 1).unwrap();
    // Let the receive reach the server first.
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            client.channel_info("later").await.unwrap().waiting_receives == 1
        })
        .await
    );
    assert!(
        client.send("later", b("now")).await.unwrap(),
        "handed straight to the receive"
    );
    let got = pending.wait().await.unwrap();
    assert_eq!(got[0].payload, b("now"));
}

#[tokio::test]
async fn prefetch_takes_up_to_max_messages_in_order() {
    let server = Server::start(&[]);
    let client = server.client("prefetch").await;
    let session = client.session().await.unwrap();
    let me = session.new_channel("specific");
    for i in 0..10 {
        client.send(&me, b(&i.to_string())).await.unwrap();
    }
    let first = session.receive_many(&me, 4).await.unwrap();
    let rest = session.receive_many(&me, 100).await.unwrap();
    let all: Vec<Bytes> = first.into_iter().chain(rest).map(|m| m.payload).collect();
    let expected: Vec<Bytes> = (0..10).map(|i| b(&i.to_string())).collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn capacity_counts_per_full_channel_name() {
    let server = Server::start(&[]);
    let client = server.client("cap").await;
    let opts = SendOptions {
        capacity: 3,
        expiry: None,
    };
    for _ in 0..3 {
        client.send_with("p.x!a", b("m"), opts).await.unwrap();
    }
    let err = client.send_with("p.x!a", b("m"), opts).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(err.reason().as_deref(), Some("CHANNEL_FULL"));
    // Another channel of the same process is not affected.
    client.send_with("p.x!b", b("m"), opts).await.unwrap();
    // The default capacity is 100.
    for _ in 0..100 {
        client.send("dflt", b("m")).await.unwrap();
    }
    assert_eq!(
        client
            .send("dflt", b("m"))
            .await
            .unwrap_err()
            .reason()
            .as_deref(),
        Some("CHANNEL_FULL")
    );
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.dropped_channel_full_total, 2);
}

#[tokio::test]
async fn expired_messages_are_never_delivered() {
    let server = Server::start(&["--sweep-interval-ms", "50"]);
    let client = server.client("expiry").await;
    let session = client.session().await.unwrap();
    let short = SendOptions {
        capacity: 0,
        expiry: Some(Duration::from_millis(100)),
    };
    client.send_with("c", b("old"), short).await.unwrap();
    client.send("c", b("new")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(session.receive("c").await.unwrap().payload, b("new"));
    // An expired message frees its capacity.
    let one = SendOptions {
        capacity: 1,
        expiry: Some(Duration::from_millis(500)),
    };
    client.send_with("d", b("a"), one).await.unwrap();
    assert!(client.send_with("d", b("b"), one).await.is_err());
    tokio::time::sleep(Duration::from_millis(600)).await;
    client.send_with("d", b("c"), one).await.unwrap();
    assert_eq!(session.receive("d").await.unwrap().payload, b("c"));
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.dropped_expired_total, 2);
}

#[tokio::test]
async fn invalid_names_are_refused_with_a_reason_that_names_them() {
    let server = Server::start(&[]);
    let client = server.client("names").await;
    for bad in ["", "has space", "a!b!c", "é", &"x".repeat(100)] {
        let err = client.send(bad, b("m")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert_eq!(err.reason().as_deref(), Some("INVALID_CHANNEL_NAME"));
    }
    let err = client.send("bad name", b("m")).await.unwrap_err();
    assert!(err.to_string().contains("\"bad name\""), "{err}");
    let err = client.group_add("group!", "ok").await.unwrap_err();
    assert_eq!(err.reason().as_deref(), Some("INVALID_GROUP_NAME"));
    let err = client.group_send("", b("m")).await.unwrap_err();
    assert_eq!(err.reason().as_deref(), Some("INVALID_GROUP_NAME"));
    let bad_ns = server.client("has space").await;
    let err = bad_ns.send("c", b("m")).await.unwrap_err();
    assert_eq!(err.reason().as_deref(), Some("INVALID_NAMESPACE"));
    // On a session, a bad receive fails alone and the stream goes on.
    let session = client.session().await.unwrap();
    let err = session.receive("no spaces").await.unwrap_err();
    assert_eq!(err.reason().as_deref(), Some("INVALID_CHANNEL_NAME"));
    let err = session
        .send("bad!!", b("m"), SendOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason().as_deref(), Some("INVALID_CHANNEL_NAME"));
    client.send("fine", b("m")).await.unwrap();
    assert_eq!(session.receive("fine").await.unwrap().payload, b("m"));
}

#[tokio::test]
async fn oversize_messages_are_refused_and_nothing_is_lost() {
    let server = Server::start(&["--max-message-bytes", "100000"]);
    let client = server.client("size").await;
    let session = client.session().await.unwrap();
    client.send("c", vec![1u8; 100_000]).await.unwrap();
    let err = client.send("c", vec![1u8; 100_001]).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(err.reason().as_deref(), Some("MESSAGE_TOO_LARGE"));
    let err = session
        .send("c", Bytes::from(vec![2u8; 100_001]), SendOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason().as_deref(), Some("MESSAGE_TOO_LARGE"));
    client.group_add("g", "c").await.unwrap();
    let err = client
        .group_send("g", vec![1u8; 100_001])
        .await
        .unwrap_err();
    assert_eq!(err.reason().as_deref(), Some("MESSAGE_TOO_LARGE"));
    // Far above the frame limit: refused by the transport (tonic answers OUT_OF_RANGE
    // "decoded message length too large"), and the server stays up.
    let err = client.send("c", vec![1u8; 3_000_000]).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{err}"
    );
    assert_eq!(session.receive("c").await.unwrap().payload.len(), 100_000);
    assert_eq!(client.channel_info("c").await.unwrap().queued_messages, 0);
}

#[tokio::test]
async fn two_sessions_competing_for_one_channel_get_distinct_messages() {
    let server = Server::start(&[]);
    let client = server.client("compete").await;
    let a = client.session().await.unwrap();
    let b_session = client.session().await.unwrap();
    let total = 400;
    let reader = |session: chanlayer_client::Session| async move {
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_millis(500), session.receive("shared")).await
            {
                Ok(Ok(m)) => got.push(m.payload),
                _ => return got,
            }
        }
    };
    let ha = tokio::spawn(reader(a));
    let hb = tokio::spawn(reader(b_session));
    for i in 0..total {
        client.send("shared", b(&i.to_string())).await.unwrap();
    }
    let (ga, gb) = (ha.await.unwrap(), hb.await.unwrap());
    assert!(
        !ga.is_empty() && !gb.is_empty(),
        "both readers got messages: {} {}",
        ga.len(),
        gb.len()
    );
    let mut seen = HashSet::new();
    for m in ga.iter().chain(gb.iter()) {
        assert!(seen.insert(m.clone()), "{m:?} delivered twice");
    }
    assert_eq!(seen.len(), total, "every message delivered once");
}

#[tokio::test]
async fn cancelled_receives_lose_no_message() {
    let server = Server::start(&[]);
    let client = server.client("cancel").await;
    let session = client.session().await.unwrap();
    let sender = client.clone();
    let total = 300;
    let producer = tokio::spawn(async move {
        for i in 0..total {
            sender
                .send_with(
                    "race",
                    b(&i.to_string()),
                    SendOptions {
                        capacity: 1000,
                        expiry: None,
                    },
                )
                .await
                .unwrap();
            if i % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let mut got = Vec::new();
    let mut cancels = 0;
    while got.len() < total {
        let pending = session.start_receive("race", 1).unwrap();
        if cancels < 500 && got.len() % 3 == 0 {
            // Cancel at once: whatever raced with the cancel must not be lost.
            let _was_pending = pending.cancel().await.unwrap();
            cancels += 1;
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(5), pending.wait()).await {
            Ok(Ok(messages)) => got.extend(messages.into_iter().map(|m| m.payload)),
            other => panic!("receive failed: {:?}", other.map(|r| r.map(|_| ())).err()),
        }
    }
    producer.await.unwrap();
    let expected: Vec<Bytes> = (0..total).map(|i| b(&i.to_string())).collect();
    assert_eq!(got, expected, "every message exactly once, in order");
    assert!(cancels > 50);
}

#[tokio::test]
async fn cancel_reports_whether_the_receive_was_pending() {
    let server = Server::start(&[]);
    let client = server.client("cancel2").await;
    let session = client.session().await.unwrap();
    let pending = session.start_receive("idle", 1).unwrap();
    assert!(pending.cancel().await.unwrap());
    // An unknown receive id gets a clear answer, not a broken stream.
    session
        .queue_raw(Operation::Cancel(pb::CancelOperation {
            receive_id: 987_654,
        }))
        .unwrap();
    client.send("after", b("x")).await.unwrap();
    assert_eq!(session.receive("after").await.unwrap().payload, b("x"));
    assert!(!session.is_closed());
}

#[tokio::test]
async fn a_receive_before_open_fails_the_stream_with_a_reason() {
    let server = Server::start(&[]);
    let client = server.client("noopen").await;
    let ops = vec![pb::SessionRequest {
        operations: vec![pb::SessionOperation {
            operation: Some(Operation::Receive(pb::ReceiveOperation {
                receive_id: 1,
                channel: "c".into(),
                max_messages: 1,
            })),
        }],
    }];
    let result = client.grpc().session(tokio_stream::iter(ops)).await;
    let status = match result {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(status.code(), Code::FailedPrecondition);
    let err = ClientError::Status(status);
    assert_eq!(err.reason().as_deref(), Some("SESSION_NOT_OPEN"));
}

#[tokio::test]
async fn a_second_open_and_an_empty_operation_fail_the_stream() {
    let server = Server::start(&[]);
    let client = server.client("reopen").await;
    let session = client.session().await.unwrap();
    session
        .queue_raw(Operation::Open(pb::OpenOperation::default()))
        .unwrap();
    assert!(
        support::eventually(Duration::from_secs(5), || async { session.is_closed() }).await,
        "the stream ends"
    );
}

#[tokio::test]
async fn duplicate_receive_ids_and_the_pending_limit_are_refused() {
    let server = Server::start(&["--max-pending-receives", "3"]);
    let client = server.client("limits").await;
    let session = client.session().await.unwrap();
    let held: Vec<_> = (0..3)
        .map(|i| session.start_receive(&format!("c{i}"), 1).unwrap())
        .collect();
    let err = session.receive("c9").await.unwrap_err();
    assert_eq!(err.reason().as_deref(), Some("TOO_MANY_PENDING_RECEIVES"));
    drop(held);
}

#[tokio::test]
async fn a_client_that_drops_its_stream_with_receives_pending_loses_nothing() {
    let server = Server::start(&[]);
    let client = server.client("drop").await;
    {
        let session = client.session().await.unwrap();
        let _pending: Vec<_> = (0..10)
            .map(|_| session.start_receive("orphan", 1).unwrap())
            .collect();
        assert!(
            support::eventually(Duration::from_secs(5), || async {
                client
                    .channel_info("orphan")
                    .await
                    .unwrap()
                    .waiting_receives
                    == 10
            })
            .await
        );
        // The session and its connection go away here.
    }
    let other = server.client("drop").await;
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            other.channel_info("orphan").await.unwrap().waiting_receives == 0
        })
        .await,
        "the server withdraws the receives of a broken stream"
    );
    for i in 0..5 {
        other.send("orphan", b(&i.to_string())).await.unwrap();
    }
    let session = other.session().await.unwrap();
    let got = session.receive_many("orphan", 10).await.unwrap();
    assert_eq!(got.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_holds_100_000_pending_receives() {
    let server = Server::start(&[]);
    let client = server.client("many").await;
    let session = client.session().await.unwrap();
    let name = |i: usize| format!("specific.{}!{i}", session.client_prefix());
    let n = 100_000;
    let pending: Vec<_> = (0..n)
        .map(|i| session.start_receive(&name(i), 1).unwrap())
        .collect();
    assert!(
        support::eventually(Duration::from_secs(30), || async {
            client.stats().await.unwrap().pending_receives == n as u64
        })
        .await,
        "all receives registered"
    );
    // Every one of them is live: deliver to a spread of them.
    for i in (0..n).step_by(10_000) {
        assert!(client.send(&name(i), b(&i.to_string())).await.unwrap());
    }
    let mut delivered = 0;
    for (i, p) in pending.into_iter().enumerate() {
        if i % 10_000 == 0 {
            let got = p.wait().await.unwrap();
            assert_eq!(got[0].payload, b(&i.to_string()));
            delivered += 1;
        }
    }
    assert_eq!(delivered, 10);
}

#[tokio::test]
async fn a_receive_dropped_after_its_delivery_arrived_keeps_the_message() {
    let server = Server::start(&[]);
    let client = server.client("dropped").await;
    let session = client.session().await.unwrap();
    let pending = session.start_receive("c", 1).unwrap();
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            client.channel_info("c").await.unwrap().waiting_receives == 1
        })
        .await
    );
    assert!(client.send("c", b("kept")).await.unwrap());
    // Give the delivery time to reach the client, then drop the receive unpolled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(pending);
    let got = tokio::time::timeout(Duration::from_secs(5), session.receive("c"))
        .await
        .expect("the kept message is served")
        .unwrap();
    assert_eq!(got.payload, b("kept"));
}
