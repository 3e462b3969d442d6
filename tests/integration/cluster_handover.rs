//! Cluster mode: what a node kept for a client prefix that no node held reaches the node
//! where that prefix's session opens, also when the keeping node missed the announcement
//! (it was cut off from NATS at the time). Real NATS servers and real nodes, as in
//! the `cluster` module.

use crate::support::{self, nats};

use std::time::{Duration, Instant};

use chanlayer::proto::v1 as pb;
use nats::{NS, TwoNodes, wait_ready};
use support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_node_kept_reaches_a_session_that_opened_while_it_was_cut_off() {
    let _serial = nats::SERIAL.lock().await;
    let mut t = TwoNodes::start(&[]).await;
    // Node C knows NATS server 0 alone: while it is down, C is cut off.
    let urls = t.nats.servers[0].url();
    let c = Server::start(&[
        "--cluster-nats-url",
        &urls,
        "--cluster-node-name",
        "c",
        "--cluster-heartbeat-ms",
        "200",
    ]);
    assert!(wait_ready(&c, Duration::from_secs(10)), "C is not ready");
    let on_c = c.client(NS).await;
    // No node holds the prefix yet: C keeps what it is sent.
    let channel = "specific.cut1!x";
    for i in 0..3 {
        on_c.send(channel, format!("{i}")).await.unwrap();
    }
    assert_eq!(on_c.channel_info(channel).await.unwrap().queued_messages, 3);

    t.nats.servers[0].kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.http_get("/readyz").0 == 200 {
        assert!(Instant::now() < deadline, "C did not notice NATS was gone");
        std::thread::sleep(Duration::from_millis(50));
    }
    // B's session claims the prefix meanwhile: C does not hear it.
    let session = t
        .on_b
        .open_session(pb::OpenOperation {
            namespace: NS.into(),
            client_prefix: "cut1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    t.nats.servers[0].restart();
    t.nats.wait_routed(Duration::from_secs(10));
    assert!(
        wait_ready(&c, Duration::from_secs(15)),
        "C did not come back"
    );

    // C asks whether someone holds the prefix now, and hands over what it kept.
    for i in 0..3 {
        let got = tokio::time::timeout(Duration::from_secs(10), session.receive(channel))
            .await
            .expect("handed over after C came back")
            .unwrap();
        assert_eq!(&got.payload[..], format!("{i}").as_bytes());
    }
    assert_eq!(on_c.channel_info(channel).await.unwrap().queued_messages, 0);
}
