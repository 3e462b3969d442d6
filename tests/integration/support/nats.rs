//! A real NATS cluster for the cluster-mode tests: three `nats-server` processes with
//! routes between them on loopback, each killed when dropped. The binary is
//! `$CHANLAYER_NATS_SERVER`, else `nats-server` on PATH (`./scripts/test` installs both
//! Debian's and a current one and runs the suite with each).
#![allow(dead_code)]

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chanlayer_client::Client;

use crate::support::Server;

/// The cluster tests (every cluster module) run one at a time: each has a NATS cluster and
/// several nodes on two cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The namespace the cluster tests use.
pub const NS: &str = "cluster";

/// The nats-server binary the tests use.
pub fn nats_server_bin() -> String {
    std::env::var("CHANLAYER_NATS_SERVER").unwrap_or_else(|_| "nats-server".into())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One server of the cluster.
pub struct NatsServer {
    child: Option<Child>,
    config: PathBuf,
    /// Client port.
    pub port: u16,
    /// Monitoring port.
    pub monitor: u16,
}

impl NatsServer {
    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new(nats_server_bin())
            .args(["-c", self.config.to_str().expect("utf-8 path")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (install nats-server or set CHANLAYER_NATS_SERVER): {e}",
                    nats_server_bin()
                )
            });
        self.child = Some(child);
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.monitor)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).ok()?;
        Some(body)
    }

    /// How many other servers it has routes to (servers from 2.10 on pool several route
    /// connections per peer, so the peers are counted by their ids).
    pub fn routes(&self) -> usize {
        let Some(body) = self.get("/routez") else {
            return 0;
        };
        let mut peers: Vec<&str> = body
            .split("\"remote_id\":")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
            .collect();
        peers.sort_unstable();
        peers.dedup();
        peers.len()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three NATS servers routed to each other. They do not tell their clients about each
/// other (`no_advertise`): a client knows the servers it was given, and nothing else.
pub struct NatsCluster {
    /// The servers.
    pub servers: Vec<NatsServer>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl NatsCluster {
    /// Starts three servers and waits until each has its two routes. A port taken by
    /// another process between its choice and its use fails an attempt; it is tried again
    /// on new ports.
    pub fn start() -> Self {
        for _ in 0..3 {
            let cluster = Self::start_once();
            if cluster.routed_within(Duration::from_secs(10)) {
                return cluster;
            }
        }
        panic!("three attempts to start a routed NATS cluster failed");
    }

    fn start_once() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "chanlayer-nats-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut servers = Vec::new();
        for (i, (port, monitor, route)) in ports.iter().enumerate() {
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (_, _, r))| format!("nats-route://127.0.0.1:{r}"))
                .collect();
            let config = dir.join(format!("n{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\n\
                     ping_interval: \"1s\"\nwrite_deadline: \"2s\"\nmax_payload: 8MB\n\
                     jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 256MB\n  max_file_store: 256MB\n}}\n\
                     cluster {{\n  name: chanlayer-test\n  listen: 127.0.0.1:{route}\n  no_advertise: true\n  routes: [{}]\n}}\n",
                    routes.join(", "),
                    store = dir.join(format!("js{i}")).display(),
                ),
            )
            .expect("config written");
            let mut server = NatsServer {
                child: None,
                config,
                port: *port,
                monitor: *monitor,
            };
            server.spawn();
            servers.push(server);
        }
        Self {
            servers,
            _dir: TempDir(dir),
        }
    }

    /// Waits until every running server has routes to the two others.
    pub fn wait_routed(&self, timeout: Duration) {
        assert!(
            self.routed_within(timeout),
            "the NATS servers did not route to each other within {timeout:?}"
        );
    }

    fn routed_within(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .servers
                .iter()
                .filter(|s| s.child.is_some())
                .all(|s| s.routes() >= 2)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The URLs with server `first`'s first, as a node next to that server lists them.
    pub fn urls_from(&self, first: usize) -> String {
        let mut urls = vec![self.servers[first].url()];
        urls.extend(
            self.servers
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != first)
                .map(|(_, s)| s.url()),
        );
        urls.join(",")
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// A chanlayer node joined to server `server` of `nats` (listing the others after it).
pub fn node(nats: &NatsCluster, server: usize, name: &str, extra: &[&str]) -> Server {
    let urls = nats.urls_from(server);
    let mut args = vec!["--cluster-nats-url", &urls, "--cluster-node-name", name];
    if !extra.contains(&"--cluster-heartbeat-ms") {
        args.extend(["--cluster-heartbeat-ms", "200"]);
    }
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    assert!(
        wait_ready(&server, Duration::from_secs(10)),
        "node {name} did not become ready"
    );
    server
}

/// A NATS cluster, nodes A and B on its servers 0 and 1 (they have heard each other), and a
/// client of each.
pub struct TwoNodes {
    /// The NATS cluster.
    pub nats: NatsCluster,
    /// Node A, on NATS server 0.
    pub a: Server,
    /// Node B, on NATS server 1.
    pub b: Server,
    /// A client of A.
    pub on_a: Client,
    /// A client of B.
    pub on_b: Client,
}

impl TwoNodes {
    /// Starts them, each node with the flags `extra`.
    pub async fn start(extra: &[&str]) -> Self {
        let nats = NatsCluster::start();
        let a = node(&nats, 0, "a", extra);
        let b = node(&nats, 1, "b", extra);
        wait_nodes(&[&a, &b]);
        let on_a = a.client(NS).await;
        let on_b = b.client(NS).await;
        Self {
            nats,
            a,
            b,
            on_a,
            on_b,
        }
    }
}

/// Waits until `server` answers `/readyz` with 200.
pub fn wait_ready(server: &Server, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if server.http_get("/readyz").0 == 200 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Waits until every node has heard the others' heartbeats.
pub fn wait_nodes(nodes: &[&Server]) {
    let want = (nodes.len() - 1) as f64;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if nodes
            .iter()
            .all(|n| n.scrape().value("chanlayer_cluster_nodes") >= want)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the nodes did not see each other");
}
