//! Namespaces: only calls that store something create one, questions about an unknown one
//! answer as for an empty one, and a namespace left with nothing is removed, so that
//! probes or a fresh namespace per test never exhaust `--max-namespaces`.

use crate::support;

use std::time::Duration;

use bytes::Bytes;
use chanlayer::proto::v1 as pb;
use support::{Server, eventually};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The `chanlayer_namespaces` gauge.
fn namespaces(server: &Server) -> f64 {
    server.scrape().value("chanlayer_namespaces")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_about_unknown_namespaces_create_none() {
    let server = Server::start(&["--max-namespaces", "3"]);
    let asgi = server.client("asgi").await;
    let mut grpc = asgi.grpc();
    for i in 0..2_000 {
        let namespace = format!("probe-{i}");
        let group = grpc
            .get_group(pb::GetGroupRequest {
                namespace: namespace.clone(),
                group: "g".into(),
            })
            .await
            .expect("GetGroup on an unknown namespace answers")
            .into_inner();
        assert_eq!(group.member_count, 0);
        if i % 100 == 0 {
            let members = grpc
                .list_group_members(pb::ListGroupMembersRequest {
                    namespace: namespace.clone(),
                    group: "g".into(),
                    ..Default::default()
                })
                .await
                .expect("ListGroupMembers answers")
                .into_inner();
            assert!(members.members.is_empty());
            let channel = grpc
                .get_channel(pb::GetChannelRequest {
                    namespace: namespace.clone(),
                    channel: "c".into(),
                })
                .await
                .expect("GetChannel answers")
                .into_inner();
            assert_eq!(channel.queued_messages, 0);
            let flushed = grpc
                .flush(pb::FlushRequest {
                    namespace: namespace.clone(),
                })
                .await
                .expect("Flush answers")
                .into_inner();
            assert_eq!(flushed.dropped_messages, 0);
            let discarded = grpc
                .group_discard(pb::GroupDiscardRequest {
                    namespace: namespace.clone(),
                    group: "g".into(),
                    channel: "c".into(),
                })
                .await
                .expect("GroupDiscard answers")
                .into_inner();
            assert!(!discarded.removed);
            let sent = grpc
                .group_send(pb::GroupSendRequest {
                    namespace: namespace.clone(),
                    group: "g".into(),
                    message: b("m"),
                    ..Default::default()
                })
                .await
                .expect("GroupSend to nobody answers")
                .into_inner();
            assert_eq!(sent.delivered, 0);
        }
    }
    // A bad name is still refused as one.
    let bad = grpc
        .get_group(pb::GetGroupRequest {
            namespace: "has space".into(),
            group: "g".into(),
        })
        .await
        .expect_err("an invalid namespace is refused");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let bad = grpc
        .get_channel(pb::GetChannelRequest {
            namespace: "probe-x".into(),
            channel: "bad name".into(),
        })
        .await
        .expect_err("an invalid channel is refused");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert_eq!(namespaces(&server), 0.0, "no question created a namespace");

    // asgi is fully usable: send, a session, receive, groups, flush.
    asgi.send("work", b("one")).await.expect("send");
    let session = asgi.session().await.expect("a session opens");
    let me = session.new_channel("specific");
    assert!(asgi.group_add("room", &me).await.expect("group_add"));
    asgi.group_send("room", b("hello"))
        .await
        .expect("group_send");
    assert_eq!(session.receive(&me).await.unwrap().payload, b("hello"));
    assert_eq!(session.receive("work").await.unwrap().payload, b("one"));
    asgi.flush().await.expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_namespace_is_removed() {
    let server = Server::start(&["--max-namespaces", "2", "--sweep-interval-ms", "50"]);
    let keep = server.client("keep").await;
    keep.send("c", b("stays")).await.unwrap();

    let tmp = server.client("tmp").await;
    let session = tmp.session().await.unwrap();
    let me = session.new_channel("specific");
    tmp.send("queue", b("m")).await.unwrap();
    tmp.group_add("room", &me).await.unwrap();
    let pending = session.start_receive("idle", 1).unwrap();
    assert_eq!(namespaces(&server), 2.0);
    // The limit is reached: a third namespace is refused while both are in use.
    let third = server.client("third").await;
    let refused = third.send("c", b("x")).await.expect_err("at the limit");
    assert_eq!(refused.reason().as_deref(), Some("LIMIT_EXCEEDED"));

    // Empty tmp of everything: its message, its group, its waiting receive, its session.
    assert_eq!(session.receive("queue").await.unwrap().payload, b("m"));
    assert!(tmp.group_discard("room", &me).await.unwrap());
    assert!(pending.cancel().await.unwrap());
    session.close().unwrap();
    drop(session);
    assert!(
        eventually(Duration::from_secs(10), || async {
            namespaces(&server) == 1.0
        })
        .await,
        "the emptied namespace is removed from the server's stats"
    );
    // Its place is free, and the namespace that holds something is untouched.
    third.send("c", b("x")).await.expect("a new namespace fits");
    let reader = keep.session().await.unwrap();
    assert_eq!(reader.receive("c").await.unwrap().payload, b("stays"));
    // A namespace whose session awaits resume stays, even with nothing in it.
    drop(reader);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        namespaces(&server),
        2.0,
        "keep (a detached session) and third"
    );
}
