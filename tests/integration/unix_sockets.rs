//! The real binary on a Unix domain socket (`--listen unix:PATH`), as a sidecar that shares
//! a volume with its gateway: calls, sessions and groups over the socket; a stale socket
//! file replaced, a live one or another kind of file refused; the file's permissions; the
//! file removed at shutdown; the connection limit, the handshake deadline and the token
//! over the socket; TLS refused; the operator's commands with `--target unix:PATH`.

use crate::support;

use std::{
    io::Write,
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chanlayer_client::{Client, ClientError, ConnectOptions};
use support::{Server, closed_within, ns, run_chanlayer, start_fails};
use tonic::Code;

/// A fresh directory for one test's socket, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("chanlayer-uds-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("chanlayer.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn listen(path: &Path) -> String {
    format!("unix:{}", path.display())
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("the socket file exists")
        .permissions()
        .mode()
        & 0o777
}

/// Starts the binary with `args` and `env` (none of the caller's `CHANLAYER_*`) and waits
/// until `socket` accepts connections.
fn spawn_until_socket(args: &[&str], env: &[(&str, &str)], socket: &Path) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chanlayer"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CHANLAYER_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(socket).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} never accepted a connection", socket.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_sessions_and_groups_work_over_the_socket() {
    let dir = TempDir::new("calls");
    let path = dir.socket();
    let server = Server::start_on(&listen(&path), &[]);
    assert_eq!(server.socket.as_deref(), Some(path.as_path()));
    assert_eq!(mode(&path), 0o660, "the documented default");

    for endpoint in [
        format!("unix:{}", path.display()),
        format!("unix://{}", path.display()),
    ] {
        let client = Client::connect(endpoint, ns("uds"))
            .await
            .expect("connects");
        client.send("normal", &b"one"[..]).await.expect("send");
        assert_eq!(
            client.channel_info("normal").await.unwrap().queued_messages,
            1
        );
        client.flush().await.expect("flush");
    }

    let client = server.client(&ns("uds")).await;
    let session = client.session().await.expect("a session over the socket");
    let members: Vec<String> = (0..3).map(|_| session.new_channel("specific")).collect();
    for member in &members {
        assert!(client.group_add("room", member).await.unwrap());
    }
    let sent = client.group_send("room", &b"hi"[..]).await.unwrap();
    assert_eq!(sent.delivered, 3);
    for member in &members {
        assert_eq!(&session.receive(member).await.unwrap().payload[..], b"hi");
    }
    client.send(&members[0], &b"direct"[..]).await.unwrap();
    assert_eq!(
        &session.receive(&members[0]).await.unwrap().payload[..],
        b"direct"
    );
    assert_eq!(client.group_size("room").await.unwrap(), 3);

    // Metrics and probes stay on TCP.
    let (status, _) = server.http_get("/readyz");
    assert_eq!(status, 200);
    assert!(server.scrape().value("chanlayer_messages_delivered_total") >= 4.0);

    // TLS is refused for a unix: endpoint, by the client itself.
    let options = ConnectOptions {
        tls: Some(tonic::transport::ClientTlsConfig::new()),
        ..Default::default()
    };
    assert!(matches!(
        Client::connect_with(server.endpoint(), ns("uds"), options).await,
        Err(ClientError::UnixTls)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_file_is_replaced() {
    let dir = TempDir::new("stale");
    let path = dir.socket();
    // What a server killed before it could clean up leaves: a socket nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(UnixStream::connect(&path).is_err(), "nothing listens");
    let server = Server::start_on(&listen(&path), &[]);
    let client = server.client(&ns("stale")).await;
    client
        .send("c", &b"m"[..])
        .await
        .expect("serves on the path");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_or_another_file_is_refused() {
    let dir = TempDir::new("live");
    let path = dir.socket();
    let server = Server::start_on(&listen(&path), &[]);
    let target = listen(&path);
    let (code, stderr) = start_fails(
        &["serve", "--listen", &target, "--metrics-listen", "off"],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("another server is listening on"),
        "{stderr}"
    );
    // The first server still serves on its socket.
    let client = server.client(&ns("live")).await;
    client
        .send("c", &b"still"[..])
        .await
        .expect("still serving");

    let file = dir.0.join("not-a-socket");
    std::fs::write(&file, b"precious").unwrap();
    let target = listen(&file);
    let (code, stderr) = start_fails(
        &["serve", "--listen", &target, "--metrics-listen", "off"],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("is not a socket (a regular file)"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"precious", "left alone");

    let target = listen(&dir.0.join("missing").join("c.sock"));
    let (code, stderr) = start_fails(
        &["serve", "--listen", &target, "--metrics-listen", "off"],
        &[],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("must exist"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_gets_the_configured_permissions() {
    let dir = TempDir::new("mode");
    let flag = dir.0.join("flag.sock");
    let server = Server::start_on(&listen(&flag), &["--listen-mode", "0600"]);
    assert_eq!(mode(&flag), 0o600);
    drop(server);

    // From the environment.
    let env = dir.0.join("env.sock");
    let env_listen = listen(&env);
    let mut child = spawn_until_socket(
        &["serve", "--metrics-listen", "off"],
        &[
            ("CHANLAYER_LISTEN", env_listen.as_str()),
            ("CHANLAYER_LISTEN_MODE", "0666"),
        ],
        &env,
    );
    assert_eq!(mode(&env), 0o666);
    let _ = child.kill();
    let _ = child.wait();

    // From the config file, as the Kubernetes sidecar sets them.
    let file_sock = dir.0.join("file.sock");
    let config = dir.0.join("chanlayer.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"unix:{}\"\nlisten-mode = \"0640\"\nmetrics-listen = \"off\"\n",
            file_sock.display()
        ),
    )
    .unwrap();
    let mut child = spawn_until_socket(
        &["serve", "--config", config.to_str().unwrap()],
        &[],
        &file_sock,
    );
    assert_eq!(mode(&file_sock), 0o640);
    let _ = child.kill();
    let _ = child.wait();

    let (code, stderr) = start_fails(&["serve", "--listen-mode", "0999"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a file mode"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_file_is_removed_at_shutdown() {
    let dir = TempDir::new("shutdown");
    let path = dir.socket();
    let mut server = Server::start_on(&listen(&path), &[]);
    let client = server.client(&ns("shutdown")).await;
    let _session = client.session().await.expect("session");
    assert!(path.exists());
    server.terminate();
    assert!(
        server.wait_exit(Duration::from_secs(15)).is_some(),
        "exits after SIGTERM"
    );
    assert!(
        !path.exists(),
        "the socket file is removed at a clean shutdown"
    );
    assert!(
        server
            .drain_logs()
            .iter()
            .any(|l| l.contains("socket file removed")),
        "logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_and_the_handshake_deadline_hold_on_the_socket() {
    let dir = TempDir::new("limits");
    let path = dir.socket();
    let server = Server::start_on(
        &listen(&path),
        &["--handshake-timeout-ms", "500", "--max-connections", "4"],
    );
    // Half a preface, and nothing at all: both closed within the timeout.
    let start = Instant::now();
    let mut half = UnixStream::connect(&path).expect("connects");
    half.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    let mut silent = UnixStream::connect(&path).expect("connects");
    assert!(closed_within(&mut half, Duration::from_secs(5)));
    assert!(closed_within(&mut silent, Duration::from_secs(5)));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(start.elapsed() >= Duration::from_millis(400));

    // Four held connections; the fifth is closed at once.
    let held: Vec<UnixStream> = (0..4)
        .map(|_| {
            let mut s = UnixStream::connect(&path).expect("connects");
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = UnixStream::connect(&path).expect("the kernel accepts it");
    let start = Instant::now();
    assert!(closed_within(&mut extra, Duration::from_secs(5)));
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(held);
    support::connections_come_back(&server, &ns("limits")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_applies_and_tls_is_refused() {
    let dir = TempDir::new("auth");
    let path = dir.socket();
    let server = Server::start_on(&listen(&path), &["--auth-token", "sock-secret"]);
    let bare = server.client(&ns("auth")).await;
    let refused = bare.send("c", &b"m"[..]).await.expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let options = ConnectOptions {
        token: Some("sock-secret".into()),
        ..Default::default()
    };
    let client = Client::connect_with(server.endpoint(), ns("auth"), options)
        .await
        .expect("connects");
    client.send("c", &b"m"[..]).await.expect("with the token");

    // TLS on a Unix socket is refused at start-up, and no socket file is left behind.
    let other = dir.0.join("tls.sock");
    let target = listen(&other);
    let (code, stderr) = start_fails(
        &[
            "serve",
            "--listen",
            &target,
            "--metrics-listen",
            "off",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("TLS is not served on a Unix socket"),
        "{stderr}"
    );
    assert!(!other.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_commands_take_a_unix_target() {
    let dir = TempDir::new("cli");
    let path = dir.socket();
    let server = Server::start_on(&listen(&path), &[]);
    let target = server.endpoint();
    let output = run_chanlayer(&["status", "--target", &target], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("SERVING"), "{stdout}");
    assert!(stdout.contains(&target), "{stdout}");

    let namespace = ns("cli");
    let output = run_chanlayer(
        &[
            "send",
            "--target",
            &format!("unix://{}", path.display()),
            "-n",
            &namespace,
            "hello",
            "{\"type\": \"t\"}",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let output = run_chanlayer(
        &[
            "channel", "--target", &target, "-n", &namespace, "hello", "--json",
        ],
        &[],
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["queued_messages"], 1, "{json}");

    // No TLS flags with a unix: target; an absent socket is unreachable (exit 3).
    let output = run_chanlayer(
        &["status", "--target", &target, "--ca-cert", "/dev/null"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("takes no TLS"));
    let missing = format!("unix:{}", dir.0.join("missing.sock").display());
    let output = run_chanlayer(&["status", "--target", &missing], &[]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains(&missing));
}
