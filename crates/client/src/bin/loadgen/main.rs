//! `chanlayer-loadgen`: the load generator that drives a running server over gRPC and prints
//! throughput and latency percentiles (docs/benchmarks.md).
//!
//! Scenarios:
//! - `stream`: N pairs of sessions; in each pair one session sends 1 KiB messages (by
//!   default) on its stream to a process-specific channel of the other, which receives
//!   them with prefetch. Every message carries its send time and sequence number, so the
//!   receiver measures send-to-delivery latency and checks that each pair's messages
//!   arrive exactly once and in order. With `--rate`, senders are paced to that many
//!   messages per second in all, for latency at a given load: by a millisecond tick
//!   (`--pacing tick`) or spaced evenly (`--pacing even`).
//! - `group`: a group of `--members` channels; times each `GroupSend` call (the fan-out
//!   to every member) over `--rounds` rounds.
//! - `fanout`: group sends across the nodes of a cluster (`--targets`), with local and
//!   remote delivery latency (see `fanout.rs`).
//! - `direct`: process-specific channel sends across the nodes of a cluster, local and
//!   remote (see `direct.rs`).
//! - `queue`: normal channels with workers on every node (see `queue.rs`).
//! - `failover`: steady traffic from one node to another while a NATS server or a node is
//!   killed; counts what was lost (see `failover.rs`).
//! - `memory`: holds `--pending` receives on one session and fills `--channels` channels
//!   with `--depth` messages each, then reports the server's resident memory
//!   (`--server-pid`, read from /proc).

use std::{
    collections::VecDeque,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Parser, ValueEnum};
use futures_util::{StreamExt, stream::FuturesUnordered};

use chanlayer_client::{Client, ClientError, ConnectOptions, SendOptions, Session};

mod direct;
mod failover;
mod fanout;
mod queue;

/// The scenario to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Session-stream sends to prefetching receivers, pair by pair.
    Stream,
    /// GroupSend fan-out latency.
    Group,
    /// Server memory with many pending receives and queued messages.
    Memory,
    /// Group sends across the nodes of a cluster.
    Fanout,
    /// Process-specific channel sends across the nodes of a cluster.
    Direct,
    /// Normal channels with workers on every node.
    Queue,
    /// Traffic from one node to another while something fails.
    Failover,
}

/// How a rate is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pacing {
    /// Each sender on a tokio interval, which ticks in whole milliseconds: each
    /// millisecond's messages leave together, as events gathered by a gateway's tick do.
    Tick,
    /// Every message at its own due time, spaced evenly, from one thread that sleeps
    /// between them: no two messages leave together.
    Even,
}

/// chanlayer-loadgen: drive a running chanlayer server with load and print throughput and
/// latency.
#[derive(Debug, Clone, Parser)]
#[command(name = "chanlayer-loadgen", version, about, long_about = None)]
pub struct LoadgenArgs {
    /// The server to drive: `http://HOST:PORT`, or `unix:PATH` for a server listening on a
    /// Unix domain socket.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub target: String,
    /// The scenario.
    #[arg(long, value_enum, default_value = "stream")]
    pub scenario: Scenario,
    /// Sender/receiver session pairs (`stream`).
    #[arg(long, default_value_t = 4)]
    pub pairs: usize,
    /// Messages in all (`stream`).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Message size in bytes (at least 16).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Messages per second in all; 0 sends as fast as possible (`stream`).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How `--rate` paces the senders (`stream`).
    #[arg(long, value_enum, default_value_t = Pacing::Tick)]
    pub pacing: Pacing,
    /// Unacknowledged sends each sender keeps in flight (`stream`).
    #[arg(long, default_value_t = 1024)]
    pub window: usize,
    /// Messages a receive may take at once (`stream`).
    #[arg(long, default_value_t = 512)]
    pub prefetch: u32,
    /// Group members (`group`).
    #[arg(long, default_value_t = 10_000)]
    pub members: usize,
    /// GroupSend calls to time (`group`).
    #[arg(long, default_value_t = 50)]
    pub rounds: usize,
    /// Pending receives to hold (`memory`).
    #[arg(long, default_value_t = 100_000)]
    pub pending: usize,
    /// Channels to fill (`memory`, default 100 000); normal channels (`queue`, default 4).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Process-specific receiver channels, spread over the nodes (`direct`, `failover`).
    #[arg(long, default_value_t = 30)]
    pub receivers: usize,
    /// Send with unary calls instead of on a session stream (`queue`).
    #[arg(long)]
    pub unary: bool,
    /// Messages per filled channel (`memory`).
    #[arg(long, default_value_t = 10)]
    pub depth: usize,
    /// The server's process id, to report its resident memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The namespace the benchmark works in (flushed first).
    #[arg(long, default_value = "bench")]
    pub namespace: String,
    /// `fanout`, `direct`, `queue`, `failover`: the nodes to drive, comma-separated
    /// (default: `--target` alone).
    #[arg(long)]
    pub targets: Option<String>,
    /// `fanout`: how many groups.
    #[arg(long, default_value_t = 100)]
    pub groups: usize,
    /// `fanout`: members per group, spread over the nodes.
    #[arg(long, default_value_t = 30)]
    pub group_members: usize,
    /// `fanout`, `direct`, `queue`, `failover`: how long the senders send, in seconds.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// The bearer token of a server started with an auth token.
    #[arg(long, env = "CHANLAYER_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// A call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// What was received is not what was sent.
    #[error("verification failed: {0}")]
    Verification(String),
}

