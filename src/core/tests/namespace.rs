//! Namespaces: isolation, flush, sweep, release, introspection, limits and stats.

use std::time::{Duration, Instant};

use super::*;

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

#[test]
fn refusals_say_which_limit_they_hit() {
    let limits = Limits {
        max_message_bytes: 4,
        max_channels_per_namespace: 1,
        max_groups_per_namespace: 1,
        max_members_per_group: 1,
        max_namespaces: 1,
        ..Limits::default()
    };
    let l: Layer<TestWaiter> = Layer::new(limits, 4);
    // A namespace whose name mentions another limit is still refused at its own.
    let ns = l.namespace("my-namespaces").unwrap();
    let now = Instant::now();
    fn limit_of<T: std::fmt::Debug>(r: Result<T, CoreError>) -> Option<Limit> {
        r.unwrap_err().limit()
    }
    assert_eq!(
        limit_of(ns.send("c1", msg("12345"), 100, MIN, now)),
        Some(Limit::MessageBytes)
    );
    ns.send("c1", msg("x"), 100, MIN, now).unwrap();
    let full = ns.send("c2", msg("x"), 100, MIN, now).unwrap_err();
    assert_eq!(full.limit(), Some(Limit::ChannelsPerNamespace));
    assert_eq!(full.reason(), "LIMIT_EXCEEDED");
    assert_eq!(full.category(), Category::ResourceExhausted);
    ns.group_add("g", "m1", MIN, now).unwrap();
    assert_eq!(
        limit_of(ns.group_add("g", "m2", MIN, now)),
        Some(Limit::MembersPerGroup)
    );
    assert_eq!(
        limit_of(ns.group_add("g2", "m1", MIN, now)),
        Some(Limit::GroupsPerNamespace)
    );
    assert_eq!(
        limit_of(l.namespace("other").map(drop)),
        Some(Limit::Namespaces)
    );
    let capacity = ns.send("c1", msg("x"), 1, MIN, now).unwrap_err();
    assert_eq!(
        (capacity.reason(), capacity.limit()),
        ("CHANNEL_FULL", None)
    );
    for limit in Limit::ALL {
        assert_eq!(Limit::from_name(limit.name()), Some(limit));
    }
}

#[test]
fn only_unused_empty_namespaces_are_removed() {
    let l = layer();
    let now = Instant::now();
    let held = l.namespace("held").unwrap();
    {
        let full = l.namespace("full").unwrap();
        full.send("c", msg("m"), 100, MIN, now).unwrap();
        let grouped = l.namespace("grouped").unwrap();
        grouped.group_add("g", "c", MIN, now).unwrap();
        let waiting = l.namespace("waiting").unwrap();
        waiting.receive("c", 1, now, waiter).unwrap();
        l.namespace("empty").unwrap();
        l.namespace("resumable").unwrap();
    }
    assert_eq!(l.len(), 6);
    assert_eq!(l.remove_idle(|name| name == "resumable"), 1);
    assert!(l.existing("empty").is_none());
    assert!(l.existing("held").is_some(), "someone holds it");
    assert_eq!(l.len(), 5);
    drop(held);
    // Emptied: the message expired, the group lost its member, the receive went.
    let full = l.existing("full").unwrap();
    full.sweep(now + 2 * MIN);
    let grouped = l.existing("grouped").unwrap();
    grouped.group_discard("g", "c").unwrap();
    drop((full, grouped));
    assert_eq!(l.remove_idle(|_| false), 4);
    assert_eq!(l.len(), 1);
    assert!(l.existing("waiting").is_some());
}

#[test]
fn a_removed_namespace_still_counts_in_the_totals() {
    let l = layer();
    let now = Instant::now();
    {
        let gone = l.namespace("gone").unwrap();
        gone.send("c", msg("a"), 100, MIN, now).unwrap();
        gone.send("c", msg("b"), 100, MIN, now).unwrap();
        gone.flush();
        l.namespace("stays")
            .unwrap()
            .send("c", msg("c"), 100, MIN, now)
            .unwrap();
    }
    let before = l.stats();
    assert_eq!((before.sent_total, before.dropped_flushed_total), (3, 2));
    assert_eq!(l.remove_idle(|_| false), 1);
    assert!(l.existing("gone").is_none());
    assert_eq!(l.stats(), before, "the totals do not fall");
    l.namespace("gone")
        .unwrap()
        .send("c", msg("d"), 100, MIN, now)
        .unwrap();
    let after = l.stats();
    assert_eq!((after.sent_total, after.queued_messages), (4, 2));
}

