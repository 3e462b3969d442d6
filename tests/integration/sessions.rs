//! Session leases: resume within the grace period, release after it, client prefixes.

use crate::support;

use std::time::Duration;

use bytes::Bytes;
use chanlayer::proto::v1::OpenOperation;
use chanlayer_client::SendOptions;
use support::Server;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn session_operations_are_acknowledged_in_order() {
    let server = Server::start(&[]);
    let client = server.client("ops").await;
    let session = client.session().await.unwrap();
    let me = session.new_channel("specific");
    let opts = SendOptions {
        capacity: 1000,
        expiry: None,
    };
    let acks: Vec<_> = (0..100)
        .map(|i| session.send(&me, b(&i.to_string()), opts))
        .collect();
    for ack in acks {
        ack.await.unwrap();
    }
    assert!(session.group_add("g", &me).await.unwrap());
    let sent = session.group_send("g", b("g"), opts).await.unwrap();
    assert_eq!(sent.delivered, 1);
    assert!(session.group_discard("g", &me).await.unwrap());
    let got = session.receive_many(&me, 1000).await.unwrap();
    assert_eq!(got.len(), 101);
    assert_eq!(got[100].payload, b("g"));
}

#[tokio::test]
async fn a_send_acknowledgement_reports_how_full_the_channel_is() {
    let server = Server::start(&[]);
    let client = server.client("queued").await;
    let session = client.session().await.unwrap();
    let opts = SendOptions {
        capacity: 3,
        expiry: None,
    };
    for expected in 1..=3 {
        let report = session.send_reporting("work", b("m"), opts).await.unwrap();
        assert_eq!((report.delivered, report.queued), (false, Some(expected)));
    }
    let full = session
        .send_reporting("work", b("m"), opts)
        .await
        .unwrap_err();
    assert_eq!(full.reason().as_deref(), Some("CHANNEL_FULL"), "{full}");
    assert_eq!(session.receive_many("work", 3).await.unwrap().len(), 3);
    let reader = client.session().await.unwrap();
    let waiting = tokio::spawn(async move { reader.receive("work").await.map(|m| m.payload) });
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            client.channel_info("work").await.unwrap().waiting_receives == 1
        })
        .await,
        "the receive reaches the server"
    );
    let report = session.send_reporting("work", b("n"), opts).await.unwrap();
    assert_eq!((report.delivered, report.queued), (true, Some(0)));
    assert_eq!(waiting.await.unwrap().unwrap(), b("n"));
}

#[tokio::test]
async fn a_proposed_prefix_is_used_and_a_taken_one_is_refused() {
    let server = Server::start(&[]);
    let client = server.client("prefix").await;
    let open = |prefix: &str| OpenOperation {
        namespace: "prefix".into(),
        client_prefix: prefix.into(),
        ..Default::default()
    };
    let session = client.open_session(open("abc123")).await.unwrap();
    assert_eq!(session.client_prefix(), "abc123");
    assert!(
        session
            .new_channel("specific")
            .starts_with("specific.abc123!")
    );
    let err = client.open_session(open("abc123")).await.err().unwrap();
    assert_eq!(err.reason().as_deref(), Some("CLIENT_PREFIX_IN_USE"));
    let err = client.open_session(open("bad.prefix")).await.err().unwrap();
    assert_eq!(err.reason().as_deref(), Some("INVALID_CLIENT_PREFIX"));
    // The same prefix in another namespace is another session.
    let other = server.client("prefix-2").await;
    other
        .open_session(OpenOperation {
            namespace: "prefix-2".into(),
            client_prefix: "abc123".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_session_resumed_within_the_grace_period_keeps_everything() {
    let server = Server::start(&["--lease-grace-ms", "5000"]);
    let client = server.client("resume").await;
    let (prefix, token, me) = {
        let session = client.session().await.unwrap();
        let me = session.new_channel("specific");
        session.group_add("room", &me).await.unwrap();
        (
            session.client_prefix().to_owned(),
            session.resume_token().to_owned(),
            me,
        )
    };
    // The stream is gone; messages keep arriving meanwhile.
    let other = server.client("resume").await;
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            other.stats().await.unwrap().sessions_detached == 1
        })
        .await
    );
    other.group_send("room", b("while away")).await.unwrap();
    let session = other.resume_session(&prefix, &token).await.unwrap();
    assert!(session.opened().resumed);
    assert_eq!(session.client_prefix(), prefix);
    assert_eq!(session.receive(&me).await.unwrap().payload, b("while away"));
    assert_eq!(other.group_size("room").await.unwrap(), 1);
}

