//! The `direct` scenario: process-specific channel sends across the nodes of a cluster (or
//! one server).
//!
//! `--receivers` process-specific channels; channel `i` belongs to a session on node
//! `i % nodes` (`--targets`), so the channels are spread over every node. One sender
//! session per node sends on its session stream, keeping up to `--window` sends
//! unacknowledged, to the channels in turn: the senders together at `--rate` messages per
//! second (by a millisecond tick), or as fast as acknowledgements allow with `--rate 0`,
//! for `--seconds`. Every receiver receives with prefetch (`--prefetch`). Every message
//! carries its send time, its sender's node and a sequence number per (sender, channel), so
//! the receivers measure send-to-delivery latency, `local` when the sender is on the
//! channel's node and `remote` otherwise, and the run checks that each channel got every
//! message of every sender exactly once and in the order it was sent.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::Mutex;

use super::{LoadgenArgs, LoadgenError, connect_to, percentile_us, percentiles, targets};
use chanlayer_client::SendOptions;

/// What the receivers saw.
#[derive(Default)]
struct Seen {
    local: Vec<Duration>,
    remote: Vec<Duration>,
    /// Messages that were not the next one of their (sender, channel).
    out_of_order: u64,
    /// When the last message arrived, since the epoch.
    last: Duration,
}

/// A message: send time, sender node, sequence number, padding to `size`.
pub(super) fn stamped(epoch: Instant, node: u8, seq: u64, size: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(size.max(17));
    buf.put_u64(epoch.elapsed().as_nanos() as u64);
    buf.put_u8(node);
    buf.put_u64(seq);
    buf.resize(size.max(17), 0x5a);
    buf.freeze()
}

/// The send time, sender node and sequence number of a message made by [`stamped`].
pub(super) fn unstamp(mut body: &[u8]) -> (Duration, u8, u64) {
    let sent = Duration::from_nanos(body.get_u64());
    let node = body.get_u8();
    (sent, node, body.get_u64())
}

/// Runs the scenario.
pub(super) async fn direct(args: &LoadgenArgs) -> Result<(), LoadgenError> {
    let targets = targets(args);
    let nodes = targets.len();
    let mut clients = Vec::new();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for target in &targets {
        let client = connect_to(args, target).await?;
        senders.push(client.session().await?);
        receivers.push(Arc::new(client.session().await?));
        clients.push(client);
    }
    clients[0].flush().await?;
    let count = args.receivers.max(1);
    let channels: Vec<(usize, String)> = (0..count)
        .map(|i| (i % nodes, receivers[i % nodes].new_channel("direct")))
        .collect();
    // Let the new prefixes' subscriptions reach every NATS server.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let epoch = Instant::now();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let prefetch = args.prefetch;
    let mut receive_tasks = Vec::new();
    for (node, channel) in &channels {
        let session = Arc::clone(&receivers[*node]);
        let channel = channel.clone();
        let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
        let node = *node as u8;
        receive_tasks.push(tokio::spawn(async move {
            // The next sequence number expected from each sender.
            let mut next = vec![0u64; nodes];
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
                    if seq != next[from as usize] {
                        seen.out_of_order += 1;
                    }
                    next[from as usize] = seq + 1;
                    let latency = now.saturating_sub(sent);
                    if from == node {
                        seen.local.push(latency);
                    } else {
                        seen.remote.push(latency);
                    }
                }
            }
            next
        }));
    }

    let per_node = args.rate as f64 / nodes as f64;
    let run_for = Duration::from_secs(args.seconds);
    let window = args.window.max(1);
    let options = SendOptions {
        capacity: 1_000_000,
        expiry: None,
    };
    let mut send_tasks = Vec::new();
    for (node, session) in senders.into_iter().enumerate() {
        let names: Vec<String> = channels.iter().map(|(_, c)| c.clone()).collect();
        let size = args.size;
        send_tasks.push(tokio::spawn(async move {
            let mut sent = vec![0u64; names.len()];
            let mut in_flight = VecDeque::with_capacity(window);
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let start = Instant::now();
            let mut due = 0.0;
            let mut next = node % names.len();
            while start.elapsed() < run_for {
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
                        && let Some(ack) = in_flight.pop_front()
                    {
                        ack.await?;
                    }
                    let c = next;
                    next = (next + 1) % names.len();
                    let message = stamped(epoch, node as u8, sent[c], size);
                    in_flight.push_back(session.send(&names[c], message, options));
                    sent[c] += 1;
                }
            }
            for ack in in_flight {
                ack.await?;
            }
            Ok::<_, LoadgenError>((sent, session))
        }));
    }
    let mut sent_by = Vec::new();
    let mut keep = Vec::new();
    for task in send_tasks {
        let (sent, session) = task.await.expect("sender task")?;
        sent_by.push(sent);
        keep.push(session);
    }
    let send_period = epoch.elapsed();
    let sent: u64 = sent_by.iter().flatten().sum();
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
    stop.store(true, Ordering::Relaxed);
    let mut wrong = 0;
    for (c, task) in receive_tasks.into_iter().enumerate() {
        let next = task.await.expect("receiver task");
        for (node, got) in next.iter().enumerate() {
            if *got != sent_by[node][c] {
                wrong += 1;
            }
        }
    }
    let seen = std::mem::take(&mut *seen.lock());
    let got = (seen.local.len() + seen.remote.len()) as u64;
    // Deliveries per second over the time the messages took to arrive.
    let took = seen.last.max(send_period).as_secs_f64();
    let rate = args.rate;
    println!(
        "scenario direct: {nodes} node(s), {count} receiver channels, window {window}, prefetch {prefetch}, rate {} for {} s",
        if rate > 0 {
            format!("{rate}/s")
        } else {
            "unlimited".to_owned()
        },
        args.seconds
    );
    println!(
        "  sent: {sent}; deliveries: {got} ({:.0}/s)",
        got as f64 / took
    );
    println!(
        "  json {{\"scenario\":\"direct\",\"nodes\":{nodes},\"rate\":{rate},\"sent\":{sent},\"deliveries\":{got},\"expected\":{sent},\"deliveries_per_s\":{:.0},\"local_p50_us\":{:.0},\"local_p99_us\":{:.0},\"remote_p50_us\":{:.0},\"remote_p99_us\":{:.0}}}",
        got as f64 / took,
        percentile_us(&seen.local, 0.5),
        percentile_us(&seen.local, 0.99),
        percentile_us(&seen.remote, 0.5),
        percentile_us(&seen.remote, 0.99),
    );
    println!("  local delivery latency: {}", percentiles(seen.local));
    println!("  remote delivery latency: {}", percentiles(seen.remote));
    for client in &clients {
        client.flush().await?;
    }
    if wrong > 0 || seen.out_of_order > 0 || got != sent {
        return Err(LoadgenError::Verification(format!(
            "{wrong} (channel, sender) pairs did not get every message, {} out of order; {got} of {sent} deliveries",
            seen.out_of_order
        )));
    }
    println!("  verified: every message exactly once, in order per (sender, channel)");
    Ok(())
}
