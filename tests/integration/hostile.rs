//! Hostile input: every numeric field of every call at its extremes, on unary calls and on
//! a Session stream, gets a clear answer (a result, or a status with an `ErrorInfo`
//! reason) and never a panic; the server's maxima refuse what would hold memory for good,
//! and a client queuing past the byte limits is refused while the others keep working.

use crate::support;

use std::time::Duration;

use bytes::Bytes;
use chanlayer::proto::v1::{
    self as pb, capacity_rule, session_event::Event, session_operation::Operation,
};
use chanlayer_client::ClientError;
use support::Server;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

const U32: [u32; 4] = [0, 1, u32::MAX - 1, u32::MAX];
const U64: [u64; 6] = [0, 1, 1 << 53, 1 << 63, u64::MAX - 1, u64::MAX];

/// The reason and `limit` metadata of a refusal, checking it has an `ErrorInfo`.
fn reason(status: &Status) -> (String, Option<String>) {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    (info.reason, info.metadata.get("limit").cloned())
}

/// A unary answer: OK, or a refusal with a reason (never a transport failure).
fn clear<T>(
    result: Result<tonic::Response<T>, Status>,
) -> Result<T, (Code, String, Option<String>)> {
    match result {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => {
            assert!(
                !matches!(
                    status.code(),
                    Code::Unknown | Code::Cancelled | Code::Internal | Code::Unavailable
                ),
                "not a clear answer: {status:?}"
            );
            let (reason, limit) = reason(&status);
            Err((status.code(), reason, limit))
        }
    }
}

