//! Every namespace of the server, created by the first call that stores something in it,
//! up to the namespace limit, and removed once it holds nothing and nobody uses it
//! ([`Layer::remove_idle`]).

use std::{
    collections::HashMap,
    sync::{Arc, atomic::AtomicUsize},
};

use foldhash::quality::RandomState;
use parking_lot::{Mutex, RwLock};

use crate::core::{
    CoreError, Limit, Limits, Waiter,
    names::validate_namespace,
    namespace::{Namespace, QueuedBytes, Shard},
    stats::Stats,
};

/// Every namespace of the server.
pub struct Layer<W> {
    namespaces: RwLock<HashMap<Box<str>, Arc<Namespace<W>>>>,
    /// The counters of the namespaces removed so far: [`Layer::stats`] keeps counting
    /// them, or a server's totals would fall when a namespace goes.
    retired: Mutex<Stats>,
    limits: Arc<Limits>,
    queued_bytes: Arc<AtomicUsize>,
    shard_count: usize,
    hasher: RandomState,
}

impl<W: Waiter> Layer<W> {
    /// An empty layer with `shard_count` shards per namespace (rounded up to a power of two).
    pub fn new(limits: Limits, shard_count: usize) -> Self {
        Self {
            namespaces: RwLock::new(HashMap::new()),
            retired: Mutex::default(),
            limits: Arc::new(limits),
            queued_bytes: Arc::default(),
            shard_count: shard_count.max(1).next_power_of_two(),
            hasher: RandomState::default(),
        }
    }

    /// The namespace called `name`, created on first use.
    pub fn namespace(&self, name: &str) -> Result<Arc<Namespace<W>>, CoreError> {
        if let Some(ns) = self.namespaces.read().get(name) {
            return Ok(Arc::clone(ns));
        }
        validate_namespace(name)?;
        let mut namespaces = self.namespaces.write();
        if let Some(ns) = namespaces.get(name) {
            return Ok(Arc::clone(ns));
        }
        if namespaces.len() >= self.limits.max_namespaces {
            return Err(CoreError::LimitExceeded {
                namespace: name.to_owned(),
                limit: Limit::Namespaces,
                what: "namespaces on the server".to_owned(),
                max: self.limits.max_namespaces,
            });
        }
        let ns = Arc::new(Namespace {
            name: name.into(),
            shards: (0..self.shard_count)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            hasher: self.hasher.clone(),
            limits: Arc::clone(&self.limits),
            channel_count: AtomicUsize::new(0),
            group_count: AtomicUsize::new(0),
            queued: QueuedBytes {
                namespace: AtomicUsize::new(0),
                server: Arc::clone(&self.queued_bytes),
            },
        });
        namespaces.insert(name.into(), Arc::clone(&ns));
        Ok(ns)
    }

    /// The namespace called `name` if it exists; never creates one.
    pub(crate) fn existing(&self, name: &str) -> Option<Arc<Namespace<W>>> {
        self.namespaces.read().get(name).cloned()
    }

    /// Refuses a group send that no namespace would take (for a call on a namespace that
    /// does not exist, which is answered without creating it).
    pub(crate) fn check_group_send(
        &self,
        payload: &bytes::Bytes,
        capacities: &crate::core::CapacityRules,
        expiry: std::time::Duration,
    ) -> Result<(), CoreError> {
        self.limits
            .check_message(payload.len(), capacities.max_capacity(), expiry)
    }

    /// How many namespaces exist.
    pub(crate) fn len(&self) -> usize {
        self.namespaces.read().len()
    }

    /// Removes the namespaces that hold nothing (no channel, so no queued message and no
    /// waiting receive, and no group), that nobody holds a reference to (no session's
    /// stream, no call in progress) and for which `in_use` is false (the names of the
    /// namespaces that still have sessions awaiting resume). Returns how many it removed.
    ///
    /// Every caller reaches a namespace through this map under its lock, so a namespace
    /// that only the map references, checked under the write lock, has nobody about to
    /// store in it: what is removed is truly unused.
    pub(crate) fn remove_idle(&self, in_use: impl Fn(&str) -> bool) -> usize {
        let idle = |ns: &Arc<Namespace<W>>| Arc::strong_count(ns) == 1 && ns.is_empty();
        // A cheap look first: most sweeps find nothing to remove, and take no write lock.
        if !self.namespaces.read().values().any(idle) {
            return 0;
        }
        let mut namespaces = self.namespaces.write();
        let mut retired = self.retired.lock();
        let before = namespaces.len();
        namespaces.retain(|name, ns| {
            let keep = !idle(ns) || in_use(name);
            if !keep {
                // Empty: only its counters are not zero.
                retired.add(&ns.stats());
            }
            keep
        });
        before - namespaces.len()
    }

    /// Every namespace that exists now.
    pub(crate) fn namespaces(&self) -> Vec<Arc<Namespace<W>>> {
        self.namespaces.read().values().cloned().collect()
    }

    /// Counters and gauges over every namespace, the removed ones' counters included.
    pub(crate) fn stats(&self) -> Stats {
        // Under the map's lock, a namespace is either in the map or retired, never both.
        let (namespaces, mut stats) = {
            let map = self.namespaces.read();
            let namespaces: Vec<_> = map.values().cloned().collect();
            (namespaces, self.retired.lock().clone())
        };
        for ns in namespaces {
            stats.add(&ns.stats());
        }
        stats
    }
}
