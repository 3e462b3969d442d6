//! Channels: FIFO order, waiting receives, capacity, expiry, names and sizes.

use std::time::{Duration, Instant};

use super::*;

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
fn a_receive_takes_about_one_frame_of_payload_at_most() {
    let l = layer();
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    let big = Bytes::from(vec![b'x'; RECEIVE_BATCH_BYTES / 4 + 1]);
    for _ in 0..8 {
        ns.send("p!a", big.clone(), 100, MIN, now).unwrap();
    }
    // Three fit in the budget, a fourth would pass it.
    let sizes = |r| received(r).iter().map(Bytes::len).collect::<Vec<_>>();
    assert_eq!(sizes(ns.receive("p!a", 64, now, waiter).unwrap()).len(), 3);
    assert_eq!(sizes(ns.receive("p!a", 64, now, waiter).unwrap()).len(), 3);
    assert_eq!(sizes(ns.receive("p!a", 64, now, waiter).unwrap()).len(), 2);
    // A message larger than the budget still goes, alone.
    let huge = Bytes::from(vec![b'y'; RECEIVE_BATCH_BYTES * 2]);
    ns.send("p!a", huge.clone(), 100, MIN, now).unwrap();
    ns.send("p!a", msg("small"), 100, MIN, now).unwrap();
    assert_eq!(
        received(ns.receive("p!a", 64, now, waiter).unwrap()),
        vec![huge]
    );
    assert_eq!(
        received(ns.receive("p!a", 64, now, waiter).unwrap()),
        vec![msg("small")]
    );
}

#[test]
fn demand_counts_each_waiting_receives_max_messages() {
    struct Prefetching(u64, usize);
    impl Waiter for Prefetching {
        fn id(&self) -> u64 {
            self.0
        }
        fn max_messages(&self) -> usize {
            self.1
        }
    }
    let l: Layer<Prefetching> = Layer::new(Limits::default(), 8);
    let ns = l.namespace("").unwrap();
    let now = Instant::now();
    assert_eq!(ns.demand("w"), Demand::default());
    ns.receive("w", 1, now, || Prefetching(1, 1)).unwrap();
    ns.receive("w", 64, now, || Prefetching(2, 64)).unwrap();
    assert_eq!(
        ns.demand("w"),
        Demand {
            receives: 2,
            messages: 65
        }
    );
    // Served in order, one message each: the demand goes with its receive.
    let h = ns.send("w", msg("1"), 100, MIN, now).unwrap().unwrap();
    assert_eq!(h.waiter.0, 1);
    assert_eq!(
        ns.demand("w"),
        Demand {
            receives: 1,
            messages: 64
        }
    );
    assert!(ns.cancel("w", 2));
    assert_eq!(ns.demand("w"), Demand::default());
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