/// The server still serves: a send and a receive, and its stats.
async fn still_serving(server: &Server) {
    let client = server.client("alive").await;
    client.send("ping", b("pong")).await.expect("a send");
    let session = client.session().await.expect("a session");
    assert_eq!(session.receive("ping").await.unwrap().payload, b("pong"));
    client.stats().await.expect("stats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_answer_every_extreme_value() {
    let server = Server::start(&[]);
    let client = server.client("extremes").await;
    let mut grpc = client.grpc();
    let namespace = || "extremes".to_owned();
    for capacity in U32 {
        for expiry_ms in U64 {
            let sent = clear(
                grpc.send(pb::SendRequest {
                    namespace: namespace(),
                    channel: format!("c{capacity}-{expiry_ms}"),
                    message: b("m"),
                    capacity,
                    expiry_ms,
                })
                .await,
            );
            let too_long = expiry_ms > 86_400_000;
            let too_big = capacity > 1_000_000;
            match sent {
                Ok(_) => assert!(!too_long && !too_big, "{capacity} {expiry_ms}"),
                Err((code, reason, limit)) => {
                    assert!(too_long || too_big, "{capacity} {expiry_ms}: {reason}");
                    assert_eq!(
                        (code, reason.as_str()),
                        (Code::ResourceExhausted, "LIMIT_EXCEEDED")
                    );
                    let expected = if too_big { "capacity" } else { "expiry_ms" };
                    assert_eq!(limit.as_deref(), Some(expected));
                }
            }
            let rules = vec![pb::CapacityRule {
                pattern: Some(capacity_rule::Pattern::Glob("c*".into())),
                capacity,
            }];
            let group_sent = clear(
                grpc.group_send(pb::GroupSendRequest {
                    namespace: namespace(),
                    group: "g".into(),
                    message: b("m"),
                    capacity,
                    channel_capacity: rules,
                    expiry_ms,
                })
                .await,
            );
            match group_sent {
                Ok(_) => assert!(!too_long && !too_big),
                Err((code, reason, _)) => {
                    assert!(too_long || too_big, "{capacity} {expiry_ms}: {reason}");
                    assert_eq!(
                        (code, reason.as_str()),
                        (Code::ResourceExhausted, "LIMIT_EXCEEDED")
                    );
                }
            }
        }
    }
    for group_expiry_seconds in U64 {
        let added = clear(
            grpc.group_add(pb::GroupAddRequest {
                namespace: namespace(),
                group: "g".into(),
                channel: "c".into(),
                group_expiry_seconds,
            })
            .await,
        );
        match added {
            Ok(_) => assert!(group_expiry_seconds <= 30 * 86_400),
            Err((code, reason, limit)) => {
                assert!(group_expiry_seconds > 30 * 86_400, "{reason}");
                assert_eq!(
                    (code, reason.as_str()),
                    (Code::ResourceExhausted, "LIMIT_EXCEEDED")
                );
                assert_eq!(limit.as_deref(), Some("group_expiry_seconds"));
            }
        }
    }
    grpc.group_add(pb::GroupAddRequest {
        namespace: namespace(),
        group: "g".into(),
        channel: "c".into(),
        group_expiry_seconds: 0,
    })
    .await
    .expect("the default group expiry");
    for page_size in U32 {
        let page = clear(
            grpc.list_group_members(pb::ListGroupMembersRequest {
                namespace: namespace(),
                group: "g".into(),
                page_size,
                page_token: String::new(),
            })
            .await,
        );
        match page {
            Ok(page) => assert!(page_size <= 10_000 && page.members.len() == 1),
            Err((code, reason, _)) => {
                assert_eq!(
                    (code, reason.as_str()),
                    (Code::InvalidArgument, "INVALID_PAGE_SIZE")
                );
            }
        }
    }
    // Too many capacity rules, and a rule without a pattern: named as such.
    let many = vec![
        pb::CapacityRule {
            pattern: Some(capacity_rule::Pattern::Glob("x".into())),
            capacity: 1,
        };
        65
    ];
    let status = grpc
        .group_send(pb::GroupSendRequest {
            namespace: namespace(),
            group: "g".into(),
            message: b("m"),
            channel_capacity: many,
            ..Default::default()
        })
        .await
        .expect_err("65 rules are refused");
    assert_eq!(reason(&status).0, "INVALID_CAPACITY_RULE");
    assert!(
        status.message().contains("65 rules"),
        "{}",
        status.message()
    );
    assert!(
        !status.message().contains("pattern \"\""),
        "{}",
        status.message()
    );
    let status = grpc
        .group_send(pb::GroupSendRequest {
            namespace: namespace(),
            group: "g".into(),
            message: b("m"),
            channel_capacity: vec![pb::CapacityRule {
                pattern: None,
                capacity: 1,
            }],
            ..Default::default()
        })
        .await
        .expect_err("a rule without pattern is refused");
    assert!(status.message().contains("rule 1"), "{}", status.message());
    still_serving(&server).await;
    let metrics = server.scrape();
    for limit in ["capacity", "expiry_ms", "group_expiry_seconds"] {
        assert!(
            metrics.value(&format!("chanlayer_limit_hits_total{{limit=\"{limit}\"}}")) > 0.0,
            "{limit} hits are counted"
        );
        assert!(metrics.value(&format!("chanlayer_limit{{limit=\"{limit}\"}}")) > 0.0);
    }
}

/// A Session stream driven frame by frame.
struct Raw {
    tx: mpsc::Sender<pb::SessionRequest>,
    rx: Streaming<pb::SessionResponse>,
}

impl Raw {
    async fn open(server: &Server, namespace: &str) -> Self {
        let client = server.client(namespace).await;
        let (tx, requests) = mpsc::channel(16);
        tx.send(frame(vec![Operation::Open(pb::OpenOperation {
            namespace: namespace.into(),
            ..Default::default()
        })]))
        .await
        .unwrap();
        let mut rx = client
            .grpc()
            .session(ReceiverStream::new(requests))
            .await
            .expect("the session opens")
            .into_inner();
        let opened = rx.message().await.unwrap().expect("a frame");
        assert!(matches!(opened.events[0].event, Some(Event::Opened(_))));
        Self { tx, rx }
    }

    async fn send(&self, operations: Vec<Operation>) {
        self.tx
            .send(frame(operations))
            .await
            .expect("the stream is open");
    }

    /// The next `n` events.
    async fn events(&mut self, n: usize) -> Vec<Event> {
        let mut events = Vec::new();
        while events.len() < n {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.rx.message())
                .await
                .expect("an answer within 10 s")
                .expect("the stream stays up")
                .expect("the stream stays open");
            events.extend(frame.events.into_iter().filter_map(|e| e.event));
        }
        events
    }
}

