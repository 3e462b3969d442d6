//! Unit tests of every channel-layer rule, with time as a parameter.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use bytes::Bytes;

use super::*;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, PartialEq, Eq)]
struct TestWaiter(u64);

impl Waiter for TestWaiter {
    fn id(&self) -> u64 {
        self.0
    }
}

fn waiter() -> TestWaiter {
    TestWaiter(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

fn layer() -> Layer<TestWaiter> {
    Layer::new(Limits::default(), 8)
}

fn msg(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

const MIN: Duration = Duration::from_secs(60);

fn received(r: Received) -> Vec<Bytes> {
    match r {
        Received::Messages(m) => m.into_iter().map(|m| m.payload).collect(),
        Received::Waiting => panic!("expected messages, the receive is waiting"),
    }
}

#[test]
fn send_then_receive_is_fifo() {
    let l = layer();
    let ns = l.namespace("asgi").unwrap();
    let now = Instant::now();
    for i in 0..5 {
        assert!(
            ns.send("ch", msg(&i.to_string()), 100, MIN, now)
                .unwrap()
                .is_none()
        );
    }
    for i in 0..5 {
        let got = received(ns.receive("ch", 1, now, waiter).unwrap());
        assert_eq!(got, vec![msg(&i.to_string())]);
    }
    assert!(matches!(
        ns.receive("ch", 1, now, waiter).unwrap(),
        Received::Waiting
    ));
}

#[test]
fn receive_takes_up_to_max_messages() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    for i in 0..5 {
        ns.send("p!a", msg(&i.to_string()), 100, MIN, now).unwrap();
    }
    assert_eq!(
        received(ns.receive("p!a", 3, now, waiter).unwrap()).len(),
        3
    );
    assert_eq!(
        received(ns.receive("p!a", 3, now, waiter).unwrap()).len(),
        2
    );
    // Zero means one.
    ns.send("p!a", msg("x"), 100, MIN, now).unwrap();
    assert_eq!(
        received(ns.receive("p!a", 0, now, waiter).unwrap()).len(),
        1
    );
}

#[test]
fn waiting_receives_are_served_in_order() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    let (a, b) = (waiter(), waiter());
    let (ida, idb) = (a.0, b.0);
    assert!(matches!(
        ns.receive("w", 1, now, || a).unwrap(),
        Received::Waiting
    ));
    assert!(matches!(
        ns.receive("w", 1, now, || b).unwrap(),
        Received::Waiting
    ));
    let h1 = ns.send("w", msg("1"), 100, MIN, now).unwrap().unwrap();
    let h2 = ns.send("w", msg("2"), 100, MIN, now).unwrap().unwrap();
    assert_eq!((h1.waiter.0, h1.message.payload), (ida, msg("1")));
    assert_eq!((h2.waiter.0, h2.message.payload), (idb, msg("2")));
    // No waiter left: the next message is queued.
    assert!(ns.send("w", msg("3"), 100, MIN, now).unwrap().is_none());
    assert_eq!(ns.stats().waiting_receives, 0);
}

#[test]
fn capacity_is_per_full_channel_name() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    for _ in 0..3 {
        ns.send("p!a", msg("x"), 3, MIN, now).unwrap();
    }
    let err = ns.send("p!a", msg("x"), 3, MIN, now).unwrap_err();
    assert_eq!(
        err,
        CoreError::ChannelFull {
            channel: "p!a".into(),
            capacity: 3
        }
    );
    // Another channel of the same process has its own capacity.
    ns.send("p!b", msg("x"), 3, MIN, now).unwrap();
    // Receiving frees room.
    received(ns.receive("p!a", 1, now, waiter).unwrap());
    ns.send("p!a", msg("x"), 3, MIN, now).unwrap();
    assert_eq!(ns.stats().dropped_channel_full_total, 1);
}

