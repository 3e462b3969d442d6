//! One group: its members with their expiry, and the fan-out list `group_send` walks
//! (members sorted by shard, rebuilt only after the membership changed or a member expired).

use std::{sync::Arc, time::Instant};

use crate::core::namespace::Map;

pub(super) struct Member {
    pub(super) expires_at: Instant,
    pub(super) shard: usize,
}

/// A group's members, with the fan-out list that group_send walks.
#[derive(Default)]
pub(super) struct Group {
    pub(super) members: Map<Arc<str>, Member>,
    /// The members sorted by shard, built by the first group_send after a change of
    /// membership and shared by the sends that follow, so that a send to a stable group
    /// neither collects, sorts nor reference-counts its members.
    pub(super) fanout: Option<Arc<Fanout>>,
}

/// A snapshot of a group's members for group_send.
pub(super) struct Fanout {
    /// (shard, channel) for every member, sorted by shard.
    pub(super) targets: Box<[(usize, Arc<str>)]>,
    /// The earliest membership expiry in the snapshot: from then on it must be rebuilt.
    /// A refresh by group_add only moves expiries later, so it does not invalidate it.
    pub(super) valid_until: Instant,
}

impl Group {
    /// Adds a member; the fan-out list is rebuilt on the next send.
    pub(super) fn insert(&mut self, channel: &str, member: Member) {
        self.members.insert(channel.into(), member);
        self.fanout = None;
    }

    /// Removes a member. Returns true when it was one.
    pub(super) fn remove(&mut self, channel: &str) -> bool {
        let removed = self.members.remove(channel).is_some();
        if removed {
            self.fanout = None;
        }
        removed
    }

    /// Keeps the members `keep` accepts. Returns how many were removed.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&str, &Member) -> bool) -> u64 {
        let before = self.members.len();
        self.members.retain(|name, m| keep(name, m));
        let removed = (before - self.members.len()) as u64;
        if removed > 0 {
            self.fanout = None;
        }
        removed
    }

    /// Removes the members expired at `now`. Returns how many.
    pub(super) fn prune(&mut self, now: Instant) -> u64 {
        match &self.fanout {
            Some(f) if f.valid_until > now => 0,
            _ => self.retain(|_, m| m.expires_at > now),
        }
    }

    /// The fan-out list; [`Group::prune`] comes first, so that it holds no expired member.
    pub(super) fn fanout(&mut self) -> Arc<Fanout> {
        if let Some(f) = &self.fanout {
            return Arc::clone(f);
        }
        let mut targets: Vec<(usize, Arc<str>)> = self
            .members
            .iter()
            .map(|(name, m)| (m.shard, Arc::clone(name)))
            .collect();
        targets.sort_unstable_by_key(|(shard, _)| *shard);
        let valid_until = self.members.values().map(|m| m.expires_at).min();
        let fanout = Arc::new(Fanout {
            targets: targets.into(),
            // An empty group is removed, so this default is never relied on.
            valid_until: valid_until.unwrap_or_else(Instant::now),
        });
        self.fanout = Some(Arc::clone(&fanout));
        fanout
    }
}
