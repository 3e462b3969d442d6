//! Why a hub operation was refused: the engine's refusals and the hub's own (sessions,
//! pending receives, shutdown). Like [`CoreError`], each says its reason, its family and
//! the limit it hit, if any.

use crate::core::{Category, CoreError, Limit};

/// Why a hub operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HubError {
    /// The engine refused it.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Another live session of the namespace holds the proposed client prefix.
    #[error("client prefix {prefix:?} is held by another session of namespace {namespace:?}")]
    ClientPrefixInUse {
        /// The namespace.
        namespace: String,
        /// The prefix.
        prefix: String,
    },
    /// The session already has as many pending receives as allowed.
    #[error("the session already has {limit} pending receives, its limit")]
    TooManyPendingReceives {
        /// The limit.
        limit: usize,
    },
    /// A receive id was reused while its receive is still pending.
    #[error("receive id {receive_id} is already pending on this session")]
    DuplicateReceiveId {
        /// The id.
        receive_id: u64,
    },
    /// The server holds as many sessions as allowed.
    #[error("the server already holds {limit} sessions, its limit")]
    TooManySessions {
        /// The limit.
        limit: usize,
    },
    /// The namespace holds as many sessions as allowed.
    #[error("namespace {namespace:?} already holds {limit} sessions, its limit")]
    TooManySessionsInNamespace {
        /// The namespace.
        namespace: String,
        /// The limit.
        limit: usize,
    },
    /// The server is shutting down and accepts no new sessions.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The operation needs the other nodes of the cluster, and they cannot be reached.
    #[error("the cluster cannot be reached: {detail}")]
    ClusterUnavailable {
        /// What failed.
        detail: String,
    },
    /// The node holding a process-specific channel's client prefix did not answer in time;
    /// what became of the operation is unknown.
    #[error(
        "the node holding client prefix {client_prefix:?} did not answer within {timeout_ms} ms"
    )]
    OwnerUnreachable {
        /// The prefix.
        client_prefix: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// A receive named a process-specific channel whose client prefix another session
    /// holds (or none does).
    #[error(
        "channel {channel:?} belongs to a client prefix this session does not hold; only the \
         session holding a client prefix receives on its channels"
    )]
    ChannelNotOwned {
        /// The channel.
        channel: String,
    },
    /// Some nodes of the cluster did not confirm a flush in time.
    #[error("{missing} node(s) of the cluster did not confirm the flush in time; flush again")]
    FlushIncomplete {
        /// How many nodes did not answer.
        missing: usize,
    },
}

impl HubError {
    /// The `ErrorInfo` reason clients match on (UPPER_SNAKE_CASE).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Core(core) => core.reason(),
            Self::ClientPrefixInUse { .. } => "CLIENT_PREFIX_IN_USE",
            Self::TooManyPendingReceives { .. } => "TOO_MANY_PENDING_RECEIVES",
            Self::DuplicateReceiveId { .. } => "DUPLICATE_RECEIVE_ID",
            Self::TooManySessions { .. } | Self::TooManySessionsInNamespace { .. } => {
                "TOO_MANY_SESSIONS"
            }
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::ClusterUnavailable { .. } => "CLUSTER_UNAVAILABLE",
            Self::OwnerUnreachable { .. } => "OWNER_UNREACHABLE",
            Self::ChannelNotOwned { .. } => "CHANNEL_NOT_OWNED",
            Self::FlushIncomplete { .. } => "FLUSH_INCOMPLETE",
        }
    }

    /// The error's family.
    pub(crate) fn category(&self) -> Category {
        match self {
            Self::Core(core) => core.category(),
            Self::ClientPrefixInUse { .. } | Self::DuplicateReceiveId { .. } => {
                Category::AlreadyExists
            }
            Self::TooManyPendingReceives { .. }
            | Self::TooManySessions { .. }
            | Self::TooManySessionsInNamespace { .. } => Category::ResourceExhausted,
            Self::ShuttingDown
            | Self::ClusterUnavailable { .. }
            | Self::OwnerUnreachable { .. }
            | Self::FlushIncomplete { .. } => Category::Unavailable,
            Self::ChannelNotOwned { .. } => Category::FailedPrecondition,
        }
    }

    /// The limit that refused the operation, when a limit did.
    pub(crate) fn limit(&self) -> Option<Limit> {
        match self {
            Self::Core(core) => core.limit(),
            Self::TooManyPendingReceives { .. } => Some(Limit::PendingReceivesPerSession),
            Self::TooManySessions { .. } => Some(Limit::Sessions),
            Self::TooManySessionsInNamespace { .. } => Some(Limit::SessionsPerNamespace),
            Self::ClientPrefixInUse { .. }
            | Self::DuplicateReceiveId { .. }
            | Self::ShuttingDown
            | Self::ClusterUnavailable { .. }
            | Self::OwnerUnreachable { .. }
            | Self::ChannelNotOwned { .. }
            | Self::FlushIncomplete { .. } => None,
        }
    }
}
