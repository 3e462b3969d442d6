//! Errors of the core engine. The gRPC adapter maps each to a status code and an
//! `ErrorInfo` reason in one place (`grpc::status`).

use crate::core::names::{CHANNEL_RULE, GROUP_RULE, NAMESPACE_RULE};

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
    /// A capacity rule's pattern does not compile.
    #[error("invalid channel_capacity pattern {pattern:?}: {detail}")]
    InvalidCapacityRule {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The namespace would exceed a configured limit.
    #[error("namespace {namespace:?} has reached its limit of {limit} {what}")]
    LimitExceeded {
        /// The namespace.
        namespace: String,
        /// What was counted: "channels", "groups" or "members in group \"g\"".
        what: String,
        /// The limit.
        limit: usize,
    },
}