#[test]
fn maxima_refuse_what_a_request_asks_for_and_never_overflow() {
    let limits = Limits {
        max_capacity: 1_000,
        max_expiry: Duration::from_secs(600),
        max_group_expiry: Duration::from_secs(86_400),
        ..Limits::default()
    };
    let l: Layer<TestWaiter> = Layer::new(limits, 4);
    let ns = l.namespace("a").unwrap();
    let now = Instant::now();
    let huge = Duration::from_secs(u64::MAX);
    fn refused<T>(r: Result<T, CoreError>) -> (Option<Limit>, Category, String) {
        let e = r.map(drop).unwrap_err();
        (e.limit(), e.category(), e.to_string())
    }
    let (limit, category, text) = refused(ns.send("c", msg("x"), u32::MAX as usize, MIN, now));
    assert_eq!(limit, Some(Limit::Capacity));
    assert_eq!(category, Category::ResourceExhausted);
    assert!(text.contains("capacity") && text.contains("1000"), "{text}");
    assert_eq!(
        refused(ns.send("c", msg("x"), 100, huge, now)).0,
        Some(Limit::Expiry)
    );
    assert_eq!(
        refused(ns.group_add("g", "c", huge, now)).0,
        Some(Limit::GroupExpiry)
    );
    let rules = CapacityRules::compile(10, &[(Pattern::Glob("a*".into()), 5_000)]).unwrap();
    assert_eq!(
        refused(ns.group_send("g", msg("x"), &rules, MIN, now)).0,
        Some(Limit::Capacity)
    );
    // At the maxima, everything works; nothing was created by the refusals.
    assert_eq!(ns.stats().channels, 0);
    // The server's own "unbounded" capacity (a message handed over between nodes).
    ns.send("handed", msg("x"), usize::MAX, MIN, now).unwrap();
    ns.send("c", msg("x"), 1_000, Duration::from_secs(600), now)
        .unwrap();
    assert!(
        ns.group_add("g", "c", Duration::from_secs(86_400), now)
            .unwrap()
    );
    // The engine never panics on a deadline, whatever a caller passes.
    let unchecked: Layer<TestWaiter> = Layer::new(
        Limits {
            max_expiry: huge,
            max_group_expiry: huge,
            ..Limits::default()
        },
        4,
    );
    let ns = unchecked.namespace("b").unwrap();
    ns.send("c", msg("x"), 100, huge, now).unwrap();
    ns.group_add("g", "c", huge, now).unwrap();
    assert_eq!(ns.group_size("g", now).unwrap(), 1);
}

#[test]
fn queued_bytes_are_bounded_per_namespace_and_per_server() {
    let limits = Limits {
        max_queued_bytes_per_namespace: 10,
        max_queued_bytes: 15,
        ..Limits::default()
    };
    let l: Layer<TestWaiter> = Layer::new(limits, 4);
    let a = l.namespace("a").unwrap();
    let b = l.namespace("b").unwrap();
    let now = Instant::now();
    let five = || Bytes::from_static(b"12345");
    a.send("c1", five(), 100, MIN, now).unwrap();
    a.send("c2", five(), 100, MIN, now).unwrap();
    let full = a.send("c3", five(), 100, MIN, now).unwrap_err();
    assert_eq!(full.limit(), Some(Limit::QueuedBytesPerNamespace));
    b.send("c", five(), 100, MIN, now).unwrap();
    let full = b.send("c", five(), 100, MIN, now).unwrap_err();
    assert_eq!(full.limit(), Some(Limit::QueuedBytes));
    // A waiting receive takes a message past the limits: nothing is queued.
    let w = waiter();
    assert!(matches!(
        b.receive("w", 1, now, || w).unwrap(),
        Received::Waiting
    ));
    assert!(b.send("w", five(), 100, MIN, now).unwrap().is_some());
    // Every way out frees its bytes: a receive, a flush, expiry, a release.
    received(a.receive("c1", 1, now, waiter).unwrap());
    b.send("c", five(), 100, MIN, now).unwrap();
    a.flush();
    a.send("x", five(), 100, Duration::from_secs(1), now)
        .unwrap();
    let past = |r: Result<_, CoreError>| r.map(drop).unwrap_err().limit();
    assert_eq!(
        past(a.send("y", five(), 100, MIN, now)),
        Some(Limit::QueuedBytes)
    );
    a.sweep(now + Duration::from_secs(2));
    a.send("p.owner!1", five(), 100, MIN, now).unwrap();
    assert_eq!(
        past(a.send("y", five(), 100, MIN, now)),
        Some(Limit::QueuedBytes)
    );
    a.release_client("owner");
    a.send("y", five(), 100, MIN, now).unwrap();
    // A group send drops the copy past the limit, and says so.
    a.group_add("g", "m1", MIN, now).unwrap();
    a.group_add("g", "m2", MIN, now).unwrap();
    let sent = a
        .group_send(
            "g",
            Bytes::from_static(b"1"),
            &CapacityRules::uniform(100),
            MIN,
            now,
        )
        .unwrap();
    assert_eq!((sent.delivered, sent.dropped), (0, 2));
}