#[test]
fn expired_messages_free_capacity_and_are_never_delivered() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let t0 = Instant::now();
    ns.send("c", msg("old"), 2, Duration::from_secs(1), t0)
        .unwrap();
    ns.send("c", msg("old2"), 2, Duration::from_secs(1), t0)
        .unwrap();
    assert!(ns.send("c", msg("x"), 2, MIN, t0).is_err());
    let t1 = t0 + Duration::from_secs(1);
    // At the expiry instant the message is expired.
    ns.send("c", msg("new"), 2, MIN, t1).unwrap();
    assert_eq!(
        received(ns.receive("c", 10, t1, waiter).unwrap()),
        vec![msg("new")]
    );
    assert_eq!(ns.stats().dropped_expired_total, 2);
}

#[test]
fn receive_skips_expired_messages() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let t0 = Instant::now();
    ns.send("c", msg("short"), 100, Duration::from_millis(10), t0)
        .unwrap();
    ns.send("c", msg("long"), 100, MIN, t0).unwrap();
    let later = t0 + Duration::from_millis(10);
    assert_eq!(
        received(ns.receive("c", 5, later, waiter).unwrap()),
        vec![msg("long")]
    );
    assert!(matches!(
        ns.receive("c", 1, later, waiter).unwrap(),
        Received::Waiting
    ));
}

#[test]
fn cancel_withdraws_a_waiter_without_losing_messages() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    let w = waiter();
    let id = w.0;
    ns.receive("c", 1, now, || w).unwrap();
    assert!(ns.cancel("c", id));
    assert!(!ns.cancel("c", id), "a second cancel finds nothing");
    assert!(!ns.cancel("never", 12345));
    assert!(ns.send("c", msg("kept"), 100, MIN, now).unwrap().is_none());
    assert_eq!(
        received(ns.receive("c", 1, now, waiter).unwrap()),
        vec![msg("kept")]
    );
}

#[test]
fn requeue_puts_a_message_back_at_the_front_or_hands_it_on() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    ns.receive("c", 1, now, waiter).unwrap();
    let handoff = ns.send("c", msg("first"), 100, MIN, now).unwrap().unwrap();
    ns.send("c", msg("second"), 100, MIN, now).unwrap();
    // The waiter turned out to be gone: the message goes back in front.
    assert!(ns.requeue("c", handoff.message, now).is_none());
    assert_eq!(
        received(ns.receive("c", 2, now, waiter).unwrap()),
        vec![msg("first"), msg("second")]
    );
    // With a waiter present, requeue hands the message to it.
    let w = waiter();
    let id = w.0;
    ns.receive("c", 1, now, || w).unwrap();
    let m = Message::new(msg("again"), now, MIN);
    assert_eq!(ns.requeue("c", m, now).unwrap().waiter.0, id);
    // An expired message is dropped.
    let m = Message::new(msg("late"), now, Duration::from_secs(1));
    assert!(ns.requeue("c", m, now + MIN).is_none());
    assert!(matches!(
        ns.receive("c", 1, now, waiter).unwrap(),
        Received::Waiting
    ));
}

#[test]
fn invalid_names_are_refused_everywhere() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    let bad = "no spaces";
    assert!(matches!(
        ns.send(bad, msg("x"), 100, MIN, now),
        Err(CoreError::InvalidChannelName { .. })
    ));
    assert!(matches!(
        ns.receive(bad, 1, now, waiter),
        Err(CoreError::InvalidChannelName { .. })
    ));
    assert!(matches!(
        ns.group_add("g!", "c", MIN, now),
        Err(CoreError::InvalidGroupName { .. })
    ));
    assert!(matches!(
        ns.group_add("g", bad, MIN, now),
        Err(CoreError::InvalidChannelName { .. })
    ));
    assert!(ns.group_discard(bad, "c").is_err());
    assert!(
        ns.group_send("", msg("x"), &CapacityRules::uniform(100), MIN, now)
            .is_err()
    );
    assert!(matches!(
        l.namespace("has space"),
        Err(CoreError::InvalidNamespace { .. })
    ));
}

