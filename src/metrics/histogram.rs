//! A histogram with fixed buckets kept in atomics, for what is recorded once per message
//! (the delivery latency) or once per frame (the Session frame handling time).
//!
//! The exporter's histograms are not used for those on purpose: `metrics-exporter-prometheus`
//! appends every observation to a lock-free list of blocks (`metrics_util::AtomicBucket`)
//! and folds them into buckets only when it renders or runs its upkeep, so at hundreds of
//! thousands of deliveries a second it allocates and holds every sample in between. This
//! one records in three relaxed additions with no allocation, and is rendered beside the
//! recorder's output. The other histograms (per call, per group send) use the exporter.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// A histogram with fixed buckets kept in atomics: recording is a search over the
/// bounds and three relaxed additions, cheap enough for once per delivered message. It is
/// rendered beside the recorder's output.
pub(super) struct AtomicHistogram {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    /// One count per bound (not cumulative) and one for +Inf.
    buckets: Box<[AtomicU64]>,
    /// The sum, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    pub(super) fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Self {
        Self {
            name,
            help,
            bounds,
            buckets: (0..=bounds.len()).map(|_| Default::default()).collect(),
            sum_nanos: Default::default(),
        }
    }

    /// Records a duration.
    pub(super) fn record(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let index = self.bounds.partition_point(|&b| b < seconds);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            value.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Appends it to a Prometheus text exposition.
    pub(super) fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let name = self.name;
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(self.buckets.iter()) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_histograms_render_cumulative_buckets() {
        let h = AtomicHistogram::new("x_seconds", "help", &[0.001, 0.01]);
        h.record(Duration::from_micros(500));
        h.record(Duration::from_millis(1));
        h.record(Duration::from_millis(5));
        h.record(Duration::from_secs(1));
        let mut text = String::new();
        h.render(&mut text);
        assert!(
            text.contains("x_seconds_bucket{le=\"0.001\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("x_seconds_bucket{le=\"0.01\"} 3\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("x_seconds_count 4\n"), "{text}");
        assert!(text.contains("x_seconds_sum 1.0065\n"), "{text}");
    }
}
