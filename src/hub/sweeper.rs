//! The sweeper: removes expired messages and memberships, one shard at a time, releases
//! sessions whose lease ran out, and removes the namespaces left with nothing in them.

use std::{collections::HashSet, sync::Arc};

use crate::{
    core,
    hub::{Hub, now},
};

impl Hub {
    /// Sweeps expired messages and memberships, one shard at a time, yielding between
    /// shards so that a large sweep never stalls the runtime.
    pub(crate) async fn sweep(&self) -> core::SweepReport {
        let mut report = core::SweepReport::default();
        for ns in self.layer.namespaces() {
            for shard in 0..ns.shard_count() {
                report.add(&ns.sweep_shard(shard, now()));
                tokio::task::yield_now().await;
            }
        }
        report
    }

    /// Runs the sweeper and the lease expiry until shutdown.
    pub(crate) async fn run_sweeper(self: Arc<Self>) {
        let mut shutdown = self.shutting_down.subscribe();
        let mut tick = tokio::time::interval(self.config.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|down| *down) => return,
            }
            let report = self.sweep().await;
            if report != core::SweepReport::default() {
                tracing::trace!(?report, "swept");
            }
            self.expire_leases();
            let removed = self.remove_idle_namespaces();
            if removed > 0 {
                tracing::debug!(removed, "idle namespaces removed");
            }
        }
    }

    /// Removes the namespaces that hold nothing and have no session, attached or awaiting
    /// resume: a namespace costs memory and a place under the namespace limit only while
    /// something uses it.
    pub(crate) fn remove_idle_namespaces(&self) -> usize {
        let with_sessions: HashSet<Arc<str>> = self
            .sessions
            .lock()
            .by_key
            .keys()
            .map(|(namespace, _)| Arc::clone(namespace))
            .collect();
        self.layer.remove_idle(|name| with_sessions.contains(name))
    }
}