#[test]
fn oversize_messages_are_refused() {
    let limits = Limits {
        max_message_bytes: 10,
        ..Limits::default()
    };
    let l: Layer<TestWaiter> = Layer::new(limits, 4);
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    ns.send("c", Bytes::from(vec![0; 10]), 100, MIN, now)
        .unwrap();
    assert_eq!(
        ns.send("c", Bytes::from(vec![0; 11]), 100, MIN, now)
            .unwrap_err(),
        CoreError::MessageTooLarge {
            size: 11,
            limit: 10
        }
    );
    ns.group_add("g", "c", MIN, now).unwrap();
    assert!(matches!(
        ns.group_send(
            "g",
            Bytes::from(vec![0; 11]),
            &CapacityRules::uniform(100),
            MIN,
            now
        ),
        Err(CoreError::MessageTooLarge { .. })
    ));
}

#[test]
fn group_add_is_idempotent_and_discard_tolerates_absence() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    assert!(ns.group_add("g", "a", MIN, now).unwrap());
    assert!(!ns.group_add("g", "a", MIN, now).unwrap());
    assert_eq!(ns.group_size("g", now).unwrap(), 1);
    assert!(ns.group_discard("g", "a").unwrap());
    assert!(!ns.group_discard("g", "a").unwrap());
    assert!(!ns.group_discard("missing", "a").unwrap());
    assert_eq!(ns.group_size("g", now).unwrap(), 0);
    assert_eq!(ns.stats().groups, 0, "an emptied group is freed");
}

#[test]
fn group_send_shares_one_payload_and_reports_drops() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    for name in ["a", "b", "c"] {
        ns.group_add("g", name, MIN, now).unwrap();
    }
    // "c" is full.
    ns.send("c", msg("filler"), 1, MIN, now).unwrap();
    let w = waiter();
    let wid = w.0;
    ns.receive("b", 1, now, || w).unwrap();
    let payload = msg("hello");
    let rules = CapacityRules::uniform(1);
    let sent = ns
        .group_send("g", payload.clone(), &rules, MIN, now)
        .unwrap();
    assert_eq!((sent.delivered, sent.dropped), (2, 1));
    assert_eq!(sent.handoffs.len(), 1);
    assert_eq!(sent.handoffs[0].waiter.0, wid);
    let got = received(ns.receive("a", 1, now, waiter).unwrap());
    assert_eq!(got, vec![payload.clone()]);
    // One buffer shared by every member, not one copy each.
    assert_eq!(got[0].as_ptr(), sent.handoffs[0].message.payload.as_ptr());
}

#[test]
fn small_queued_payloads_stop_pinning_their_receive_buffer_after_a_sweep() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    // A payload that is a slice of a larger buffer, as a decoded request's is.
    let frame = Bytes::from(vec![7u8; 100_000]);
    let slice = frame.slice(10..110);
    ns.send("c", slice.clone(), 100, MIN, now).unwrap();
    ns.sweep(now);
    let got = received(ns.receive("c", 1, now, waiter).unwrap());
    assert_eq!(got[0], slice);
    assert_ne!(
        got[0].as_ptr(),
        slice.as_ptr(),
        "copied into its own buffer"
    );
    // A large payload is kept as it is.
    let big = Bytes::from(vec![1u8; COMPACT_BELOW]);
    ns.send("c", big.clone(), 100, MIN, now).unwrap();
    ns.sweep(now);
    let got = received(ns.receive("c", 1, now, waiter).unwrap());
    assert_eq!(got[0].as_ptr(), big.as_ptr());
}

