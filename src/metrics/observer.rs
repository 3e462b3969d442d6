//! The hub's observer: records what the hub does not count itself, through handles
//! registered once.

use std::time::Duration;

use ::metrics::{Counter, Histogram, counter, histogram};

use crate::{
    core::Category,
    hub::{HubError, Observer, OperationCounts},
    metrics::{histogram::AtomicHistogram, names::*, recorder::LATENCY_BUCKETS},
};

/// The hub's observer: records what the hub does not count itself, through handles
/// registered once.
pub(crate) struct HubMetrics {
    delivery_latency: AtomicHistogram,
    frame_latency: AtomicHistogram,
    group_sends: Counter,
    fanout: Histogram,
    /// One counter per operation kind, in the order of [`OPERATION_KINDS`].
    operations: [Counter; 7],
}

/// The `op` label values of `chanlayer_session_operations_total`.
const OPERATION_KINDS: [&str; 7] = [
    "receive",
    "cancel",
    "send",
    "group_add",
    "group_discard",
    "group_send",
    "close",
];

impl HubMetrics {
    /// Registers the handles with the installed recorder.
    pub(crate) fn new() -> Self {
        let help = |name: &str| {
            METRICS
                .iter()
                .find(|m| m.name == name)
                .map_or("", |m| m.help)
        };
        Self {
            delivery_latency: AtomicHistogram::new(
                DELIVERY_LATENCY,
                help(DELIVERY_LATENCY),
                LATENCY_BUCKETS,
            ),
            frame_latency: AtomicHistogram::new(
                SESSION_FRAME_LATENCY,
                help(SESSION_FRAME_LATENCY),
                LATENCY_BUCKETS,
            ),
            group_sends: counter!(GROUP_SENDS),
            fanout: histogram!(GROUP_SEND_FANOUT),
            operations: OPERATION_KINDS.map(|op| counter!(SESSION_OPERATIONS, "op" => op)),
        }
    }

    /// Appends what the recorder does not hold to a text exposition.
    pub(crate) fn render(&self, out: &mut String) {
        self.delivery_latency.render(out);
        self.frame_latency.render(out);
    }
}

impl Default for HubMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for HubMetrics {
    fn delivered(&self, latency: Duration) {
        self.delivery_latency.record(latency);
    }

    fn group_sent(&self, delivered: usize, dropped: usize) {
        self.group_sends.increment(1);
        self.fanout.record((delivered + dropped) as f64);
    }

    fn frame_handled(&self, operations: &OperationCounts, elapsed: Duration) {
        self.frame_latency.record(elapsed);
        let counts = [
            operations.receive,
            operations.cancel,
            operations.send,
            operations.group_add,
            operations.group_discard,
            operations.group_send,
            operations.close,
        ];
        for (counter, count) in self.operations.iter().zip(counts) {
            if count > 0 {
                counter.increment(u64::from(count));
            }
        }
    }

    fn refused(&self, error: &HubError) {
        let code = error.category();
        counter!(SESSION_ERRORS, "code" => code.name(), "reason" => error.reason()).increment(1);
        if code == Category::ResourceExhausted
            && let Some(limit) = error.limit()
        {
            counter!(LIMIT_HITS, "limit" => limit.name()).increment(1);
        }
    }
}