fn frame(operations: Vec<Operation>) -> pb::SessionRequest {
    pb::SessionRequest {
        operations: operations
            .into_iter()
            .map(|op| pb::SessionOperation {
                operation: Some(op),
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_operations_answer_every_extreme_value() {
    let server = Server::start(&[]);
    let mut raw = Raw::open(&server, "extremes").await;
    let mut request_id = u64::MAX - 1_000;
    let mut expected = 0;
    let mut ops = Vec::new();
    for capacity in U32 {
        for expiry_ms in U64 {
            request_id += 1;
            ops.push(Operation::Send(pb::SendOperation {
                request_id,
                channel: format!("c{capacity}-{expiry_ms}"),
                message: b("m"),
                capacity,
                expiry_ms,
            }));
            request_id += 1;
            ops.push(Operation::GroupSend(pb::GroupSendOperation {
                request_id,
                group: "g".into(),
                message: b("m"),
                capacity,
                channel_capacity: Vec::new(),
                expiry_ms,
            }));
            expected += 2;
        }
    }
    for group_expiry_seconds in U64 {
        request_id += 1;
        ops.push(Operation::GroupAdd(pb::GroupAddOperation {
            request_id,
            group: "g".into(),
            channel: "c".into(),
            group_expiry_seconds,
        }));
        expected += 1;
    }
    raw.send(ops).await;
    let events = raw.events(expected).await;
    let mut refused = 0;
    for event in &events {
        let Event::Result(result) = event else {
            panic!("only results expected, got {event:?}");
        };
        if let Some(error) = &result.error {
            assert_eq!(error.code, Code::ResourceExhausted as i32, "{error:?}");
            assert_eq!(error.reason, "LIMIT_EXCEEDED", "{error:?}");
            assert!(error.message.contains("maximum"), "{error:?}");
            refused += 1;
        }
    }
    assert!(refused > 0 && refused < expected, "{refused} of {expected}");

    // Receives and cancels at the extremes of their ids and sizes.
    let mut ops: Vec<Operation> = (0..4)
        .map(|i| {
            Operation::Send(pb::SendOperation {
                request_id: i,
                channel: "r".into(),
                message: b("m"),
                ..Default::default()
            })
        })
        .collect();
    for (i, max_messages) in U32.into_iter().enumerate() {
        ops.push(Operation::Receive(pb::ReceiveOperation {
            receive_id: u64::MAX - i as u64,
            channel: "r".into(),
            max_messages,
        }));
    }
    ops.push(Operation::Cancel(pb::CancelOperation { receive_id: 0 }));
    raw.send(ops).await;
    // Four results, three deliveries (1, 1 and 2 messages; the fourth receive waits),
    // and the cancel's answer.
    let events = raw.events(8).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Cancelled(c) if !c.was_pending)),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::Delivery(_))),
        "{events:?}"
    );
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queuing_past_the_byte_limits_is_refused_and_others_keep_working() {
    let mib = 1024 * 1024;
    let server = Server::start(&[
        "--max-queued-bytes-per-namespace",
        &mib.to_string(),
        "--max-queued-bytes",
        &(3 * mib / 2).to_string(),
    ]);
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let hog = server.client("hog").await;
    let opts = chanlayer_client::SendOptions {
        capacity: 1_000_000,
        expiry: None,
    };
    let mut sent = 0;
    let refusal = loop {
        match hog
            .send_with(&format!("c{}", sent % 10), chunk.clone(), opts)
            .await
        {
            Ok(_) => sent += 1,
            Err(error) => break error,
        }
        assert!(sent <= 16, "1 MiB holds 16 chunks of 64 KiB");
    };
    assert_eq!(sent, 16);
    assert_limit(&refusal, "queued_bytes_per_namespace");
    // Another namespace still queues, up to the server's limit.
    let other = server.client("other").await;
    let mut sent = 0;
    let refusal = loop {
        match other.send_with("c", chunk.clone(), opts).await {
            Ok(_) => sent += 1,
            Err(error) => break error,
        }
        assert!(sent <= 8);
    };
    assert_eq!(sent, 8);
    assert_limit(&refusal, "queued_bytes");
    // Handing a message to a waiting receive queues nothing, so it still works.
    let third = server.client("third").await;
    let session = third.session().await.unwrap();
    let pending = session.start_receive("live", 1).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    third.send("live", chunk.clone()).await.expect("a handoff");
    assert_eq!(pending.wait().await.unwrap()[0].payload, chunk);
    // Reading frees the room.
    let reader = hog.session().await.unwrap();
    reader.receive_many("c0", 100).await.unwrap();
    other
        .send_with("c", chunk.clone(), opts)
        .await
        .expect("room again");
    let metrics = server.scrape();
    assert!(metrics.value("chanlayer_limit_hits_total{limit=\"queued_bytes\"}") >= 1.0);
    assert!(
        metrics.value("chanlayer_limit_hits_total{limit=\"queued_bytes_per_namespace\"}") >= 1.0
    );
    assert_eq!(
        metrics.value("chanlayer_limit{limit=\"queued_bytes\"}"),
        (3 * mib / 2) as f64
    );
}

fn assert_limit(error: &ClientError, limit: &str) {
    assert_eq!(error.code(), Code::ResourceExhausted, "{error}");
    assert_eq!(error.reason().as_deref(), Some("LIMIT_EXCEEDED"), "{error}");
    let ClientError::Status(status) = error else {
        panic!("a status: {error}");
    };
    assert_eq!(reason(status).1.as_deref(), Some(limit), "{error}");
}
