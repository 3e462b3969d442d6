//! Starts the real `chanlayer` binary on an ephemeral loopback port (or a Unix socket) for
//! black-box tests.
#![allow(dead_code)]

pub mod nats;

use std::{
    io::{BufRead, BufReader, Read},
    net::{SocketAddr, TcpStream},
    os::unix::net::UnixStream,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use chanlayer_client::Client;

/// A running server process, killed when dropped.
pub struct Server {
    child: Child,
    /// The gRPC address; `0.0.0.0:0` when the server listens on a Unix socket.
    pub addr: SocketAddr,
    /// The Unix socket the server listens on, with `--listen unix:PATH`.
    pub socket: Option<PathBuf>,
    /// The metrics endpoint, unless turned off.
    pub metrics_addr: Option<SocketAddr>,
    /// The server's "chanlayer listening" log line (JSON), with its settings.
    pub listening: String,
    logs: mpsc::Receiver<String>,
}

/// The value of the JSON log field `"field":"..."` in `line`.
fn log_field(line: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\":\"");
    let start = line.find(&key)? + key.len();
    let end = start + line[start..].find('"')?;
    Some(line[start..end].to_owned())
}

impl Server {
    /// Starts the server with extra flags.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", extra)
    }

    /// Starts the server on `listen` with extra flags. Unless the flags say otherwise,
    /// metrics are served on an ephemeral loopback port.
    pub fn start_on(listen: &str, extra: &[&str]) -> Self {
        Self::start_with_env(listen, extra, &[])
    }

    /// Starts the server on `listen` with extra flags and environment variables.
    pub fn start_with_env(listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chanlayer"));
        command.args(["serve", "--listen", listen, "--log-format", "json"]);
        // A config file given to the test says where metrics go.
        let configured = extra
            .iter()
            .any(|a| a.starts_with("--metrics-listen") || a.starts_with("--config"))
            || env
                .iter()
                .any(|(k, _)| *k == "CHANLAYER_METRICS_LISTEN" || *k == "CHANLAYER_CONFIG");
        if !configured {
            command.args(["--metrics-listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,chanlayer=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the chanlayer binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut metrics_addr = None;
        loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not log its address within 20 s");
            };
            if line.contains("metrics listening") {
                metrics_addr = log_field(&line, "addr").and_then(|a| a.parse().ok());
            }
            if line.contains("chanlayer listening") {
                let field = log_field(&line, "addr").expect("addr field");
                let (addr, socket) = match field.strip_prefix("unix:") {
                    Some(path) => (SocketAddr::from(([0, 0, 0, 0], 0)), Some(path.into())),
                    None => (field.parse().expect("a socket address"), None),
                };
                return Self {
                    child,
                    addr,
                    socket,
                    metrics_addr,
                    listening: line,
                    logs: rx,
                };
            }
        }
    }

    /// GETs `path` from the metrics endpoint: the status code and the body.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let addr = self.metrics_addr.expect("metrics are served");
        let mut stream = std::net::TcpStream::connect(addr).expect("metrics endpoint connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("request written");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Scrapes `/metrics`.
    pub fn scrape(&self) -> Metrics {
        let (status, body) = self.http_get("/metrics");
        assert_eq!(status, 200, "{body}");
        Metrics(body)
    }

    pub fn endpoint(&self) -> String {
        match &self.socket {
            Some(path) => format!("unix:{}", path.display()),
            None => format!("http://{}", self.addr),
        }
    }

    pub async fn client(&self, namespace: &str) -> Client {
        Client::connect(self.endpoint(), namespace)
            .await
            .expect("client connects")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit, up to `timeout`; returns how long it took.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "the server exited with {status}");
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Log lines so far.
    pub fn drain_logs(&self) -> Vec<String> {
        self.logs.try_iter().collect()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Prometheus text exposition.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of the series written exactly as `series` (name and labels in the
    /// exposition's order), or 0 when it is absent.
    pub fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                (name == series).then(|| value.parse().expect("a number"))
            })
            .unwrap_or(0.0)
    }

    /// The sum over every series of `name` whose labels contain each of `labels`
    /// (`key="value"` strings).
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (series_name, series_labels) = match series.split_once('{') {
                    Some((n, rest)) => (n, rest),
                    None => (series, ""),
                };
                (series_name == name && labels.iter().all(|x| series_labels.contains(x)))
                    .then(|| value.parse::<f64>().expect("a number"))
            })
            .sum()
    }

    /// True when the exposition has a series of `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.lines().any(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{'))
        })
    }
}

/// Runs the binary with `args` and `env` and expects it to fail at start-up: returns its
/// exit code and what it wrote to stderr.
pub fn start_fails(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chanlayer"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the chanlayer binary starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
                .expect("stderr read");
            return (status.code().unwrap_or(-1), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server was expected to stop at start-up but kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A namespace unique to one test.
pub fn ns(test: &str) -> String {
    format!("test-{test}")
}

/// Polls `check` until it is true, up to `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// A raw connection whose reads can be given a deadline.
pub trait TimedRead: Read {
    fn read_timeout(&mut self, within: Duration);
}

impl TimedRead for TcpStream {
    fn read_timeout(&mut self, within: Duration) {
        self.set_read_timeout(Some(within)).expect("a read timeout");
    }
}

impl TimedRead for UnixStream {
    fn read_timeout(&mut self, within: Duration) {
        self.set_read_timeout(Some(within)).expect("a read timeout");
    }
}

/// Waits for the server to close `stream`: true when it did within `within`.
pub fn closed_within(stream: &mut impl TimedRead, within: Duration) -> bool {
    stream.read_timeout(within);
    let mut buf = [0u8; 256];
    let start = Instant::now();
    loop {
        match stream.read(&mut buf) {
            // The server's own SETTINGS may come first; the end of the stream is a close.
            Ok(0) => return true,
            Ok(_) if start.elapsed() < within => continue,
            Ok(_) => return false,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// After the connections that filled `server`'s connection limit closed: a new client of
/// `namespace` gets in again, and the refusals were counted.
pub async fn connections_come_back(server: &Server, namespace: &str) {
    // The server frees their places as it sees them close: until then, a new connection
    // is closed at once, and connecting fails.
    assert!(
        eventually(Duration::from_secs(5), || async {
            match Client::connect(server.endpoint(), namespace).await {
                Ok(client) => client.send("c", &b"m"[..]).await.is_ok(),
                Err(_) => false,
            }
        })
        .await,
        "a new client gets in again"
    );
    let metrics = server.scrape();
    assert!(metrics.value("chanlayer_limit_hits_total{limit=\"connections\"}") >= 1.0);
}

/// Runs `chanlayer` with `args` and `env`, none of the caller's `CHANLAYER_*` variables.
pub fn run_chanlayer(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chanlayer"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CHANLAYER_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the chanlayer binary runs")
}

/// A scratch directory removed when dropped.
pub struct Dir(PathBuf);

impl Dir {
    /// `chanlayer-{test}-{pid}` in the temporary directory, created.
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("chanlayer-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    /// Writes `contents` to the file `name` in the directory; returns its path.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("file written");
        path.to_str().expect("utf-8 path").to_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
