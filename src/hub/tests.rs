//! Tests of the hub's timed rules (message expiry, membership expiry, session leases) on
//! tokio's paused clock, which the hub reads: nothing here sleeps on the wall clock.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;

use super::{outbox::Outbox, *};

fn hub(lease_grace: Duration) -> Arc<Hub> {
    let config = HubConfig {
        lease_grace,
        ..HubConfig::default()
    };
    Hub::with_backplane(config, Arc::new(NoObserver), None)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The outbox's next batch, waiting for one as a stream's writer does.
async fn next_batch(outbox: &Outbox) -> Batch {
    std::future::poll_fn(|cx| outbox.poll_batch(cx, usize::MAX)).await
}

/// The payloads of the next batch's deliveries.
async fn delivered(outbox: &Outbox) -> Vec<Bytes> {
    match next_batch(outbox).await {
        Batch::Events(events) => events
            .into_iter()
            .flat_map(|event| match event {
                Event::Delivery { messages, .. } => messages,
                other => panic!("expected a delivery, got {other:?}"),
            })
            .map(|m| m.payload)
            .collect(),
        Batch::End => panic!("the stream ended"),
    }
}

/// A new session of `namespace`, and its outbox.
async fn open(hub: &Arc<Hub>, namespace: &str) -> (SessionHandle, Arc<Outbox>) {
    let (session, _) = hub
        .open_session(OpenRequest {
            namespace: namespace.into(),
            ..OpenRequest::default()
        })
        .await
        .unwrap();
    let outbox = session.outbox();
    (session, outbox)
}

/// A writer task waiting for the outbox's next deliveries.
fn spawn_writer(outbox: &Arc<Outbox>) -> tokio::task::JoinHandle<Vec<Bytes>> {
    let outbox = Arc::clone(outbox);
    tokio::spawn(async move { delivered(&outbox).await })
}

#[tokio::test(start_paused = true)]
async fn expired_messages_are_never_delivered_and_free_their_capacity() {
    let hub = hub(Duration::from_secs(30));
    let short = Duration::from_millis(100);
    hub.send("ns", "c", b("old"), 100, short).await.unwrap();
    hub.send("ns", "c", b("new"), 100, Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(200)).await;
    let (mut session, outbox) = open(&hub, "ns").await;
    session.receive(1, "c", 10);
    assert_eq!(delivered(&outbox).await, [b("new")]);
    // An expired message frees its capacity.
    hub.send("ns", "d", b("a"), 1, short).await.unwrap();
    assert!(hub.send("ns", "d", b("b"), 1, short).await.is_err());
    tokio::time::advance(Duration::from_millis(150)).await;
    hub.send("ns", "d", b("c"), 1, short).await.unwrap();
    session.receive(2, "d", 10);
    assert_eq!(delivered(&outbox).await, [b("c")]);
    let stats = hub.stats();
    assert_eq!(stats.core.dropped_expired_total, 2);
    assert_eq!(stats.delivered_total, 2);
}

#[tokio::test(start_paused = true)]
async fn memberships_expire_after_group_expiry() {
    let hub = hub(Duration::from_secs(30));
    hub.group_add("ns", "g", "short", Duration::from_secs(1))
        .await
        .unwrap();
    hub.group_add("ns", "g", "long", Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(hub.group_size("ns", "g").await.unwrap(), (2, 0));
    tokio::time::advance(Duration::from_millis(1_200)).await;
    assert_eq!(hub.group_size("ns", "g").await.unwrap(), (1, 0));
    let rules = CapacityRules::uniform(100);
    let sent = hub
        .group_send("ns", "g", b("x"), &rules, Duration::from_secs(60))
        .unwrap();
    assert_eq!(sent, (1, 0));
    assert_eq!(hub.channel_info("ns", "short").unwrap().queued_messages, 0);
    assert_eq!(hub.stats().core.memberships_expired_total, 1);
}

#[tokio::test(start_paused = true)]
async fn a_detached_session_is_released_when_its_lease_runs_out() {
    let grace = Duration::from_millis(300);
    let hub = hub(grace);
    let (session, opened) = hub
        .open_session(OpenRequest {
            namespace: "lease".into(),
            ..OpenRequest::default()
        })
        .await
        .unwrap();
    let mine = format!("specific.{}!1", opened.client_prefix);
    hub.group_add("lease", "g", &mine, Duration::from_secs(60))
        .await
        .unwrap();
    hub.send("lease", &mine, b("queued"), 100, Duration::from_secs(60))
        .await
        .unwrap();
    session.end();
    assert_eq!(hub.stats().sessions_detached, 1);
    tokio::time::advance(grace / 2).await;
    assert_eq!(hub.expire_leases(), 0, "still within the grace period");
    let (resumed, again) = hub
        .open_session(OpenRequest {
            namespace: "lease".into(),
            resume_token: opened.resume_token.clone(),
            ..OpenRequest::default()
        })
        .await
        .unwrap();
    assert!(again.resumed);
    resumed.end();
    // The lease restarts when the resumed stream ends.
    tokio::time::advance(grace / 2).await;
    assert_eq!(hub.expire_leases(), 0);
    tokio::time::advance(grace).await;
    assert_eq!(hub.expire_leases(), 1);
    assert_eq!(hub.group_size("lease", "g").await.unwrap(), (0, 0));
    assert_eq!(hub.channel_info("lease", &mine).unwrap().queued_messages, 0);
    let stats = hub.stats();
    assert_eq!(
        (
            stats.sessions_detached,
            stats.sessions_released_total,
            stats.core.dropped_session_gone_total,
            stats.core.memberships_released_total
        ),
        (0, 1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn every_delivery_is_counted_once() {
    let hub = hub(Duration::from_secs(30));
    let (mut session, outbox) = open(&hub, "count").await;
    // A receive that waits, then a send: the handoff path.
    session.receive(1, "c", 1);
    assert!(
        hub.send("count", "c", b("1"), 100, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(delivered(&outbox).await, [b("1")]);
    // Messages already queued: the receive takes them at once.
    hub.send("count", "c", b("2"), 100, Duration::from_secs(60))
        .await
        .unwrap();
    hub.send("count", "c", b("3"), 100, Duration::from_secs(60))
        .await
        .unwrap();
    session.receive(2, "c", 10);
    assert_eq!(delivered(&outbox).await, [b("2"), b("3")]);
    assert_eq!(hub.stats().delivered_total, 3);
    // A cancelled receive gets nothing, and the message waits for the next one.
    session.receive(3, "c", 1);
    session.cancel(3);
    match next_batch(&outbox).await {
        Batch::Events(events) => assert!(matches!(
            events[..],
            [Event::Cancelled {
                receive_id: 3,
                was_pending: true
            }]
        )),
        Batch::End => panic!("the stream ended"),
    }
    hub.send("count", "c", b("4"), 100, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(hub.channel_info("count", "c").unwrap().queued_messages, 1);
    assert_eq!(hub.stats().delivered_total, 3);
}

#[tokio::test(start_paused = true)]
async fn a_corked_outbox_wakes_nobody_and_its_writer_takes_everything_next() {
    let hub = hub(Duration::from_secs(30));
    let (mut session, outbox) = open(&hub, "ns").await;
    let writer = spawn_writer(&outbox);
    tokio::task::yield_now().await;
    outbox.cork();
    session.receive(1, "c", 10);
    hub.send("ns", "c", b("x"), 100, Duration::from_secs(60))
        .await
        .unwrap();
    outbox.uncork();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        !writer.is_finished(),
        "the writer woke for a push made while the outbox was corked"
    );
    // The writer that corked the outbox takes what was pushed meanwhile when it polls next.
    writer.abort();
    assert_eq!(delivered(&outbox).await, [b("x")]);
    // Uncorked, a push wakes the writer at once.
    session.receive(2, "c", 10);
    let writer = spawn_writer(&outbox);
    tokio::task::yield_now().await;
    hub.send("ns", "c", b("y"), 100, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(writer.await.unwrap(), [b("y")]);
}
