//! What one client can hold of the server's connections and sessions: connections that
//! send half an HTTP/2 preface are closed within the handshake timeout, connections past
//! `--max-connections` are closed at once, and sessions are limited per namespace as well
//! as per server.

use crate::support;

use std::{
    io::Write,
    net::TcpStream,
    time::{Duration, Instant},
};

use support::{Server, closed_within};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_preface_is_closed_within_the_handshake_timeout() {
    let server = Server::start(&["--handshake-timeout-ms", "500"]);
    let start = Instant::now();
    let mut held: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).expect("connects");
            s.write_all(b"PRI * HTTP/2.0\r\n").expect("half a preface");
            s
        })
        .collect();
    // A connection that sends nothing at all is closed too.
    held.push(TcpStream::connect(server.addr).expect("connects"));
    for stream in &mut held {
        let left = Duration::from_secs(5).saturating_sub(start.elapsed());
        assert!(closed_within(stream, left), "held open past the timeout");
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    // A real client that is slower than the timeout between calls keeps working.
    let client = server.client("slow").await;
    client.send("c", &b"one"[..]).await.expect("a call");
    tokio::time::sleep(Duration::from_millis(800)).await;
    client
        .send("c", &b"two"[..])
        .await
        .expect("a call after the timeout");
    assert_eq!(client.channel_info("c").await.unwrap().queued_messages, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_closed_at_once() {
    let server = Server::start(&["--max-connections", "3", "--handshake-timeout-ms", "30000"]);
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(server.addr).expect("connects"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(server.addr).expect("the kernel accepts it");
    let start = Instant::now();
    assert!(closed_within(&mut extra, Duration::from_secs(5)));
    assert!(start.elapsed() < Duration::from_secs(2));
    // Their places come back when they close.
    drop(idle);
    support::connections_come_back(&server, "after").await;
    assert_eq!(
        server
            .scrape()
            .value("chanlayer_limit{limit=\"connections\"}"),
        3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_limited_per_namespace() {
    let server = Server::start(&["--max-sessions-per-namespace", "2", "--max-sessions", "3"]);
    let greedy = server.client("greedy").await;
    let first = greedy.session().await.unwrap();
    let _second = greedy.session().await.unwrap();
    let Err(refused) = greedy.session().await else {
        panic!("a third session of greedy opened");
    };
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    assert_eq!(refused.reason().as_deref(), Some("TOO_MANY_SESSIONS"));
    assert!(refused.to_string().contains("greedy"), "{refused}");
    // Another namespace still gets one; then the server's own limit applies.
    let polite = server.client("polite").await;
    let _own = polite
        .session()
        .await
        .expect("another namespace opens a session");
    let Err(full) = polite.session().await else {
        panic!("the server holds 3");
    };
    assert_eq!(full.reason().as_deref(), Some("TOO_MANY_SESSIONS"));
    // A closed session frees its place in its namespace.
    first.close().unwrap();
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            greedy.session().await.is_ok()
        })
        .await
    );
    let metrics = server.scrape();
    assert!(metrics.value("chanlayer_limit_hits_total{limit=\"sessions_per_namespace\"}") >= 1.0);
    assert!(metrics.value("chanlayer_limit_hits_total{limit=\"sessions\"}") >= 1.0);
}