#[test]
fn group_send_resolves_capacity_per_member() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    ns.group_add("g", "big", MIN, now).unwrap();
    ns.group_add("g", "small.1", MIN, now).unwrap();
    let rules = CapacityRules::compile(5, &[(Pattern::Glob("small.*".into()), 1)]).unwrap();
    let first = ns.group_send("g", msg("1"), &rules, MIN, now).unwrap();
    assert_eq!((first.delivered, first.dropped), (2, 0));
    let second = ns.group_send("g", msg("2"), &rules, MIN, now).unwrap();
    assert_eq!((second.delivered, second.dropped), (1, 1));
}

#[test]
fn group_send_to_a_missing_group_is_a_no_op() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let sent = ns
        .group_send(
            "nobody",
            msg("x"),
            &CapacityRules::uniform(100),
            MIN,
            Instant::now(),
        )
        .unwrap();
    assert_eq!((sent.delivered, sent.dropped), (0, 0));
}

#[test]
fn group_messages_keep_fifo_order_per_channel() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    ns.group_add("g", "c", MIN, now).unwrap();
    let rules = CapacityRules::uniform(100);
    ns.send("c", msg("0"), 100, MIN, now).unwrap();
    ns.group_send("g", msg("1"), &rules, MIN, now).unwrap();
    ns.send("c", msg("2"), 100, MIN, now).unwrap();
    ns.group_send("g", msg("3"), &rules, MIN, now).unwrap();
    let got = received(ns.receive("c", 10, now, waiter).unwrap());
    assert_eq!(got, vec![msg("0"), msg("1"), msg("2"), msg("3")]);
}

#[test]
fn memberships_expire_after_group_expiry_and_group_add_refreshes() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let t0 = Instant::now();
    let expiry = Duration::from_secs(10);
    ns.group_add("g", "a", expiry, t0).unwrap();
    ns.group_add("g", "b", expiry, t0).unwrap();
    // "a" is refreshed at t0 + 5 s.
    ns.group_add("g", "a", expiry, t0 + Duration::from_secs(5))
        .unwrap();
    let t10 = t0 + expiry;
    assert_eq!(ns.group_size("g", t10).unwrap(), 1);
    let sent = ns
        .group_send("g", msg("x"), &CapacityRules::uniform(100), MIN, t10)
        .unwrap();
    assert_eq!(sent.delivered, 1);
    assert!(matches!(
        ns.receive("b", 1, t10, waiter).unwrap(),
        Received::Waiting
    ));
    assert_eq!(ns.stats().memberships_expired_total, 1);
    let t15 = t0 + Duration::from_secs(15);
    assert_eq!(ns.sweep(t15).expired_memberships, 1);
    assert_eq!(ns.stats().groups, 0);
}

#[test]
fn group_send_follows_every_change_of_membership() {
    // group_send keeps a fan-out list between sends; every change must show in the next.
    let l = layer();
    let ns = l.namespace("").unwrap();
    let t0 = Instant::now();
    let rules = CapacityRules::uniform(100);
    let members = |t: Instant| {
        let sent = ns.group_send("g", msg("x"), &rules, MIN, t).unwrap();
        let mut got = Vec::new();
        for name in ["a", "b", "c", "d"] {
            loop {
                let w = waiter();
                let id = w.0;
                match ns.receive(name, 10, t, || w).unwrap() {
                    Received::Messages(m) => got.extend(m.iter().map(|_| name)),
                    Received::Waiting => {
                        assert!(ns.cancel(name, id));
                        break;
                    }
                }
            }
        }
        assert_eq!(sent.delivered, got.len());
        got
    };
    ns.group_add("g", "a", MIN, t0).unwrap();
    ns.group_add("g", "b", MIN, t0).unwrap();
    assert_eq!(members(t0), ["a", "b"]);
    ns.group_add("g", "c", MIN, t0).unwrap();
    assert_eq!(members(t0), ["a", "b", "c"]);
    ns.group_discard("g", "a").unwrap();
    assert_eq!(members(t0), ["b", "c"]);
    // "d" expires first; "b" is refreshed, which must not resurrect anything.
    ns.group_add("g", "d", Duration::from_secs(5), t0).unwrap();
    assert_eq!(members(t0), ["b", "c", "d"]);
    let t4 = t0 + Duration::from_secs(4);
    ns.group_add("g", "b", MIN, t4).unwrap();
    assert_eq!(members(t4), ["b", "c", "d"]);
    let t5 = t0 + Duration::from_secs(5);
    assert_eq!(members(t5), ["b", "c"]);
    // "c" expires at t0 + 60 s, "b" (refreshed) at t4 + 60 s.
    assert_eq!(members(t0 + MIN), ["b"]);
    ns.flush();
    assert_eq!(members(t0 + MIN), Vec::<&str>::new());
    ns.group_add("g", "a", MIN, t0 + MIN).unwrap();
    assert_eq!(members(t0 + MIN), ["a"]);
}

