//! Errors of the core engine. Each says its `ErrorInfo` reason ([`CoreError::reason`]),
//! the family of status it belongs to ([`Category`]) and, for a refusal at a limit, which
//! limit ([`CoreError::limit`]): the gRPC adapter turns those into a status in one place
//! (`grpc::status`), and the metrics label refusals with them, never with message text.

use crate::core::{
    limits::Limit,
    names::{CHANNEL_RULE, GROUP_RULE, NAMESPACE_RULE},
};

/// Why a channel-layer operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The channel name breaks Channels' rule.
    #[error("invalid channel name {name:?}: {}", CHANNEL_RULE)]
    InvalidChannelName {
        /// The offending name (shortened when very long).
        name: String,
    },
    /// The group name breaks Channels' rule.
    #[error("invalid group name {name:?}: {}", GROUP_RULE)]
    InvalidGroupName {
        /// The offending name (shortened when very long).
        name: String,
    },
    /// The namespace is too long or has spaces or control characters.
    #[error("invalid namespace {name:?}: {}", NAMESPACE_RULE)]
    InvalidNamespace {
        /// The offending namespace (shortened when very long).
        name: String,
    },
    /// A proposed client prefix breaks the rule.
    #[error(
        "invalid client prefix {prefix:?}: a client prefix has 1 to 64 ASCII letters, digits, hyphens or underscores"
    )]
    InvalidClientPrefix {
        /// The offending prefix.
        prefix: String,
    },
    /// The channel already holds `capacity` unexpired messages.
    #[error("channel {channel:?} is full: it holds {capacity} unexpired messages, its capacity")]
    ChannelFull {
        /// The full channel.
        channel: String,
        /// Its capacity.
        capacity: usize,
    },
    /// The message is larger than the server accepts.
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    MessageTooLarge {
        /// The message size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A capacity rule's pattern does not compile, or the rules as a whole are malformed
    /// (too many of them, one with no pattern): then `pattern` is empty.
    #[error("{}", capacity_rule_message(pattern, detail))]
    InvalidCapacityRule {
        /// The pattern, or empty when the error is not about one pattern.
        pattern: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The namespace would exceed a configured limit, or a request asks for more than a
    /// server-wide maximum allows (a capacity, an expiry: see [`Limit::is_maximum`]).
    #[error("{}", limit_message(namespace, *limit, what, *max))]
    LimitExceeded {
        /// The namespace.
        namespace: String,
        /// Which limit.
        limit: Limit,
        /// What was counted, for the message: "channels", "groups" or "members in group
        /// \"g\""; for a maximum, the request's field and value ("capacity 5000000").
        what: String,
        /// The limit's value.
        max: usize,
    },
}

fn capacity_rule_message(pattern: &str, detail: &str) -> String {
    if pattern.is_empty() {
        format!("invalid channel_capacity: {detail}")
    } else {
        format!("invalid channel_capacity pattern {pattern:?}: {detail}")
    }
}

fn limit_message(namespace: &str, limit: Limit, what: &str, max: usize) -> String {
    if limit.is_maximum() {
        format!("{what} is above this server's maximum of {max}")
    } else {
        format!("namespace {namespace:?} has reached its limit of {max} {what}")
    }
}

/// The family of an error, named as the canonical status codes are (`google.rpc.Code`):
/// the gRPC adapter maps each to its status code, and the metrics use the name as the
/// `code` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// The request is malformed.
    InvalidArgument,
    /// A capacity or a limit refused it.
    ResourceExhausted,
    /// What it would create exists already.
    AlreadyExists,
    /// The server cannot take it now.
    Unavailable,
    /// The operation is not allowed in the state things are in.
    FailedPrecondition,
}

impl Category {
    /// The canonical name of the code (`INVALID_ARGUMENT`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::Unavailable => "UNAVAILABLE",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
        }
    }
}

impl CoreError {
    /// The `ErrorInfo` reason clients match on (UPPER_SNAKE_CASE).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidChannelName { .. } => "INVALID_CHANNEL_NAME",
            Self::InvalidGroupName { .. } => "INVALID_GROUP_NAME",
            Self::InvalidNamespace { .. } => "INVALID_NAMESPACE",
            Self::InvalidClientPrefix { .. } => "INVALID_CLIENT_PREFIX",
            Self::ChannelFull { .. } => "CHANNEL_FULL",
            Self::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            Self::InvalidCapacityRule { .. } => "INVALID_CAPACITY_RULE",
            Self::LimitExceeded { .. } => "LIMIT_EXCEEDED",
        }
    }

    /// The error's family.
    pub fn category(&self) -> Category {
        match self {
            Self::InvalidChannelName { .. }
            | Self::InvalidGroupName { .. }
            | Self::InvalidNamespace { .. }
            | Self::InvalidClientPrefix { .. }
            | Self::InvalidCapacityRule { .. } => Category::InvalidArgument,
            Self::ChannelFull { .. }
            | Self::MessageTooLarge { .. }
            | Self::LimitExceeded { .. } => Category::ResourceExhausted,
        }
    }

    /// The limit that refused the operation, when a limit did (a full channel is a
    /// capacity, not a limit).
    pub fn limit(&self) -> Option<Limit> {
        match self {
            Self::MessageTooLarge { .. } => Some(Limit::MessageBytes),
            Self::LimitExceeded { limit, .. } => Some(*limit),
            _ => None,
        }
    }
}
