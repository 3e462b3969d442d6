//! The operator's commands of the real binary (`chanlayer status`, `group`, `channel`,
//! `send`, `flush`) against a real server on loopback: their output, `--json`, exit codes,
//! the token and TLS.

use crate::support;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::Value;
use support::{Dir, Server, ns, run_chanlayer};

/// `chanlayer <command> --target <server> -n <namespace> <args>`.
fn run(server: &Server, namespace: &str, command: &str, args: &[&str]) -> Output {
    let endpoint = server.endpoint();
    let mut all = vec![command, "--target", &endpoint, "-n", namespace];
    all.extend_from_slice(args);
    run_chanlayer(&all, &[])
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Expects exit code `code`; shows both streams otherwise.
#[track_caller]
fn expect_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// The one JSON object a `--json` command printed.
#[track_caller]
fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", stdout(output)))
}

#[test]
fn status_shows_health_version_and_counters() {
    let server = Server::start(&[]);
    let output = run(&server, "asgi", "status", &[]);
    expect_code(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("SERVING"), "{text}");
    assert!(
        text.contains(&format!("version      {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("uptime"), "{text}");

    let output = run(&server, "asgi", "status", &["--json"]);
    expect_code(&output, 0);
    let status = json(&output);
    assert_eq!(status["serving"], true);
    assert_eq!(status["health"], "SERVING");
    assert_eq!(status["service_health"], "SERVING");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["stats"]["uptime_seconds"].is_u64());
    assert_eq!(status["stats"]["queued_messages"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_is_queued_and_reaches_a_consumer_as_a_django_dict() {
    let server = Server::start(&[]);
    let namespace = ns("cli-send");
    let message = r#"{"type": "chat.message", "text": "hi", "n": 3}"#;
    let output = run(&server, &namespace, "send", &["hello", message]);
    expect_code(&output, 0);
    assert!(stdout(&output).contains("queued"), "{}", stdout(&output));

    let output = run(&server, &namespace, "channel", &["hello"]);
    expect_code(&output, 0);
    assert!(
        stdout(&output).contains("queued     1 message"),
        "{}",
        stdout(&output)
    );
    let output = run(&server, &namespace, "channel", &["hello", "--json"]);
    expect_code(&output, 0);
    let channel = json(&output);
    assert_eq!(channel["queued_messages"], 1);
    assert_eq!(channel["waiting_receives"], 0);
    assert!(channel["queued_bytes"].as_u64().expect("bytes") > 0);

    // What a consumer receives is the msgpack map the Python layer would have sent.
    let client = server.client(&namespace).await;
    let session = client.session().await.expect("session");
    let received = session.receive("hello").await.expect("received");
    let value = rmpv::decode::read_value(&mut &received.payload[..]).expect("msgpack");
    let field = |key: &str| {
        value
            .as_map()
            .expect("a map")
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {key} in {value}"))
    };
    assert_eq!(field("type").as_str(), Some("chat.message"));
    assert_eq!(field("text").as_str(), Some("hi"));
    assert_eq!(field("n").as_u64(), Some(3));

    // To a group: every member gets it.
    let member = session.new_channel("specific");
    client.group_add("room", &member).await.expect("added");
    let output = run(
        &server,
        &namespace,
        "send",
        &["--group", "room", r#"{"type": "x"}"#, "--json"],
    );
    expect_code(&output, 0);
    assert_eq!(json(&output)["delivered"], 1);
    let received = session.receive(&member).await.expect("received");
    assert_eq!(&received.payload[..], b"\x81\xa4type\xa1x");

    // A message Django could not dispatch is refused before anything is sent.
    let output = run(&server, &namespace, "send", &["hello", r#"{"text": "hi"}"#]);
    expect_code(&output, 2);
    assert!(stderr(&output).contains("\"type\""), "{}", stderr(&output));
    let output = run(&server, &namespace, "send", &["hello", "not json"]);
    expect_code(&output, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_shows_its_size_and_members() {
    let server = Server::start(&[]);
    let namespace = ns("cli-group");
    let client = server.client(&namespace).await;
    client
        .group_add("lobby", "specific.abc!one")
        .await
        .expect("added");
    client
        .group_add("lobby", "specific.abc!two")
        .await
        .expect("added");

    let output = run(&server, &namespace, "group", &["lobby"]);
    expect_code(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("size       2 members"), "{text}");
    assert!(text.contains("specific.abc!one"), "{text}");
    assert!(text.contains("specific.abc!two"), "{text}");
    assert!(!text.contains("missing"), "{text}");

    let output = run(&server, &namespace, "group", &["lobby", "--json"]);
    expect_code(&output, 0);
    let group = json(&output);
    assert_eq!(group["size"], 2);
    assert_eq!(group["missing_nodes"], 0);
    assert_eq!(group["members"][0]["channel"], "specific.abc!one");
    assert!(group["members"][0]["expires_in_ms"].as_u64().expect("ms") > 0);

    let output = run(&server, &namespace, "group", &["lobby", "--limit", "1"]);
    expect_code(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("... 1 more"), "{text}");
    assert!(!text.contains("specific.abc!two"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_refuses_without_yes_and_empties_the_namespace_with_it() {
    let server = Server::start(&[]);
    let namespace = ns("cli-flush");
    let client = server.client(&namespace).await;
    client.send("waiting", &b"x"[..]).await.expect("sent");

    let output = run(&server, &namespace, "flush", &[]);
    expect_code(&output, 2);
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    let info = client.channel_info("waiting").await.expect("info");
    assert_eq!(info.queued_messages, 1, "nothing was flushed");

    let output = run(&server, &namespace, "flush", &["--yes", "--json"]);
    expect_code(&output, 0);
    let flushed = json(&output);
    assert_eq!(flushed["dropped_messages"], 1);
    let info = client.channel_info("waiting").await.expect("info");
    assert_eq!(info.queued_messages, 0);
}

#[test]
fn an_unreachable_server_fails_fast_with_a_clear_message() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let target = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let output = run_chanlayer(&["status", "--target", &target], &[]);
    expect_code(&output, 3);
    assert!(start.elapsed() < Duration::from_secs(5));
    let line = stderr(&output);
    assert!(
        line.starts_with(&format!(
            "chanlayer: error: cannot reach the server at http://{target}: "
        )),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");

    let output = run_chanlayer(
        &["channel", "x", "--json"],
        &[("CHANLAYER_TARGET", &target)],
    );
    expect_code(&output, 3);
    assert_eq!(json(&output)["error"]["kind"], "unreachable");
}

#[test]
fn a_refusal_names_its_code_and_reason() {
    let server = Server::start(&[]);
    let output = run(&server, "asgi", "send", &["bad name", r#"{"type": "x"}"#]);
    expect_code(&output, 1);
    assert!(
        stderr(&output).starts_with("chanlayer: error: INVALID_ARGUMENT (INVALID_CHANNEL_NAME): "),
        "{}",
        stderr(&output)
    );
    let output = run(&server, "asgi", "channel", &["bad name", "--json"]);
    expect_code(&output, 1);
    let error = json(&output);
    assert_eq!(error["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(error["error"]["reason"], "INVALID_CHANNEL_NAME");
}

#[test]
fn the_token_is_required_and_accepted() {
    let dir = Dir::new("cli-token");
    let token_file = dir.write("token", "s3cret\n");
    let server = Server::start(&["--auth-token-file", &token_file]);
    let endpoint = server.endpoint();

    let output = run_chanlayer(&["status", "--target", &endpoint], &[]);
    expect_code(&output, 1);
    let line = stderr(&output);
    assert!(
        line.starts_with("chanlayer: error: UNAUTHENTICATED (TOKEN_MISSING): "),
        "{line}"
    );
    assert!(line.contains("--token"), "{line}");

    let output = run_chanlayer(
        &[
            "status", "--target", &endpoint, "--token", "wrong", "--json",
        ],
        &[],
    );
    expect_code(&output, 1);
    assert_eq!(json(&output)["error"]["reason"], "TOKEN_INVALID");

    let output = run_chanlayer(&["status", "--target", &endpoint, "--token", "s3cret"], &[]);
    expect_code(&output, 0);
    // The server's own variable works, as it does where the server runs.
    let output = run_chanlayer(
        &["flush", "--yes", "--target", &endpoint],
        &[("CHANLAYER_AUTH_TOKEN_FILE", &token_file)],
    );
    expect_code(&output, 0);
    let output = run_chanlayer(
        &["group", "g", "--target", &endpoint],
        &[("CHANLAYER_AUTH_TOKEN", "s3cret")],
    );
    expect_code(&output, 0);
}

/// A CA, and a certificate it signs for `names`: (CA PEM, certificate PEM, key PEM).
fn certificates(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("signed");
    (cert.pem(), key.serialize_pem())
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

#[test]
fn tls_and_client_certificates() {
    let dir = Dir::new("cli-tls");
    let ca = ca("chanlayer test CA");
    let ca_file = dir.write("ca.pem", &ca.pem());
    let (cert, key) = certificates(&ca, &["localhost"]);
    let (client_cert, client_key) = certificates(&ca, &["gateway"]);
    let cert = dir.write("server.pem", &cert);
    let key = dir.write("server.key", &key);
    let client_cert = dir.write("client.pem", &client_cert);
    let client_key = dir.write("client.key", &client_key);
    let server = Server::start(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca_file,
    ]);
    let target = server.addr.to_string();
    let tls = ["--ca-cert", &ca_file, "--tls-domain", "localhost"];

    let mut args = vec!["status", "--target", &target, "--json"];
    args.extend_from_slice(&tls);
    args.extend_from_slice(&["--client-cert", &client_cert, "--client-key", &client_key]);
    let output = run_chanlayer(&args, &[]);
    expect_code(&output, 0);
    assert_eq!(json(&output)["target"], format!("https://{target}"));

    // Without a client certificate the server refuses the connection.
    let mut args = vec!["status", "--target", &target];
    args.extend_from_slice(&tls);
    let output = run_chanlayer(&args, &[]);
    assert_ne!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));

    // An https target without a CA to trust is a usage error.
    let https = format!("https://{target}");
    let output = run_chanlayer(&["status", "--target", &https], &[]);
    expect_code(&output, 2);
    assert!(stderr(&output).contains("--ca-cert"), "{}", stderr(&output));
}

#[test]
fn without_a_subcommand_the_binary_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chanlayer"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("piped");
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("chanlayer listening"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening.is_some(), "the server did not start");
}
