//! The `fanout` scenario: group sends across the nodes of a cluster (or one server).
//!
//! `--groups` groups of `--group-members` members each; member `i` of a group is a
//! process-specific channel of a session on node `i % nodes` (`--targets`), so every group
//! has members on every node. One sender per node calls GroupSend on its own node, the
//! senders together at `--rate` group sends per second, for `--seconds`. Every member
//! receives with prefetch and measures send-to-delivery latency, as `local` when the
//! message was sent on the member's node and `remote` otherwise. The run checks that every
//! member got every message of its group exactly once.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::Mutex;

use super::{LoadgenArgs, LoadgenError, connect_to, percentiles};
use chanlayer_client::SendOptions;

/// What the members saw.
#[derive(Default)]
struct Seen {
    local: Vec<Duration>,
    remote: Vec<Duration>,
    /// Messages per (member, sender node), to check exactly-once.
    per_member: HashMap<(usize, u8), u64>,
}

fn payload(epoch: Instant, node: u8, size: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(size.max(9));
    buf.put_u64(epoch.elapsed().as_nanos() as u64);
    buf.put_u8(node);
    buf.resize(size.max(9), 0x5a);
    buf.freeze()
}

/// Runs the scenario.
pub(super) async fn fanout(args: &LoadgenArgs) -> Result<(), LoadgenError> {
    let targets: Vec<String> = match &args.targets {
        Some(list) => list.split(',').map(|t| t.trim().to_owned()).collect(),
        None => vec![args.target.clone()],
    };
    let nodes = targets.len();
    let mut clients = Vec::new();
    let mut sessions = Vec::new();
    for target in &targets {
        let client = connect_to(args, target).await?;
        sessions.push(Arc::new(client.session().await?));
        clients.push(client);
    }
    // The namespace starts empty (in a cluster a flush reaches every node).
    clients[0].flush().await?;
    let groups = args.groups.max(1);
    let members = args.group_members.max(1);
    // Member m of group g: (node, channel, global member index).
    let mut all = Vec::new();
    for g in 0..groups {
        for i in 0..members {
            let node = i % nodes;
            let channel = sessions[node].new_channel("bench");
            clients[node].group_add(&format!("g{g}"), &channel).await?;
            all.push((g, node, channel));
        }
    }
    // Let memberships and subscriptions settle everywhere.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let epoch = Instant::now();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut receivers = Vec::new();
    for (index, (_, node, channel)) in all.iter().enumerate() {
        let session = Arc::clone(&sessions[*node]);
        let channel = channel.clone();
        let seen = Arc::clone(&seen);
        let stop = Arc::clone(&stop);
        let node = *node as u8;
        receivers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let batch = tokio::time::timeout(
                    Duration::from_millis(200),
                    session.receive_many(&channel, 64),
                )
                .await;
                let Ok(Ok(batch)) = batch else { continue };
                let now = epoch.elapsed();
                let mut seen = seen.lock();
                for message in batch {
                    let mut body = &message.payload[..];
                    let sent = Duration::from_nanos(body.get_u64());
                    let from = body.get_u8();
                    let latency = now.saturating_sub(sent);
                    if from == node {
                        seen.local.push(latency);
                    } else {
                        seen.remote.push(latency);
                    }
                    *seen.per_member.entry((index, from)).or_default() += 1;
                }
            }
        }));
    }

    let rate = if args.rate == 0 { 2_000 } else { args.rate };
    let per_node = rate as f64 / nodes as f64;
    let run_for = Duration::from_secs(args.seconds);
    let options = SendOptions {
        capacity: 100_000,
        expiry: None,
    };
    let mut senders = Vec::new();
    for (node, client) in clients.iter().enumerate() {
        let client = client.clone();
        let size = args.size;
        senders.push(tokio::spawn(async move {
            let mut sent = vec![0u64; groups];
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let start = Instant::now();
            let mut due = 0.0;
            let mut next = node % groups;
            while start.elapsed() < run_for {
                tick.tick().await;
                due += per_node / 1000.0;
                while due >= 1.0 {
                    due -= 1.0;
                    let g = next;
                    next = (next + 1) % groups;
                    client
                        .group_send_with(
                            &format!("g{g}"),
                            payload(epoch, node as u8, size),
                            options,
                            Vec::new(),
                        )
                        .await?;
                    sent[g] += 1;
                }
            }
            Ok::<_, LoadgenError>(sent)
        }));
    }
    let mut sent_by: Vec<Vec<u64>> = Vec::new();
    for sender in senders {
        sent_by.push(sender.await.expect("sender task")?);
    }
    let elapsed = epoch.elapsed();
    let group_sends: u64 = sent_by.iter().flatten().sum();
    let expected: u64 = (0..groups)
        .map(|g| sent_by.iter().map(|s| s[g]).sum::<u64>() * members as u64)
        .sum();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = {
            let s = seen.lock();
            (s.local.len() + s.remote.len()) as u64
        };
        if got >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        let _ = r.await;
    }
    let seen = std::mem::take(&mut *seen.lock());
    let got = (seen.local.len() + seen.remote.len()) as u64;
    let mut wrong = 0;
    for (index, (g, _, _)) in all.iter().enumerate() {
        for (node, sent) in sent_by.iter().enumerate() {
            let count = seen
                .per_member
                .get(&(index, node as u8))
                .copied()
                .unwrap_or(0);
            if count != sent[*g] {
                wrong += 1;
            }
        }
    }
    println!(
        "scenario fanout: {nodes} node(s), {groups} groups x {members} members, {rate} group sends/s for {} s",
        args.seconds
    );
    println!(
        "  group sends: {group_sends}; deliveries: {got} of {expected} ({:.0}/s)",
        got as f64 / elapsed.as_secs_f64()
    );
    let p = |samples: &Vec<Duration>, q: f64| {
        let mut s = samples.clone();
        s.sort_unstable();
        if s.is_empty() {
            return 0.0;
        }
        let i = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1;
        s[i].as_secs_f64() * 1e6
    };
    println!(
        "  json {{\"nodes\":{nodes},\"rate\":{rate},\"group_sends\":{group_sends},\"deliveries\":{got},\"expected\":{expected},\"deliveries_per_s\":{:.0},\"local_p50_us\":{:.0},\"local_p99_us\":{:.0},\"remote_p50_us\":{:.0},\"remote_p99_us\":{:.0}}}",
        got as f64 / elapsed.as_secs_f64(),
        p(&seen.local, 0.5),
        p(&seen.local, 0.99),
        p(&seen.remote, 0.5),
        p(&seen.remote, 0.99),
    );
    println!("  local delivery latency: {}", percentiles(seen.local));
    println!("  remote delivery latency: {}", percentiles(seen.remote));
    for client in &clients {
        client.flush().await?;
    }
    if wrong > 0 || got != expected {
        return Err(LoadgenError::Verification(format!(
            "{wrong} (member, sender) pairs did not get every message exactly once; {got} of {expected} deliveries"
        )));
    }
    Ok(())
}