/// Latency percentiles of a sample, in microseconds.
fn percentiles(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "no samples".to_owned();
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[index].as_secs_f64() * 1e6
    };
    format!(
        "p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us ({} samples)",
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0),
        samples.len()
    )
}

/// The `q` quantile of a sample in microseconds (0 for no samples).
fn percentile_us(samples: &[Duration], q: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_unstable();
    if s.is_empty() {
        return 0.0;
    }
    let index = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1;
    s[index].as_secs_f64() * 1e6
}

/// The nodes of `--targets`, or `--target` alone.
fn targets(args: &LoadgenArgs) -> Vec<String> {
    match &args.targets {
        Some(list) => list.split(',').map(|t| t.trim().to_owned()).collect(),
        None => vec![args.target.clone()],
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(LoadgenArgs::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenario and prints its report.
async fn run(args: LoadgenArgs) -> Result<(), LoadgenError> {
    // These drive `--targets` and flush them themselves.
    match args.scenario {
        Scenario::Fanout => return fanout::fanout(&args).await,
        Scenario::Direct => return direct::direct(&args).await,
        Scenario::Queue => return queue::queue(&args).await,
        Scenario::Failover => return failover::failover(&args).await,
        _ => {}
    }
    let client = connect(&args).await?;
    client.flush().await?;
    match args.scenario {
        Scenario::Stream => stream(&args).await,
        Scenario::Group => group(&client, &args).await,
        Scenario::Memory => memory(&client, &args).await,
        Scenario::Fanout | Scenario::Direct | Scenario::Queue | Scenario::Failover => {
            unreachable!("run above")
        }
    }
}

fn payload(size: usize, seq: u64, epoch: Instant) -> Bytes {
    let mut buf = BytesMut::with_capacity(size.max(16));
    buf.put_u64(epoch.elapsed().as_nanos() as u64);
    buf.put_u64(seq);
    buf.resize(size.max(16), 0x5a);
    buf.freeze()
}

async fn connect(args: &LoadgenArgs) -> Result<Client, ClientError> {
    connect_to(args, &args.target).await
}

async fn connect_to(args: &LoadgenArgs, target: &str) -> Result<Client, ClientError> {
    let options = ConnectOptions {
        token: args.token.clone(),
        ..Default::default()
    };
    Client::connect_with(target.to_owned(), args.namespace.clone(), options).await
}

async fn stream(args: &LoadgenArgs) -> Result<(), LoadgenError> {
    let pairs = args.pairs.max(1);
    let per_pair = args.messages / pairs;
    let epoch = Instant::now();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    // One connection per session, as separate gateway processes would have.
    for _ in 0..pairs {
        let rx_client = connect(args).await?;
        let tx_client = connect(args).await?;
        let rx = rx_client.session().await?;
        let tx = tx_client.session().await?;
        let channel = rx.new_channel("bench");
        receivers.push((rx, channel.clone()));
        senders.push((tx, channel));
    }
    let start = Instant::now();
    let prefetch = args.prefetch;
    let receive_tasks: Vec<_> = receivers
        .into_iter()
        .map(|(session, channel)| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_pair);
                let mut expected = 0u64;
                while (expected as usize) < per_pair {
                    for m in session.receive_many(&channel, prefetch).await? {
                        let sent = u64::from_be_bytes(m.payload[..8].try_into().expect("8 bytes"));
                        let seq = u64::from_be_bytes(m.payload[8..16].try_into().expect("8 bytes"));
                        if seq != expected {
                            return Err(LoadgenError::Verification(format!(
                                "{channel}: expected message {expected}, got {seq}"
                            )));
                        }
                        expected += 1;
                        let now = epoch.elapsed().as_nanos() as u64;
                        latencies.push(Duration::from_nanos(now.saturating_sub(sent)));
                    }
                }
                Ok::<_, LoadgenError>((latencies, session))
            })
        })
        .collect();
    let (size, window) = (args.size, args.window.max(1));
    let options = SendOptions {
        capacity: u32::try_from(window * 4).unwrap_or(u32::MAX).max(100_000),
        expiry: None,
    };
    let send_tasks = match (args.rate, args.pacing) {
        (0, _) => windowed(senders, per_pair, window, None, size, options, epoch),
        (rate, Pacing::Tick) => {
            let interval = Duration::from_secs_f64(pairs as f64 / rate as f64);
            windowed(
                senders,
                per_pair,
                window,
                Some(interval),
                size,
                options,
                epoch,
            )
        }
        (rate, Pacing::Even) => paced(senders, per_pair, rate, size, options, epoch),
    };
    let mut keep = Vec::new();
    for task in send_tasks {
        keep.push(task.await.expect("sender task")?);
    }
    let sent_at = start.elapsed();
    let mut latencies = Vec::new();
    for task in receive_tasks {
        let (l, session) = task.await.expect("receiver task")?;
        latencies.extend(l);
        keep.push(session);
    }
    let elapsed = start.elapsed();
    let total = per_pair * pairs;
    println!(
        "scenario stream: {pairs} session pairs, {total} messages of {size} bytes, window {window}, prefetch {prefetch}, rate {}",
        if args.rate > 0 {
            format!("{}/s ({:?} pacing)", args.rate, args.pacing)
        } else {
            "unlimited".to_owned()
        }
    );
    println!(
        "  sent in {:.3} s, all delivered in {:.3} s: {:.0} messages/s sent and delivered",
        sent_at.as_secs_f64(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!("  send-to-delivery latency: {}", percentiles(latencies));
    println!("  verified: every message exactly once, in order per pair");
    Ok(())
}

type SendTask = tokio::task::JoinHandle<Result<Session, LoadgenError>>;

/// Senders that keep up to `window` sends unacknowledged, as fast as acknowledgements
/// allow or one message per tick of a tokio `interval`.
fn windowed(
    senders: Vec<(Session, String)>,
    per_pair: usize,
    window: usize,
    interval: Option<Duration>,
    size: usize,
    options: SendOptions,
    epoch: Instant,
) -> Vec<SendTask> {
    senders
        .into_iter()
        .map(|(session, channel)| {
            tokio::spawn(async move {
                // Acknowledgements come in order, so waiting for the oldest is enough.
                let mut in_flight = VecDeque::with_capacity(window);
                let mut ticker = interval.map(|i| {
                    let mut t = tokio::time::interval(i);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    t
                });
                for seq in 0..per_pair as u64 {
                    if let Some(t) = ticker.as_mut() {
                        t.tick().await;
                    }
                    if in_flight.len() >= window
                        && let Some(ack) = in_flight.pop_front()
                    {
                        ack.await?;
                    }
                    in_flight.push_back(session.send(&channel, payload(size, seq, epoch), options));
                }
                for ack in in_flight {
                    ack.await?;
                }
                Ok::<_, LoadgenError>(session)
            })
        })
        .collect()
}

/// Senders paced to `rate` messages per second in all, each message at its own due time,
/// pairs in turn. One thread paces them with the operating system's sleep: a tokio timer
/// ticks in whole milliseconds, which would send each millisecond's messages in one burst.
/// A task per pair awaits the acknowledgements, in order.
fn paced(
    senders: Vec<(Session, String)>,
    per_pair: usize,
    rate: u64,
    size: usize,
    options: SendOptions,
    epoch: Instant,
) -> Vec<SendTask> {
    type Ack = std::pin::Pin<Box<dyn Future<Output = Result<bool, ClientError>> + Send>>;
    let pairs = senders.len();
    let sessions: Vec<(Arc<Session>, String)> = senders
        .into_iter()
        .map(|(session, channel)| (Arc::new(session), channel))
        .collect();
    let mut acks = Vec::with_capacity(pairs);
    let mut tasks = Vec::with_capacity(pairs);
    for (session, _) in &sessions {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Ack>();
        acks.push(tx);
        let session = Arc::clone(session);
        tasks.push(tokio::spawn(async move {
            while let Some(ack) = rx.recv().await {
                ack.await?;
            }
            Arc::into_inner(session)
                .ok_or_else(|| LoadgenError::Verification("the pacer still holds a session".into()))
        }));
    }
    std::thread::spawn(move || {
        let step = Duration::from_secs_f64(1.0 / rate as f64);
        let start = Instant::now();
        for i in 0..per_pair * pairs {
            let due = start + step.mul_f64(i as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let (session, channel) = &sessions[i % pairs];
            let seq = (i / pairs) as u64;
            let ack = session.send(channel, payload(size, seq, epoch), options);
            if acks[i % pairs].send(Box::pin(ack)).is_err() {
                break;
            }
        }
        // Dropping the sessions and the senders lets each task finish.
        drop(sessions);
    });
    tasks
}

async fn group(client: &Client, args: &LoadgenArgs) -> Result<(), LoadgenError> {
    let session = client.session().await?;
    let adds: Vec<_> = (0..args.members)
        .map(|i| session.group_add("bench-group", &format!("specific.m{}!{i}", i % 64)))
        .collect();
    for add in adds {
        add.await?;
    }
    let payload = Bytes::from(vec![0x5a; args.size]);
    let options = SendOptions {
        capacity: u32::try_from(args.rounds + 1).unwrap_or(u32::MAX),
        expiry: None,
    };
    let mut calls = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds {
        let start = Instant::now();
        let sent = client
            .group_send_with("bench-group", payload.clone(), options, Vec::new())
            .await?;
        calls.push(start.elapsed());
        if sent.delivered as usize != args.members {
            return Err(LoadgenError::Verification(format!(
                "group_send reached {} of {} members",
                sent.delivered, args.members
            )));
        }
    }
    let stats = client.stats().await?;
    if stats.queued_messages != (args.members * args.rounds) as u64 {
        return Err(LoadgenError::Verification(format!(
            "{} messages queued, expected {}",
            stats.queued_messages,
            args.members * args.rounds
        )));
    }
    println!(
        "scenario group: GroupSend of {} bytes to {} members, {} rounds (unary call, client to ack)",
        args.size, args.members, args.rounds
    );
    println!("  GroupSend latency: {}", percentiles(calls));
    client.flush().await?;
    Ok(())
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn memory(client: &Client, args: &LoadgenArgs) -> Result<(), LoadgenError> {
    let before = args.server_pid.and_then(rss_mib);
    let channels = args.channels.unwrap_or(100_000);
    let session = Arc::new(client.session().await?);
    let pending: Vec<_> = (0..args.pending)
        .map(|i| {
            let channel = format!("specific.{}!wait{i}", session.client_prefix());
            session.start_receive(&channel, 1)
        })
        .collect::<Result<_, _>>()?;
    let payload = Bytes::from(vec![0x5a; args.size]);
    let options = SendOptions {
        capacity: u32::try_from(args.depth).unwrap_or(u32::MAX).max(1),
        expiry: None,
    };
    let mut in_flight = FuturesUnordered::new();
    for c in 0..channels {
        for _ in 0..args.depth {
            while in_flight.len() >= 4096 {
                if let Some(r) = in_flight.next().await {
                    r?;
                }
            }
            in_flight.push(session.send(&format!("mem.{c}"), payload.clone(), options));
        }
    }
    while let Some(r) = in_flight.next().await {
        r?;
    }
    let stats = client.stats().await?;
    if stats.pending_receives != args.pending as u64
        || stats.queued_messages != (channels * args.depth) as u64
    {
        return Err(LoadgenError::Verification(format!(
            "server holds {} pending receives and {} messages",
            stats.pending_receives, stats.queued_messages
        )));
    }
    println!(
        "scenario memory: {} pending receives, {} channels x {} messages of {} bytes",
        args.pending, channels, args.depth, args.size
    );
    match (before, args.server_pid.and_then(rss_mib)) {
        (Some(b), Some(a)) => println!("  server RSS: {a:.1} MiB (was {b:.1} MiB before)"),
        _ => println!("  server RSS: pass --server-pid to report it"),
    }
    drop(pending);
    client.flush().await?;
    Ok(())
}