#[test]
fn group_send_messages_expire_too() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let t0 = Instant::now();
    ns.group_add("g", "a", MIN, t0).unwrap();
    ns.group_send(
        "g",
        msg("x"),
        &CapacityRules::uniform(100),
        Duration::from_secs(1),
        t0,
    )
    .unwrap();
    assert!(matches!(
        ns.receive("a", 1, t0 + Duration::from_secs(2), waiter)
            .unwrap(),
        Received::Waiting
    ));
}

#[test]
fn namespaces_are_isolated_and_flush_clears_one() {
    let l = layer();
    let a = l.namespace("a").unwrap();
    let b = l.namespace("b").unwrap();
    let now = Instant::now();
    a.send("c", msg("a"), 100, MIN, now).unwrap();
    b.send("c", msg("b"), 100, MIN, now).unwrap();
    a.group_add("g", "c", MIN, now).unwrap();
    b.group_add("g", "c", MIN, now).unwrap();
    let w = waiter();
    let wid = w.0;
    a.receive("waiting", 1, now, || w).unwrap();

    let report = a.flush();
    assert_eq!(
        report,
        FlushReport {
            dropped_messages: 1,
            removed_groups: 1
        }
    );
    assert_eq!(a.group_size("g", now).unwrap(), 0);
    assert_eq!(b.group_size("g", now).unwrap(), 1);
    assert!(matches!(
        a.receive("c", 1, now, waiter).unwrap(),
        Received::Waiting
    ));
    assert_eq!(
        received(b.receive("c", 1, now, waiter).unwrap()),
        vec![msg("b")]
    );
    // The waiter registered before the flush gets messages sent after it.
    let h = a
        .send("waiting", msg("after"), 100, MIN, now)
        .unwrap()
        .unwrap();
    assert_eq!(h.waiter.0, wid);
    assert_eq!(a.stats().dropped_flushed_total, 1);
    assert_eq!(a.stats().queued_messages, 0);
}

#[test]
fn sweep_frees_idle_channels_and_expired_messages() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let t0 = Instant::now();
    for i in 0..100 {
        ns.send(&format!("c{i}"), msg("x"), 100, Duration::from_secs(1), t0)
            .unwrap();
    }
    ns.receive("waited", 1, t0, waiter).unwrap();
    assert_eq!(ns.stats().channels, 101);
    let report = ns.sweep(t0 + Duration::from_secs(2));
    assert_eq!(report.expired_messages, 100);
    assert_eq!(report.removed_channels, 100);
    let stats = ns.stats();
    assert_eq!(
        (stats.channels, stats.queued_messages, stats.queued_bytes),
        (1, 0, 0)
    );
    assert_eq!(stats.waiting_receives, 1);
}

