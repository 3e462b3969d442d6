//! Flush and the questions about a namespace (group size, members, a channel's state): on
//! this node, and in a cluster on every node, merged here. None of them creates a
//! namespace: one that does not exist answers as an empty one.

use super::*;
use crate::core::names;

impl Hub {
    /// Takes out what this node holds for `client_prefix`, which another node now holds
    /// (see [`core::Taken`]); nothing when the namespace does not exist here.
    pub(crate) fn take_client(&self, namespace: &str, client_prefix: &str) -> core::Taken {
        match self.layer.existing(namespace) {
            Some(ns) => ns.take_client(client_prefix, now()),
            None => core::Taken::default(),
        }
    }

    /// Counters and gauges summed over every node of a cluster that answered in time
    /// (the uptime is this node's), with how many nodes that is and how many did not
    /// answer.
    pub(crate) async fn cluster_stats(&self) -> Result<(HubStats, usize, usize), HubError> {
        let mut total = self.stats();
        let Some(backplane) = &self.backplane else {
            return Ok((total, 1, 0));
        };
        backplane.check()?;
        let others = backplane.server_stats().await?;
        for s in &others.answers {
            total.add(s);
        }
        Ok((total, 1 + others.answers.len(), others.missing))
    }

    /// The namespace called `name` if it exists; `None` for a valid name that does not
    /// exist (an empty namespace, as far as a question is concerned), never creating it.
    fn existing_namespace(
        &self,
        name: &str,
    ) -> Result<Option<Arc<Namespace<HubWaiter>>>, HubError> {
        match self.layer.existing(name) {
            Some(ns) => Ok(Some(ns)),
            None => {
                names::validate_namespace(name)?;
                Ok(None)
            }
        }
    }

    /// True when the namespace exists on this node.
    pub(crate) fn has_namespace(&self, namespace: &str) -> bool {
        self.layer.existing(namespace).is_some()
    }

    /// Clears a namespace, on every node of a cluster.
    pub(crate) async fn flush(&self, namespace: &str) -> Result<core::FlushReport, HubError> {
        let Some(backplane) = &self.backplane else {
            return self.flush_here(namespace);
        };
        backplane.check()?;
        let mut report = self.flush_here(namespace)?;
        let others = backplane.flush(namespace).await?;
        for r in others.answers {
            report.dropped_messages += r.dropped_messages;
            report.removed_groups += r.removed_groups;
        }
        if others.missing > 0 {
            return Err(HubError::FlushIncomplete {
                missing: others.missing,
            });
        }
        Ok(report)
    }

    /// Clears a namespace on this node.
    pub(crate) fn flush_here(&self, namespace: &str) -> Result<core::FlushReport, HubError> {
        match self.existing_namespace(namespace)? {
            Some(ns) => Ok(ns.flush()),
            None => Ok(core::FlushReport::default()),
        }
    }

    /// The state of a channel.
    pub(crate) fn channel_info(
        &self,
        namespace: &str,
        channel: &str,
    ) -> Result<core::ChannelInfo, HubError> {
        match self.existing_namespace(namespace)? {
            Some(ns) => Ok(ns.channel_info(channel, now())?),
            None => {
                names::validate_channel(channel)?;
                Ok(core::ChannelInfo::default())
            }
        }
    }

    /// How many members a group has, on every node of a cluster, and how many nodes did
    /// not answer in time.
    pub(crate) async fn group_size(
        &self,
        namespace: &str,
        group: &str,
    ) -> Result<(usize, usize), HubError> {
        let Some(backplane) = &self.backplane else {
            return Ok((self.group_size_here(namespace, group)?, 0));
        };
        backplane.check()?;
        let here = self.group_size_here(namespace, group)?;
        let others = backplane.group_sizes(namespace, group).await?;
        Ok((here + others.answers.iter().sum::<usize>(), others.missing))
    }

    /// How many members a group has on this node.
    pub(crate) fn group_size_here(&self, namespace: &str, group: &str) -> Result<usize, HubError> {
        match self.existing_namespace(namespace)? {
            Some(ns) => Ok(ns.group_size(group, now())?),
            None => {
                names::validate_group(group)?;
                Ok(0)
            }
        }
    }

    /// One page of a group's members, from every node of a cluster, and how many nodes
    /// did not answer in time.
    pub(crate) async fn group_members(
        &self,
        namespace: &str,
        group: &str,
        after: &str,
        limit: usize,
    ) -> Result<(core::MembersPage, usize), HubError> {
        let here = self.group_members_here(namespace, group, after, limit)?;
        let Some(backplane) = &self.backplane else {
            return Ok((here, 0));
        };
        backplane.check()?;
        let others = backplane
            .group_members(namespace, group, after, limit)
            .await?;
        let mut total = here.total;
        let mut more = here.more;
        let mut members = here.members;
        for page in others.answers {
            total += page.total;
            more |= page.more;
            members.extend(page.members);
        }
        members.sort_by(|a, b| a.0.cmp(&b.0));
        members.dedup_by(|a, b| a.0 == b.0);
        if members.len() > limit {
            members.truncate(limit);
            more = true;
        }
        Ok((
            core::MembersPage {
                members,
                total,
                more,
            },
            others.missing,
        ))
    }

    /// One page of a group's members on this node.
    pub(crate) fn group_members_here(
        &self,
        namespace: &str,
        group: &str,
        after: &str,
        limit: usize,
    ) -> Result<core::MembersPage, HubError> {
        match self.existing_namespace(namespace)? {
            Some(ns) => Ok(ns.group_members(group, after, limit, now())?),
            None => {
                names::validate_group(group)?;
                Ok(core::MembersPage::default())
            }
        }
    }
}
