//! Groups: membership, expiry and group_send's fan-out.

use std::time::{Duration, Instant};

use super::*;

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