#[tokio::test]
async fn a_resume_takes_over_a_live_stream() {
    let server = Server::start(&[]);
    let client = server.client("takeover").await;
    let first = client.session().await.unwrap();
    let second = client
        .resume_session(first.client_prefix(), first.resume_token())
        .await
        .unwrap();
    assert!(second.opened().resumed);
    assert!(
        support::eventually(Duration::from_secs(5), || async { first.is_closed() }).await,
        "the old stream is closed"
    );
    assert_eq!(
        first.closing_reason(),
        Some(chanlayer::proto::v1::SessionCloseReason::ResumedElsewhere)
    );
}

#[tokio::test]
async fn a_session_gone_for_good_releases_its_channels_and_memberships() {
    let server = Server::start(&["--lease-grace-ms", "300", "--sweep-interval-ms", "50"]);
    let client = server.client("lease").await;
    let (mine, token, prefix) = {
        let session = client.session().await.unwrap();
        let mine = session.new_channel("specific");
        // A membership added by anyone for the session's channel is leased with it.
        client.group_add("room", &mine).await.unwrap();
        client.group_add("room", "worker-channel").await.unwrap();
        client.send(&mine, b("queued")).await.unwrap();
        (
            mine,
            session.resume_token().to_owned(),
            session.client_prefix().to_owned(),
        )
    };
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            client.group_size("room").await.unwrap() == 1
        })
        .await,
        "the membership is released after the grace period"
    );
    assert_eq!(
        client.group_members("room").await.unwrap(),
        vec!["worker-channel"]
    );
    assert_eq!(client.channel_info(&mine).await.unwrap().queued_messages, 0);
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.dropped_session_gone_total, 1);
    assert_eq!(stats.memberships_released_total, 1);
    assert_eq!(stats.sessions_detached, 0);
    // The token is spent: resuming opens a fresh session with the same prefix.
    let session = client.resume_session(&prefix, &token).await.unwrap();
    assert!(!session.opened().resumed);
}

#[tokio::test]
async fn close_releases_at_once() {
    let server = Server::start(&["--lease-grace-ms", "60000"]);
    let client = server.client("close").await;
    let session = client.session().await.unwrap();
    let mine = session.new_channel("specific");
    session.group_add("room", &mine).await.unwrap();
    session.close().unwrap();
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            client.group_size("room").await.unwrap() == 0
        })
        .await
    );
    // The release is visible to other calls before this stream's reader has taken the
    // closing event: wait for it rather than race it.
    let client_close = Some(chanlayer::proto::v1::SessionCloseReason::ClientClose);
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            session.closing_reason() == client_close
        })
        .await,
        "the stream ends with ClientClose, got {:?}",
        session.closing_reason()
    );
}

#[tokio::test]
async fn only_the_session_holding_a_prefix_receives_on_its_channels() {
    let server = Server::start(&[]);
    let client = server.client("owners").await;
    let owner = client.session().await.unwrap();
    let other = client.session().await.unwrap();
    let owned = owner.new_channel("specific");
    // Anyone may send to the owner's channel and add it to a group.
    other
        .send(&owned, b("direct"), SendOptions::default())
        .await
        .unwrap();
    assert!(other.group_add("room", &owned).await.unwrap());
    client.group_send("room", b("group")).await.unwrap();
    // The other may not receive on it, nor on a prefix nobody holds; it takes nothing.
    for channel in [
        owned.clone(),
        format!("{}!other", owner.client_prefix()),
        "specific.nobody!x".to_owned(),
    ] {
        let err = other.receive(&channel).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
        assert_eq!(err.reason().as_deref(), Some("CHANNEL_NOT_OWNED"), "{err}");
    }
    let got = owner.receive_many(&owned, 10).await.unwrap();
    let payloads: Vec<_> = got.into_iter().map(|m| m.payload).collect();
    assert_eq!(payloads, [b("direct"), b("group")]);
    // Each receives on its own channels and on normal ones.
    let b_channel = other.new_channel("specific");
    client.send(&b_channel, b("mine")).await.unwrap();
    assert_eq!(other.receive(&b_channel).await.unwrap().payload, b("mine"));
    client.send("shared", b("any")).await.unwrap();
    assert_eq!(other.receive("shared").await.unwrap().payload, b("any"));
    assert!(!other.is_closed() && !owner.is_closed());
}
