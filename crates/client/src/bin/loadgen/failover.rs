//! The `failover` scenario: steady traffic from node A to node B while something fails.
//!
//! `--targets` names A and B. On B, `--groups` groups of `--group-members` members and
//! `--receivers` process-specific channels, all receiving with prefetch. From A, for
//! `--seconds`, group sends to the groups in turn at `--rate` per second (each call awaited
//! before the next) and, at the same rate, sends on A's session stream to B's channels
//! (`--window` unacknowledged at most). It prints `sending` when the traffic starts, so that
//! whoever drives it can kill a NATS server or a node at a known time. It never stops on an
//! error: it counts the failed calls by reason, the slowest call, the messages acknowledged
//! but never delivered (lost) and delivered twice, and the longest time B went without a
//! delivery while the traffic ran.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::direct::{stamped, unstamp};
use super::{LoadgenArgs, LoadgenError, connect_to, targets};
use chanlayer_client::{ClientError, SendOptions};

/// Group messages carry this as their sender node, direct ones [`DIRECT`].
const GROUP: u8 = 0;
const DIRECT: u8 = 1;

/// A direct send on its way: sequence number, when it was made, its acknowledgement and
/// its place in the window.
type Pending = (
    u64,
    Instant,
    std::pin::Pin<Box<dyn Future<Output = Result<bool, ClientError>> + Send>>,
    tokio::sync::OwnedSemaphorePermit,
);

/// What B saw.
#[derive(Default)]
struct Seen {
    /// Deliveries per (member, group send) and per direct send.
    group: BTreeMap<(usize, u64), u32>,
    direct: BTreeMap<u64, u32>,
    /// When each delivery arrived, since the epoch, in milliseconds.
    at_ms: Vec<u64>,
}

/// What a sender saw.
#[derive(Default)]
struct Outcome {
    /// Sequence numbers of the acknowledged sends.
    ok: Vec<u64>,
    errors: BTreeMap<String, u64>,
    slowest: Duration,
    /// Calls that succeeded after the first failure.
    ok_after_error: u64,
}

impl Outcome {
    fn record(&mut self, seq: u64, took: Duration, result: Result<(), ClientError>) {
        self.slowest = self.slowest.max(took);
        match result {
            Ok(()) => {
                if !self.errors.is_empty() {
                    self.ok_after_error += 1;
                }
                self.ok.push(seq);
            }
            Err(e) => {
                let reason = e.reason().unwrap_or_else(|| format!("{:?}", e.code()));
                *self.errors.entry(reason).or_default() += 1;
            }
        }
    }

    fn json(&self, lost: u64, duplicated: u64, sent: u64) -> String {
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!(
            "{{\"sent\":{sent},\"acked\":{},\"errors\":{{{}}},\"ok_after_error\":{},\"slowest_ms\":{},\"lost\":{lost},\"duplicated\":{duplicated}}}",
            self.ok.len(),
            errors.join(","),
            self.ok_after_error,
            self.slowest.as_millis()
        )
    }
}

