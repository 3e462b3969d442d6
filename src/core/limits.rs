//! The limits the server enforces, as numbers ([`Limits`]) and as names ([`Limit`]): a
//! refusal says which limit it hit, and the metric label and the `ErrorInfo` metadata are
//! that limit's name, never a reading of the message text.

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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            max_channels_per_namespace: 1_000_000,
            max_groups_per_namespace: 1_000_000,
            max_members_per_group: 100_000,
            max_namespaces: 1_000,
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
}

/// A limit by name: what a refusal hit, and the `limit` label of the metrics.
///
/// The engine enforces the first five; the hub enforces the per-session receives and the
/// number of sessions. They share one list so that every limit has one name everywhere.
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
        }
    }

    /// The limit called `name`, the inverse of [`Limit::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|limit| limit.name() == name)
    }

    /// Every limit.
    pub const ALL: [Self; 7] = [
        Self::MessageBytes,
        Self::PendingReceivesPerSession,
        Self::Sessions,
        Self::ChannelsPerNamespace,
        Self::GroupsPerNamespace,
        Self::MembersPerGroup,
        Self::Namespaces,
    ];
}

/// The key of an `ErrorInfo`'s metadata under which a refusal at a limit names it
/// ([`Limit::name`]).
pub const LIMIT_METADATA_KEY: &str = "limit";
