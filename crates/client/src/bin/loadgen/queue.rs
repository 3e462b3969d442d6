//! The `queue` scenario: normal channels (no `!`) shared by workers on every node.
//!
//! `--channels` normal channels (4 by default); on every node of `--targets` one worker
//! session receives from each of them with prefetch, as `runworker` processes would. One
//! sender per node sends to the channels in turn, on its session stream with up to
//! `--window` sends unacknowledged, or with unary Send calls (`--unary`, `--window` of them
//! at once): the senders together at `--rate` messages per second (by a millisecond tick),
//! or as fast as they can with `--rate 0`, for `--seconds`. A send refused with
//! `CHANNEL_FULL` is made again a millisecond later (counted). Every message carries its
//! send time (of the first attempt), its sender's node and a sequence number per sender, so
//! the workers measure send-to-delivery latency (`local` when the worker is on the sender's
//! node) and the run checks that each message was received exactly once across all workers.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use parking_lot::Mutex;

use super::direct::{stamped, unstamp};
use super::{LoadgenArgs, LoadgenError, connect_to, percentile_us, percentiles, targets};
use chanlayer_client::{Client, ClientError, SendOptions, Session};

/// What the workers saw.
#[derive(Default)]
struct Seen {
    local: Vec<Duration>,
    remote: Vec<Duration>,
    /// Times each message was received, per sender, by sequence number.
    counts: Vec<Vec<u8>>,
    /// When the last message arrived, since the epoch.
    last: Duration,
}

type Ack = Pin<Box<dyn Future<Output = Result<bool, ClientError>> + Send>>;

/// Where a sender sends: its node's session stream or unary calls on its node's client.
#[derive(Clone)]
enum Sender {
    Stream(Arc<Session>),
    Unary(Box<Client>),
}

impl Sender {
    fn send(&self, channel: &str, message: Bytes, options: SendOptions) -> Ack {
        match self {
            Sender::Stream(session) => Box::pin(session.send(channel, message, options)),
            Sender::Unary(client) => {
                let (client, channel) = (client.as_ref().clone(), channel.to_owned());
                Box::pin(async move { client.send_with(&channel, message, options).await })
            }
        }
    }
}