/// Runs the scenario.
pub(super) async fn failover(args: &LoadgenArgs) -> Result<(), LoadgenError> {
    let targets = targets(args);
    if targets.len() != 2 {
        return Err(LoadgenError::Verification(
            "failover needs --targets A,B".into(),
        ));
    }
    let a = connect_to(args, &targets[0]).await?;
    let b = connect_to(args, &targets[1]).await?;
    a.flush().await?;
    let sender = Arc::new(a.session().await?);
    let on_b = Arc::new(b.session().await?);
    let (groups, members) = (args.groups.max(1), args.group_members.max(1));
    let mut channels = Vec::new();
    for g in 0..groups {
        for _ in 0..members {
            let channel = on_b.new_channel("member");
            b.group_add(&format!("fo{g}"), &channel).await?;
            channels.push((Some(g), channel));
        }
    }
    for _ in 0..args.receivers.max(1) {
        channels.push((None, on_b.new_channel("direct")));
    }
    let receivers = args.receivers.max(1) as u64;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let epoch = Instant::now();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut receive_tasks = Vec::new();
    for (index, (group, channel)) in channels.iter().cloned().enumerate() {
        let (session, seen, stop) = (Arc::clone(&on_b), Arc::clone(&seen), Arc::clone(&stop));
        let prefetch = args.prefetch;
        receive_tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let batch = tokio::time::timeout(
                    Duration::from_millis(200),
                    session.receive_many(&channel, prefetch),
                )
                .await;
                let batch = match batch {
                    Ok(Ok(batch)) => batch,
                    Err(_) => continue,
                    // B or its session is gone.
                    Ok(Err(_)) => break,
                };
                let now = epoch.elapsed().as_millis() as u64;
                let mut seen = seen.lock();
                for message in batch {
                    let (_, kind, seq) = unstamp(&message.payload);
                    seen.at_ms.push(now);
                    if kind == GROUP && group.is_some() {
                        *seen.group.entry((index, seq)).or_default() += 1;
                    } else {
                        *seen.direct.entry(seq).or_default() += 1;
                    }
                }
            }
        }));
    }

    let run_for = Duration::from_secs(args.seconds);
    let rate = if args.rate == 0 { 2_000 } else { args.rate } as f64;
    let options = SendOptions {
        capacity: 1_000_000,
        expiry: None,
    };
    println!("sending");
    let start_ms = epoch.elapsed().as_millis() as u64;
    let group_task = {
        let (a, size) = (a.clone(), args.size);
        tokio::spawn(async move {
            let mut outcome = Outcome::default();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let started = Instant::now();
            let (mut due, mut seq) = (0.0, 0u64);
            while started.elapsed() < run_for {
                tick.tick().await;
                due += rate / 1000.0;
                while due >= 1.0 {
                    due -= 1.0;
                    let group = format!("fo{}", seq % groups as u64);
                    let call = Instant::now();
                    let result = a
                        .group_send_with(
                            &group,
                            stamped(epoch, GROUP, seq, size),
                            options,
                            Vec::new(),
                        )
                        .await
                        .map(|_| ());
                    outcome.record(seq, call.elapsed(), result);
                    seq += 1;
                }
            }
            (outcome, seq)
        })
    };
    let direct_task = {
        let (sender, size, window) = (Arc::clone(&sender), args.size, args.window.max(1));
        let names: Vec<String> = channels
            .iter()
            .filter(|(g, _)| g.is_none())
            .map(|(_, c)| c.clone())
            .collect();
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(window));
            let (acks, mut pending) = tokio::sync::mpsc::unbounded_channel::<Pending>();
            let waiter = tokio::spawn(async move {
                let mut outcome = Outcome::default();
                while let Some((seq, issued, ack, permit)) = pending.recv().await {
                    let result = ack.await.map(|_| ());
                    outcome.record(seq, Instant::now().duration_since(issued), result);
                    drop(permit);
                }
                outcome
            });
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let started = Instant::now();
            let (mut due, mut seq) = (0.0, 0u64);
            while started.elapsed() < run_for {
                tick.tick().await;
                due += rate / 1000.0;
                while due >= 1.0 {
                    due -= 1.0;
                    let permit = Arc::clone(&permits)
                        .acquire_owned()
                        .await
                        .expect("semaphore open");
                    let channel = &names[(seq % receivers) as usize];
                    let ack = sender.send(channel, stamped(epoch, DIRECT, seq, size), options);
                    let _ = acks.send((seq, Instant::now(), Box::pin(ack), permit));
                    seq += 1;
                }
            }
            drop(acks);
            (waiter.await.expect("ack task"), seq)
        })
    };
    let (groups_out, group_sent) = group_task.await.expect("group sender");
    let (direct_out, direct_sent) = direct_task.await.expect("direct sender");
    let end_ms = epoch.elapsed().as_millis() as u64;
    // Wait until deliveries stop coming for a second (at most 10 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = usize::MAX;
    while Instant::now() < deadline {
        let now = seen.lock().at_ms.len();
        if now == last {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in receive_tasks {
        let _ = task.await;
    }
    let seen = std::mem::take(&mut *seen.lock());
    // Group sends: each acknowledged one is owed to every member of its group.
    let (mut group_lost, mut group_dup) = (0u64, 0u64);
    for &seq in &groups_out.ok {
        let g = (seq % groups as u64) as usize;
        for m in 0..members {
            match seen
                .group
                .get(&(g * members + m, seq))
                .copied()
                .unwrap_or(0)
            {
                0 => group_lost += 1,
                1 => {}
                n => group_dup += u64::from(n) - 1,
            }
        }
    }
    let (mut direct_lost, mut direct_dup) = (0u64, 0u64);
    for &seq in &direct_out.ok {
        match seen.direct.get(&seq).copied().unwrap_or(0) {
            0 => direct_lost += 1,
            1 => {}
            n => direct_dup += u64::from(n) - 1,
        }
    }
    // The longest time without a delivery while the traffic ran.
    let mut at = seen.at_ms.clone();
    at.sort_unstable();
    let (mut gap, mut gap_at) = (0u64, 0u64);
    let mut previous = start_ms;
    for &t in at.iter().filter(|&&t| t >= start_ms && t <= end_ms) {
        if t - previous > gap {
            (gap, gap_at) = (t - previous, previous - start_ms);
        }
        previous = t;
    }
    if end_ms - previous > gap {
        (gap, gap_at) = (end_ms - previous, previous - start_ms);
    }
    let delivered_after = at.iter().filter(|&&t| t > start_ms + gap_at + gap).count();
    println!(
        "scenario failover: group sends to {groups} groups x {members} members on B and direct sends to {receivers} channels on B, {rate}/s each for {} s",
        args.seconds
    );
    println!(
        "  json {{\"scenario\":\"failover\",\"rate\":{rate},\"group\":{},\"direct\":{},\"longest_gap_ms\":{gap},\"gap_from_ms\":{gap_at},\"deliveries_after_gap\":{delivered_after}}}",
        groups_out.json(group_lost, group_dup, group_sent),
        direct_out.json(direct_lost, direct_dup, direct_sent),
    );
    Ok(())
}
