//! Benchmarks of the engine alone, with no network: send then receive on one channel,
//! a receive waiting before the send (the handoff path), and group_send fan-out.
//!
//! Run with `cargo bench --bench core`.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::{
    hint::black_box,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use bytes::Bytes;
use chanlayer::core::{CapacityRules, Layer, Limits, Received, Waiter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

struct BenchWaiter(u64);

impl Waiter for BenchWaiter {
    fn id(&self) -> u64 {
        self.0
    }
}

static IDS: AtomicU64 = AtomicU64::new(0);

fn waiter() -> BenchWaiter {
    BenchWaiter(IDS.fetch_add(1, Ordering::Relaxed))
}

const MIN: Duration = Duration::from_secs(60);

fn send_receive(c: &mut Criterion) {
    let layer: Layer<BenchWaiter> = Layer::new(Limits::default(), 64);
    let ns = layer.namespace("bench").unwrap();
    let payload = Bytes::from(vec![7u8; 1024]);
    let mut group = c.benchmark_group("channel");
    group.throughput(Throughput::Elements(1));
    group.bench_function("send_then_receive_1KiB", |b| {
        b.iter(|| {
            let now = Instant::now();
            ns.send("specific.abc!1", payload.clone(), 100, MIN, now)
                .unwrap();
            match ns.receive("specific.abc!1", 1, now, waiter).unwrap() {
                Received::Messages(m) => black_box(m),
                Received::Waiting => unreachable!(),
            };
        });
    });
    group.bench_function("receive_waits_then_send_hands_off", |b| {
        b.iter(|| {
            let now = Instant::now();
            ns.receive("specific.abc!2", 1, now, waiter).unwrap();
            black_box(
                ns.send("specific.abc!2", payload.clone(), 100, MIN, now)
                    .unwrap(),
            );
        });
    });
    group.finish();
}

fn group_send(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_send");
    for members in [100usize, 1_000, 10_000] {
        let layer: Layer<BenchWaiter> = Layer::new(Limits::default(), 64);
        let ns = layer.namespace("bench").unwrap();
        let now = Instant::now();
        for i in 0..members {
            ns.group_add("room", &format!("specific.p{}!{i}", i % 16), MIN, now)
                .unwrap();
        }
        let rules = CapacityRules::uniform(100);
        let payload = Bytes::from(vec![7u8; 256]);
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            // Only the fan-out is timed; the queues are emptied between iterations so
            // that every copy is queued, none dropped for capacity.
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let now = Instant::now();
                    let start = Instant::now();
                    let sent = ns
                        .group_send("room", payload.clone(), &rules, MIN, now)
                        .unwrap();
                    total += start.elapsed();
                    assert_eq!(sent.delivered, members);
                    ns.sweep(now + MIN * 2);
                    for i in 0..members {
                        ns.group_add("room", &format!("specific.p{}!{i}", i % 16), MIN, now)
                            .unwrap();
                    }
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, send_receive, group_send);
criterion_main!(benches);