/// Waits for a send's acknowledgement, making it again while the channel is full.
async fn settle(
    sender: &Sender,
    ack: Ack,
    channel: &str,
    message: Bytes,
    options: SendOptions,
    full: &mut u64,
) -> Result<(), ClientError> {
    let mut result = ack.await;
    loop {
        match result {
            Ok(_) => return Ok(()),
            Err(e) if e.reason().as_deref() == Some("CHANNEL_FULL") => {
                *full += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
                result = sender.send(channel, message.clone(), options).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs the scenario.
pub(super) async fn queue(args: &LoadgenArgs) -> Result<(), LoadgenError> {
    let targets = targets(args);
    let nodes = targets.len();
    let mut clients = Vec::new();
    let mut workers = Vec::new();
    let mut senders = Vec::new();
    for target in &targets {
        let client = connect_to(args, target).await?;
        workers.push(Arc::new(client.session().await?));
        senders.push(if args.unary {
            Sender::Unary(Box::new(client.clone()))
        } else {
            Sender::Stream(Arc::new(client.session().await?))
        });
        clients.push(client);
    }
    clients[0].flush().await?;
    let names: Vec<String> = (0..args.channels.unwrap_or(4).max(1))
        .map(|i| format!("bench.q{i}"))
        .collect();

    let epoch = Instant::now();
    let seen = Arc::new(Mutex::new(Seen {
        counts: vec![Vec::new(); nodes],
        ..Seen::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let prefetch = args.prefetch;
    let mut worker_tasks = Vec::new();
    for (node, session) in workers.iter().enumerate() {
        for channel in &names {
            let (session, channel) = (Arc::clone(session), channel.clone());
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            worker_tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let batch = tokio::time::timeout(
                        Duration::from_millis(200),
                        session.receive_many(&channel, prefetch),
                    )
                    .await;
                    let Ok(Ok(batch)) = batch else { continue };
                    let now = epoch.elapsed();
                    let mut seen = seen.lock();
                    seen.last = now;
                    for message in batch {
                        let (sent, from, seq) = unstamp(&message.payload);
                        let latency = now.saturating_sub(sent);
                        if from as usize == node {
                            seen.local.push(latency);
                        } else {
                            seen.remote.push(latency);
                        }
                        let counts = &mut seen.counts[from as usize];
                        if counts.len() <= seq as usize {
                            counts.resize(seq as usize + 1, 0);
                        }
                        counts[seq as usize] = counts[seq as usize].saturating_add(1);
                    }
                }
            }));
        }
    }
    // Let the workers' receives reach the nodes (and their pulls the stream).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let per_node = args.rate as f64 / nodes as f64;
    let run_for = Duration::from_secs(args.seconds);
    let window = args.window.max(1);
    let options = SendOptions {
        capacity: 10_000,
        expiry: None,
    };
    let start = epoch.elapsed();
    let mut send_tasks = Vec::new();
    for (node, sender) in senders.iter().enumerate() {
        let (sender, names, size) = (sender.clone(), names.clone(), args.size);
        send_tasks.push(tokio::spawn(async move {
            let mut in_flight: VecDeque<(Ack, usize, Bytes)> = VecDeque::with_capacity(window);
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let started = Instant::now();
            let (mut due, mut seq, mut full) = (0.0, 0u64, 0u64);
            while started.elapsed() < run_for {
                let batch = if per_node > 0.0 {
                    tick.tick().await;
                    due += per_node / 1000.0;
                    let whole = due.floor();
                    due -= whole;
                    whole as usize
                } else {
                    window
                };
                for _ in 0..batch {
                    if in_flight.len() >= window
                        && let Some((ack, c, message)) = in_flight.pop_front()
                    {
                        settle(&sender, ack, &names[c], message, options, &mut full).await?;
                    }
                    let c = (seq as usize + node) % names.len();
                    let message = stamped(epoch, node as u8, seq, size);
                    let ack = sender.send(&names[c], message.clone(), options);
                    in_flight.push_back((ack, c, message));
                    seq += 1;
                }
            }
            for (ack, c, message) in in_flight {
                settle(&sender, ack, &names[c], message, options, &mut full).await?;
            }
            Ok::<_, LoadgenError>((seq, full))
        }));
    }
    let mut sent_by = Vec::new();
    let mut full = 0;
    for task in send_tasks {
        let (sent, refused) = task.await.expect("sender task")?;
        sent_by.push(sent);
        full += refused;
    }
    let send_period = epoch.elapsed() - start;
    let sent: u64 = sent_by.iter().sum();
    // Wait for the rest while it keeps coming (a backlog drains at the delivery rate).
    let (mut before, mut progress) = (0u64, Instant::now());
    loop {
        let got = {
            let s = seen.lock();
            (s.local.len() + s.remote.len()) as u64
        };
        if got > before {
            (before, progress) = (got, Instant::now());
        }
        if got >= sent || progress.elapsed() > Duration::from_secs(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let a duplicate that is still on its way show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for task in worker_tasks {
        let _ = task.await;
    }
    let seen = std::mem::take(&mut *seen.lock());
    let got = (seen.local.len() + seen.remote.len()) as u64;
    let (mut missing, mut duplicated) = (0u64, 0u64);
    for (node, sent) in sent_by.iter().enumerate() {
        for seq in 0..*sent as usize {
            match seen.counts[node].get(seq).copied().unwrap_or(0) {
                0 => missing += 1,
                1 => {}
                n => duplicated += u64::from(n) - 1,
            }
        }
    }
    let took = seen
        .last
        .saturating_sub(start)
        .max(send_period)
        .as_secs_f64();
    let rate = args.rate;
    let how = if args.unary { "unary" } else { "stream" };
    println!(
        "scenario queue: {nodes} node(s), {} normal channels, a worker per channel on every node, {how} sends, window {window}, rate {} for {} s",
        names.len(),
        if rate > 0 {
            format!("{rate}/s")
        } else {
            "unlimited".to_owned()
        },
        args.seconds
    );
    println!(
        "  sent: {sent} ({full} refused CHANNEL_FULL first, sent again); deliveries: {got} ({:.0}/s)",
        got as f64 / took
    );
    println!(
        "  json {{\"scenario\":\"queue\",\"send\":\"{how}\",\"nodes\":{nodes},\"rate\":{rate},\"sent\":{sent},\"deliveries\":{got},\"expected\":{sent},\"channel_full\":{full},\"deliveries_per_s\":{:.0},\"p50_us\":{:.0},\"p99_us\":{:.0},\"local_p50_us\":{:.0},\"local_p99_us\":{:.0},\"remote_p50_us\":{:.0},\"remote_p99_us\":{:.0}}}",
        got as f64 / took,
        percentile_us(&[seen.local.clone(), seen.remote.clone()].concat(), 0.5),
        percentile_us(&[seen.local.clone(), seen.remote.clone()].concat(), 0.99),
        percentile_us(&seen.local, 0.5),
        percentile_us(&seen.local, 0.99),
        percentile_us(&seen.remote, 0.5),
        percentile_us(&seen.remote, 0.99),
    );
    println!("  worker on the sender's node: {}", percentiles(seen.local));
    println!("  worker on another node: {}", percentiles(seen.remote));
    for client in &clients {
        client.flush().await?;
    }
    if missing > 0 || duplicated > 0 {
        return Err(LoadgenError::Verification(format!(
            "{missing} messages never received, {duplicated} received more than once"
        )));
    }
    println!("  verified: every message received exactly once across all workers");
    Ok(())
}
