//! The limits the server enforces, as numbers ([`Limits`]) and as names ([`Limit`]): a
//! refusal says which limit it hit, and the metric label and the `ErrorInfo` metadata are
//! that limit's name, never a reading of the message text.

use std::time::{Duration, Instant};

use crate::core::CoreError;

/// The limits every namespace enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// The most channels (with queued messages or waiting receives) in one namespace.
    pub max_channels_per_namespace: usize,
    /// The most groups in one namespace.
    pub max_groups_per_namespace: usize,
    /// The most members in one group.
    pub max_members_per_group: usize,
    /// The most namespaces.
    pub max_namespaces: usize,
    /// The largest capacity a send or a group send may give a channel.
    pub max_capacity: usize,
    /// The longest message expiry a send or a group send may ask for.
    pub max_expiry: Duration,
    /// The longest group expiry a group_add may ask for.
    pub max_group_expiry: Duration,
    /// The most payload bytes queued in one namespace.
    pub max_queued_bytes_per_namespace: usize,
    /// The most payload bytes queued in the whole server.
    pub max_queued_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            max_channels_per_namespace: 1_000_000,
            max_groups_per_namespace: 1_000_000,
            max_members_per_group: 100_000,
            max_namespaces: 1_000,
            max_capacity: 1_000_000,
            max_expiry: Duration::from_secs(86_400),
            max_group_expiry: Duration::from_secs(30 * 86_400),
            max_queued_bytes_per_namespace: 256 * 1024 * 1024,
            max_queued_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Refuses a message larger than [`Limits::max_message_bytes`].
    pub(crate) fn check_message_size(&self, size: usize) -> Result<(), CoreError> {
        if size > self.max_message_bytes {
            return Err(CoreError::MessageTooLarge {
                size,
                limit: self.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Refuses a message (of a send or a group send) that breaks a limit: its size, its
    /// expiry, or the largest capacity it gives a channel. A capacity of `usize::MAX` is
    /// the server's own "unbounded" (a message it accepted already and hands to the node
    /// that now holds its channel), which no client can ask for: requests carry 32-bit
    /// capacities.
    pub(crate) fn check_message(
        &self,
        size: usize,
        capacity: usize,
        expiry: Duration,
    ) -> Result<(), CoreError> {
        self.check_message_size(size)?;
        if capacity > self.max_capacity && capacity != usize::MAX {
            return Err(above(
                Limit::Capacity,
                format!("capacity {capacity}"),
                self.max_capacity,
            ));
        }
        if expiry > self.max_expiry {
            return Err(above(
                Limit::Expiry,
                format!("expiry_ms {}", expiry.as_millis()),
                self.max_expiry.as_millis() as usize,
            ));
        }
        Ok(())
    }

    /// Refuses a group expiry above [`Limits::max_group_expiry`].
    pub(crate) fn check_group_expiry(&self, group_expiry: Duration) -> Result<(), CoreError> {
        if group_expiry > self.max_group_expiry {
            return Err(above(
                Limit::GroupExpiry,
                format!("group_expiry_seconds {}", group_expiry.as_secs()),
                self.max_group_expiry.as_secs() as usize,
            ));
        }
        Ok(())
    }
}

/// A request above a server-wide maximum.
fn above(limit: Limit, what: String, max: usize) -> CoreError {
    CoreError::LimitExceeded {
        namespace: String::new(),
        limit,
        what,
        max,
    }
}

/// `now + duration`, or a century from now for a duration beyond what an `Instant` can
/// hold: a deadline computed from client input never panics.
pub(crate) fn deadline(now: Instant, duration: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    now.checked_add(duration.min(CENTURY))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// A limit by name: what a refusal hit, and the `limit` label of the metrics.
///
/// The engine enforces those of [`Limits`]; the hub enforces the per-session receives and
/// the number of sessions; the listener the number of connections. They share one list so that every limit has one name everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// [`Limits::max_message_bytes`].
    MessageBytes,
    /// [`Limits::max_channels_per_namespace`].
    ChannelsPerNamespace,
    /// [`Limits::max_groups_per_namespace`].
    GroupsPerNamespace,
    /// [`Limits::max_members_per_group`].
    MembersPerGroup,
    /// [`Limits::max_namespaces`].
    Namespaces,
    /// The most receives one session may have pending (the hub's).
    PendingReceivesPerSession,
    /// The most sessions the server holds (the hub's).
    Sessions,
    /// [`Limits::max_capacity`].
    Capacity,
    /// [`Limits::max_expiry`], in milliseconds.
    Expiry,
    /// [`Limits::max_group_expiry`], in seconds.
    GroupExpiry,
    /// [`Limits::max_queued_bytes_per_namespace`].
    QueuedBytesPerNamespace,
    /// [`Limits::max_queued_bytes`].
    QueuedBytes,
    /// The most sessions one namespace holds (the hub's).
    SessionsPerNamespace,
    /// The most connections the gRPC listener keeps open (the server's).
    Connections,
}

impl Limit {
    /// The limit's name: the `limit` label of `chanlayer_limit` and
    /// `chanlayer_limit_hits_total`, and the `limit` entry of an `ErrorInfo`'s metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::MessageBytes => "message_bytes",
            Self::ChannelsPerNamespace => "channels_per_namespace",
            Self::GroupsPerNamespace => "groups_per_namespace",
            Self::MembersPerGroup => "members_per_group",
            Self::Namespaces => "namespaces",
            Self::PendingReceivesPerSession => "pending_receives_per_session",
            Self::Sessions => "sessions",
            Self::Capacity => "capacity",
            Self::Expiry => "expiry_ms",
            Self::GroupExpiry => "group_expiry_seconds",
            Self::QueuedBytesPerNamespace => "queued_bytes_per_namespace",
            Self::QueuedBytes => "queued_bytes",
            Self::SessionsPerNamespace => "sessions_per_namespace",
            Self::Connections => "connections",
        }
    }

    /// True for a maximum on what one request asks for (a capacity, an expiry), as
    /// opposed to a count the server keeps.
    pub fn is_maximum(self) -> bool {
        matches!(self, Self::Capacity | Self::Expiry | Self::GroupExpiry)
    }

    /// The limit called `name`, the inverse of [`Limit::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|limit| limit.name() == name)
    }

    /// Every limit.
    pub const ALL: [Self; 14] = [
        Self::MessageBytes,
        Self::PendingReceivesPerSession,
        Self::Sessions,
        Self::ChannelsPerNamespace,
        Self::GroupsPerNamespace,
        Self::MembersPerGroup,
        Self::Namespaces,
        Self::Capacity,
        Self::Expiry,
        Self::GroupExpiry,
        Self::QueuedBytesPerNamespace,
        Self::QueuedBytes,
        Self::SessionsPerNamespace,
        Self::Connections,
    ];
}

/// The key of an `ErrorInfo`'s metadata under which a refusal at a limit names it
/// ([`Limit::name`]).
pub const LIMIT_METADATA_KEY: &str = "limit";