#[test]
fn release_client_removes_its_channels_and_memberships_only() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    ns.send("specific.dead!1", msg("x"), 100, MIN, now).unwrap();
    ns.send("specific.dead!2", msg("y"), 100, MIN, now).unwrap();
    ns.send("specific.alive!1", msg("z"), 100, MIN, now)
        .unwrap();
    ns.group_add("room", "specific.dead!1", MIN, now).unwrap();
    ns.group_add("room", "specific.alive!1", MIN, now).unwrap();
    ns.group_add("solo", "specific.dead!2", MIN, now).unwrap();
    ns.group_add("room", "worker", MIN, now).unwrap();
    let report = ns.release_client("dead");
    assert_eq!(
        report,
        ReleaseReport {
            channels: 2,
            dropped_messages: 2,
            memberships: 2
        }
    );
    assert_eq!(ns.group_size("room", now).unwrap(), 2);
    assert_eq!(ns.group_size("solo", now).unwrap(), 0);
    let stats = ns.stats();
    assert_eq!(stats.groups, 1);
    assert_eq!(stats.dropped_session_gone_total, 2);
    assert_eq!(stats.memberships_released_total, 2);
    assert_eq!(
        received(ns.receive("specific.alive!1", 1, now, waiter).unwrap()),
        vec![msg("z")]
    );
}

#[test]
fn members_are_listed_in_pages() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    for i in 0..25 {
        ns.group_add("g", &format!("m{i:02}"), MIN, now).unwrap();
    }
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = ns.group_members("g", &after, 10, now).unwrap();
        assert_eq!(page.total, 25);
        seen.extend(page.members.iter().map(|(n, _)| n.clone()));
        if !page.more {
            break;
        }
        after = seen.last().unwrap().clone();
    }
    let expected: Vec<String> = (0..25).map(|i| format!("m{i:02}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn channel_info_reports_depth() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let t0 = Instant::now();
    ns.send("c", msg("abc"), 100, MIN, t0).unwrap();
    ns.send("c", msg("de"), 100, MIN, t0 + Duration::from_secs(1))
        .unwrap();
    let info = ns.channel_info("c", t0 + Duration::from_secs(3)).unwrap();
    assert_eq!(info.queued_messages, 2);
    assert_eq!(info.queued_bytes, 5);
    assert_eq!(info.oldest_message_age, Duration::from_secs(3));
    assert_eq!(ns.channel_info("none", t0).unwrap(), ChannelInfo::default());
}

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_channels_per_namespace: 2,
        max_groups_per_namespace: 1,
        max_members_per_group: 2,
        max_namespaces: 2,
        ..Limits::default()
    };
    let l: Layer<TestWaiter> = Layer::new(limits, 4);
    let ns = l.namespace("a").unwrap();
    let now = Instant::now();
    ns.send("c1", msg("x"), 100, MIN, now).unwrap();
    ns.send("c2", msg("x"), 100, MIN, now).unwrap();
    assert!(matches!(
        ns.send("c3", msg("x"), 100, MIN, now),
        Err(CoreError::LimitExceeded { .. })
    ));
    ns.group_add("g", "m1", MIN, now).unwrap();
    ns.group_add("g", "m2", MIN, now).unwrap();
    assert!(ns.group_add("g", "m3", MIN, now).is_err());
    assert!(ns.group_add("g2", "m1", MIN, now).is_err());
    l.namespace("b").unwrap();
    assert!(l.namespace("c").is_err());
    // Freed channels make room again.
    ns.flush();
    ns.send("c3", msg("x"), 100, MIN, now).unwrap();
}

#[test]
fn stats_track_gauges() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    ns.send("a", msg("1234"), 100, MIN, now).unwrap();
    ns.send("b", msg("12"), 100, MIN, now).unwrap();
    ns.group_add("g", "a", MIN, now).unwrap();
    let s = l.stats();
    assert_eq!(
        (
            s.channels,
            s.queued_messages,
            s.queued_bytes,
            s.groups,
            s.memberships,
            s.sent_total
        ),
        (2, 2, 6, 1, 1, 2)
    );
    received(ns.receive("a", 1, now, waiter).unwrap());
    let s = l.stats();
    assert_eq!((s.queued_messages, s.queued_bytes), (1, 2));
}
