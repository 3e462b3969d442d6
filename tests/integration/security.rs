//! Authentication and transport security of the real binary: the bearer token on every
//! call but health, TLS, and client certificates, with certificates made in the test.

use crate::support;

use std::time::Duration;

use chanlayer::proto::v1::{self as pb, channel_layer_service_client::ChannelLayerServiceClient};
use chanlayer_client::{Client, ClientError, ConnectOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use support::{Dir, Server, ns};
use tonic::{
    Code, Request, Status,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;

/// A certificate authority that signs server and client certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
struct Pair {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn sign(&self, names: &[&str]) -> Pair {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

fn bearer(token: &str) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    let value = format!("Bearer {token}");
    move |mut request: Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("ascii"));
        Ok(request)
    }
}

fn stats_request() -> pb::GetServerStatsRequest {
    pb::GetServerStatsRequest::default()
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

async fn health(channel: Channel) -> Result<ServingStatus, Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(response.into_inner().status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_every_call_but_health_is_unauthenticated() {
    let dir = Dir::new("auth");
    let token_file = dir.write("token", "s3cret-token\n");
    let server = Server::start(&["--auth-token-file", &token_file]);
    let channel = Endpoint::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");

    // No token.
    let mut bare = ChannelLayerServiceClient::new(channel.clone());
    let error = bare
        .get_server_stats(stats_request())
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Code::Unauthenticated);
    assert_eq!(reason(&error), "TOKEN_MISSING");
    let error = bare
        .send(pb::SendRequest {
            namespace: ns("auth"),
            channel: "c".into(),
            message: b"x".to_vec().into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Code::Unauthenticated);
    let client = Client::from_channel(channel.clone(), ns("auth"));
    let error = client.session().await.err().expect("session refused");
    assert_eq!(error.code(), Code::Unauthenticated);

    // A wrong token.
    let mut wrong = ChannelLayerServiceClient::with_interceptor(channel.clone(), bearer("nope"));
    let error = wrong
        .get_server_stats(stats_request())
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Code::Unauthenticated);
    assert_eq!(reason(&error), "TOKEN_INVALID");

    // Health needs no token, as Kubernetes probes send none.
    assert_eq!(
        health(channel.clone()).await.expect("health"),
        ServingStatus::Serving
    );

    // The right token.
    let mut good =
        ChannelLayerServiceClient::with_interceptor(channel.clone(), bearer("s3cret-token"));
    let delivered = good
        .send(pb::SendRequest {
            namespace: ns("auth"),
            channel: "c".into(),
            message: b"x".to_vec().into(),
            ..Default::default()
        })
        .await
        .expect("accepted")
        .into_inner()
        .delivered;
    assert!(!delivered);
    let stats = good
        .get_server_stats(stats_request())
        .await
        .expect("accepted")
        .into_inner();
    assert_eq!(stats.messages_sent_total, 1);

    // Refusals are counted by reason.
    let m = server.scrape();
    assert_eq!(
        m.value("chanlayer_auth_failures_total{reason=\"missing\"}"),
        3.0
    );
    assert_eq!(
        m.value("chanlayer_auth_failures_total{reason=\"invalid\"}"),
        1.0
    );
    assert_eq!(
        m.sum(
            "chanlayer_grpc_server_handled_total",
            &["code=\"UNAUTHENTICATED\""]
        ),
        4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_can_come_from_the_environment() {
    let server =
        Server::start_with_env("127.0.0.1:0", &[], &[("CHANLAYER_AUTH_TOKEN", "from-env")]);
    let channel = Endpoint::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");
    let mut bare = ChannelLayerServiceClient::new(channel.clone());
    let error = bare
        .get_server_stats(stats_request())
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Code::Unauthenticated);
    let mut good = ChannelLayerServiceClient::with_interceptor(channel, bearer("from-env"));
    good.get_server_stats(stats_request())
        .await
        .expect("accepted");

    // The typed client sends it on unary calls and on its session stream.
    let options = ConnectOptions {
        token: Some("from-env".into()),
        ..Default::default()
    };
    let client = Client::connect_with(server.endpoint(), ns("env"), options)
        .await
        .expect("connects");
    let session = client.session().await.expect("session with the token");
    let me = session.new_channel("specific");
    client
        .send(&me, &b"t"[..])
        .await
        .expect("send with the token");
    assert_eq!(
        &session.receive(&me).await.expect("receive").payload[..],
        b"t"
    );
    let options = ConnectOptions {
        token: Some("line\nbreak".into()),
        ..Default::default()
    };
    assert!(matches!(
        Client::connect_with(server.endpoint(), ns("env"), options).await,
        Err(ClientError::InvalidToken)
    ));
}

async fn tls_channel(
    server: &Server,
    ca: &Ca,
    identity: Option<&Pair>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some(pair) = identity {
        tls = tls.identity(Identity::from_pem(&pair.cert, &pair.key));
    }
    Endpoint::from_shared(format!("https://{}", server.addr))
        .expect("endpoint")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_the_certificate() {
    let dir = Dir::new("tls");
    let ca = Ca::new("chanlayer test CA");
    let server_pair = ca.sign(&["localhost"]);
    let cert = dir.write("server.pem", &server_pair.cert);
    let key = dir.write("server.key", &server_pair.key);
    let server = Server::start(&["--tls-cert", &cert, "--tls-key", &key]);

    let channel = tls_channel(&server, &ca, None).await.expect("TLS connects");
    let client = Client::from_channel(channel.clone(), ns("tls"));
    client.send("c", &b"x"[..]).await.expect("send over TLS");
    assert_eq!(
        health(channel).await.expect("health"),
        ServingStatus::Serving
    );

    // A plaintext client gets nowhere.
    let plain = async {
        let channel = Endpoint::from_shared(server.endpoint())
            .ok()?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .ok()?;
        health(channel).await.ok()
    };
    assert!(plain.await.is_none(), "a plaintext call succeeded");

    // A client that does not trust the server's CA refuses it.
    let stranger = Ca::new("another CA");
    let refused = match tls_channel(&server, &stranger, None).await {
        Err(_) => true,
        Ok(channel) => health(channel).await.is_err(),
    };
    assert!(refused, "a client trusted a certificate of an unknown CA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_a_client_needs_a_certificate() {
    let dir = Dir::new("mtls");
    let ca = Ca::new("chanlayer test CA");
    let server_pair = ca.sign(&["localhost"]);
    let clients = Ca::new("gateway CA");
    let gateway = clients.sign(&["gateway"]);
    let stranger = Ca::new("another CA").sign(&["intruder"]);
    let cert = dir.write("server.pem", &server_pair.cert);
    let key = dir.write("server.key", &server_pair.key);
    let client_ca = dir.write("clients.pem", &clients.pem());
    let server = Server::start(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &client_ca,
    ]);

    // With a certificate the client CA signed, calls go through.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost")
        .identity(Identity::from_pem(&gateway.cert, &gateway.key));
    let options = ConnectOptions {
        tls: Some(tls),
        connect_timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let client = Client::connect_with(format!("https://{}", server.addr), ns("mtls"), options)
        .await
        .expect("mTLS connects");
    client.send("c", &b"x"[..]).await.expect("send over mTLS");
    let session = client.session().await.expect("session over mTLS");
    let me = session.new_channel("specific");
    client.send(&me, &b"y"[..]).await.expect("send");
    assert_eq!(
        &session.receive(&me).await.expect("receive").payload[..],
        b"y"
    );

    // Without a certificate, or with one of another CA, the client cannot connect: not
    // even health answers.
    for identity in [None, Some(&stranger)] {
        let refused = match tls_channel(&server, &ca, identity).await {
            Err(_) => true,
            Ok(channel) => health(channel).await.is_err(),
        };
        assert!(
            refused,
            "a client with {} got through",
            if identity.is_some() {
                "a stranger's certificate"
            } else {
                "no certificate"
            }
        );
    }
}

#[test]
fn security_settings_that_cannot_work_stop_the_start_up() {
    let (code, stderr) = support::start_fails(
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--auth-token-file",
            "/nonexistent/token",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("/nonexistent/token"), "{stderr}");
    let (code, stderr) = support::start_fails(&["--tls-cert", "/nonexistent/cert.pem"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
}
