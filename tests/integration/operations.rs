//! Health, reflection and graceful shutdown of the real process.

use crate::support;

use std::time::Duration;

use support::Server;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const SERVICE: &str = "chanlayer.v1.ChannelLayerService";

async fn channel(server: &Server) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn reflection_lists_the_service() {
    let server = Server::start(&[]);
    let mut reflection = ServerReflectionClient::new(channel(&server).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&SERVICE.to_owned()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}

#[tokio::test]
async fn sigterm_turns_health_not_serving_closes_sessions_and_exits() {
    let mut server = Server::start(&["--drain-delay-ms", "300"]);
    let mut health = HealthClient::new(channel(&server).await);
    for service in ["", SERVICE] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let mut watch = health
        .watch(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    let client = server.client("shutdown").await;
    let session = client.session().await.unwrap();
    let pending = session.start_receive("never", 1).unwrap();

    server.terminate();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("health changes after SIGTERM")
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);

    // The session is told the server goes away, and its receive ends.
    assert!(pending.wait().await.is_err());
    assert_eq!(
        session.closing_reason(),
        Some(chanlayer::proto::v1::SessionCloseReason::Shutdown)
    );
    let took = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the server exits within 10 s of SIGTERM");
    assert!(took < Duration::from_secs(10));
}

#[tokio::test]
async fn the_binary_refuses_bad_flags_with_a_clear_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chanlayer"))
        .args(["serve", "--max-message-bytes", "5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-message-bytes"), "{stderr}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chanlayer"))
        .args(["serve", "--listen", "127.0.0.1:1", "--listen", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn a_port_in_use_fails_start_up_with_a_message() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chanlayer"))
        .args(["serve", "--listen", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}

#[tokio::test]
async fn worker_threads_sets_the_runtime_and_the_server_serves_on_one() {
    let server = Server::start(&["--worker-threads", "1"]);
    let client = server.client("one-worker").await;
    let session = client.session().await.unwrap();
    for i in 0..20u8 {
        client
            .send("work", bytes::Bytes::from(vec![i]))
            .await
            .unwrap();
    }
    for i in 0..20u8 {
        assert_eq!(&session.receive("work").await.unwrap().payload[..], [i]);
    }
    assert!(
        server.listening.contains("\"worker_threads\":1"),
        "the log says how many threads serve: {}",
        server.listening
    );
    let (code, out) = support::start_fails(&["--worker-threads", "0"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--worker-threads"), "{out}");
}
