//! Every way a request or a Session stream is refused says why: a Session frame above the
//! decode limit ends the stream with `RESOURCE_EXHAUSTED` / `FRAME_TOO_LARGE` (never a
//! silent OK) and loses nothing that was queued; a unary request above it is
//! `MESSAGE_TOO_LARGE`; both name the `message_bytes` limit. A client that stops reading
//! its answers is not read either, and loses nothing once it reads again. A client that
//! resets its stream has what it wrote before the reset applied.

use crate::support;

use std::time::Duration;

use bytes::Bytes;
use chanlayer::proto::v1::{
    self as pb, channel_layer_service_client::ChannelLayerServiceClient, session_event::Event,
    session_operation::Operation,
};
use support::Server;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, transport::Endpoint};
use tonic_types::StatusExt;

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

fn limit_info(status: &tonic::Status) -> (String, Option<String>) {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    (info.reason, info.metadata.get("limit").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_frame_over_the_limit_ends_the_stream_with_a_reason() {
    // Frames carry up to --max-message-bytes plus 1 MiB.
    let server = Server::start(&["--max-message-bytes", "1024"]);
    let client = server.client("frames").await;
    client
        .send("queued", Bytes::from_static(b"kept"))
        .await
        .unwrap();

    let (tx, requests) = mpsc::channel(4);
    tx.send(frame(vec![
        Operation::Open(pb::OpenOperation {
            namespace: "frames".into(),
            ..Default::default()
        }),
        Operation::Receive(pb::ReceiveOperation {
            receive_id: 1,
            channel: "idle".into(),
            max_messages: 1,
        }),
    ]))
    .await
    .unwrap();
    let mut events = client
        .grpc()
        .session(ReceiverStream::new(requests))
        .await
        .expect("the session opens")
        .into_inner();
    let opened = events.message().await.unwrap().expect("the opened frame");
    assert!(matches!(opened.events[0].event, Some(Event::Opened(_))));
    // Many small sends in one frame of 2 MiB: each message is within the limit, the frame
    // is not.
    let sends = (0..2_100)
        .map(|i| {
            Operation::Send(pb::SendOperation {
                request_id: i,
                channel: "c".into(),
                message: Bytes::from(vec![0u8; 1000]),
                ..Default::default()
            })
        })
        .collect();
    tx.send(frame(sends)).await.unwrap();
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("the stream ends within 10 s")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended with OK"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        limit_info(&status),
        (
            "FRAME_TOO_LARGE".to_owned(),
            Some("message_bytes".to_owned())
        )
    );
    assert!(status.message().contains("split"), "{}", status.message());
    // Nothing queued was lost, the receive it held is withdrawn, and the server serves.
    let session = client.session().await.unwrap();
    assert_eq!(
        session.receive("queued").await.unwrap().payload,
        &b"kept"[..]
    );
    let idle = client.channel_info("idle").await.unwrap();
    assert_eq!(idle.waiting_receives, 0);
    let metrics = server.scrape();
    assert!(metrics.value("chanlayer_limit_hits_total{limit=\"message_bytes\"}") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unary_request_over_the_limit_is_refused_with_a_reason() {
    let server = Server::start(&["--max-message-bytes", "1024"]);
    let client = server.client("unary").await;
    let refused = client
        .grpc()
        .send(pb::SendRequest {
            namespace: "unary".into(),
            channel: "c".into(),
            message: Bytes::from(vec![0u8; 2 * 1024 * 1024]),
            ..Default::default()
        })
        .await
        .expect_err("too large to decode");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(
        limit_info(&refused),
        (
            "MESSAGE_TOO_LARGE".to_owned(),
            Some("message_bytes".to_owned())
        )
    );
    // Just above the message limit but within the frame: the engine's own refusal.
    let refused = client.send("c", vec![0u8; 1025]).await.unwrap_err();
    assert_eq!(refused.reason().as_deref(), Some("MESSAGE_TOO_LARGE"));
    client
        .send("c", vec![0u8; 1024])
        .await
        .expect("at the limit");
}

/// Small sends a stalled client writes after the server stopped reading it.
const SMALL_SENDS: u64 = 400;

/// A Session stream whose client read nothing: 8 deliveries of 16 KiB fill its 64 KiB
/// window, then it wrote send 100 and [`SMALL_SENDS`] more sends (ids 101 on) to `sink`.
struct Stalled {
    server: Server,
    /// A unary client of the same server, to look at `sink`.
    client: chanlayer_client::Client,
    /// The stream's request side, still open.
    requests: mpsc::Sender<pb::SessionRequest>,
    events: tonic::Streaming<pb::SessionResponse>,
    big: Bytes,
}

/// Opens a stream on a connection that lets the server write at most 64 KiB before the
/// client reads, and stalls it as [`Stalled`] says.
async fn stalled_stream() -> Stalled {
    let server = Server::start(&[]);
    let client = server.client("stalled").await;
    let channel = Endpoint::from_shared(server.endpoint())
        .unwrap()
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .expect("connects");
    let (tx, requests) = mpsc::channel(1024);
    tx.send(frame(vec![Operation::Open(pb::OpenOperation {
        namespace: "stalled".into(),
        ..Default::default()
    })]))
    .await
    .unwrap();
    let events = ChannelLayerServiceClient::new(channel)
        .session(ReceiverStream::new(requests))
        .await
        .expect("the session opens")
        .into_inner();
    let send = |request_id: u64, channel: &str, message: Bytes| {
        Operation::Send(pb::SendOperation {
            request_id,
            channel: channel.into(),
            message,
            capacity: 1000,
            expiry_ms: 0,
        })
    };
    // Answers larger than that window: 8 deliveries of 16 KiB to the client's own receives.
    let big = Bytes::from(vec![b'x'; 16 * 1024]);
    for id in 1..=8 {
        tx.send(frame(vec![
            send(id, "big", big.clone()),
            Operation::Receive(pb::ReceiveOperation {
                receive_id: id,
                channel: "big".into(),
                max_messages: 1,
            }),
        ]))
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // One more send, once the deliveries fill the window. HTTP/2 lets the server take one
    // frame past the window, so this send is applied or not depending on how the deliveries
    // were cut into frames; either way the server reads nothing of this stream after it.
    tx.send(frame(vec![send(100, "sink", Bytes::from_static(b"m"))]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in 1..=SMALL_SENDS {
        tx.send(frame(vec![send(
            100 + id,
            "sink",
            Bytes::from_static(b"m"),
        )]))
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let applied = client.channel_info("sink").await.unwrap().queued_messages;
    assert!(
        applied <= 1,
        "{applied} sends applied for a client that reads nothing (of {} sent)",
        SMALL_SENDS + 1
    );
    Stalled {
        server,
        client,
        requests: tx,
        events,
        big,
    }
}

/// A client that stops reading its stream's answers is not read either (HTTP/2 flow
/// control): its later operations wait in the stream, unapplied, instead of being applied
/// with their answers queued in the server without bound. Once it reads again, every one of
/// them is applied and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_not_read_either_and_loses_nothing() {
    let Stalled {
        server: _server,
        client,
        requests: _requests,
        mut events,
        big,
    } = stalled_stream().await;

    // Reading again: every operation is applied and answered, in order.
    let (mut results, mut deliveries) = (Vec::new(), 0);
    while results.len() < (9 + SMALL_SENDS) as usize {
        let frame = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("the answers come once the client reads")
            .unwrap()
            .expect("the stream goes on");
        for event in frame.events {
            match event.event {
                Some(Event::Result(result)) => {
                    assert!(result.error.is_none(), "{result:?}");
                    results.push(result.request_id);
                }
                Some(Event::Delivery(delivery)) => {
                    assert_eq!(delivery.messages.len(), 1);
                    assert_eq!(delivery.messages[0].message, big);
                    deliveries += 1;
                }
                Some(Event::Opened(_)) => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    assert_eq!(deliveries, 8);
    let expected: Vec<u64> = (1..=8).chain(100..=100 + SMALL_SENDS).collect();
    assert_eq!(results, expected);
    let sink = client.channel_info("sink").await.unwrap();
    assert_eq!(u64::from(sink.queued_messages), SMALL_SENDS + 1);
}

/// A client that resets its stream (as grpc.aio does when the task reading it is cancelled,
/// at the end of `asyncio.run`) has every operation it wrote before the reset applied, even
/// those the server had not read yet: the server reads no more of a reset stream, but
/// applies what it had received of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_stream_has_what_it_wrote_before_the_reset_applied() {
    let stalled = stalled_stream().await;
    let Stalled {
        server: _server,
        client,
        requests,
        events,
        ..
    } = stalled;
    // Dropping the response stream resets it (RST_STREAM CANCEL).
    drop(events);
    drop(requests);
    let mut queued = 0;
    for _ in 0..50 {
        queued = client.channel_info("sink").await.unwrap().queued_messages;
        if u64::from(queued) == SMALL_SENDS + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        u64::from(queued),
        SMALL_SENDS + 1,
        "sends applied after the reset"
    );
}
