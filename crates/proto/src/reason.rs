//! The `ErrorInfo` reasons of chanlayer's errors: UPPER_SNAKE_CASE, in the [`DOMAIN`] domain,
//! carried by a status's `google.rpc.ErrorInfo` detail or by a session's in-stream
//! `ErrorDetail`. Clients match on these, never on message text.
#![warn(missing_docs)]

/// The `ErrorInfo.domain` of every chanlayer error.
pub const DOMAIN: &str = "chanlayer.dev";

/// A channel name breaks Channels' rule.
pub const INVALID_CHANNEL_NAME: &str = "INVALID_CHANNEL_NAME";
/// A group name breaks Channels' rule.
pub const INVALID_GROUP_NAME: &str = "INVALID_GROUP_NAME";
/// A namespace is too long or has spaces or control characters.
pub const INVALID_NAMESPACE: &str = "INVALID_NAMESPACE";
/// A proposed client prefix breaks the rule.
pub const INVALID_CLIENT_PREFIX: &str = "INVALID_CLIENT_PREFIX";
/// A capacity rule's pattern does not compile.
pub const INVALID_CAPACITY_RULE: &str = "INVALID_CAPACITY_RULE";
/// A page size out of range.
pub const INVALID_PAGE_SIZE: &str = "INVALID_PAGE_SIZE";
/// A page token the server did not hand out.
pub const INVALID_PAGE_TOKEN: &str = "INVALID_PAGE_TOKEN";
/// The channel holds as many unexpired messages as its capacity.
pub const CHANNEL_FULL: &str = "CHANNEL_FULL";
/// The message is larger than the server accepts.
pub const MESSAGE_TOO_LARGE: &str = "MESSAGE_TOO_LARGE";
/// The namespace would exceed a configured limit (namespaces, channels, groups, members).
pub const LIMIT_EXCEEDED: &str = "LIMIT_EXCEEDED";
/// Another live session holds the client prefix.
pub const CLIENT_PREFIX_IN_USE: &str = "CLIENT_PREFIX_IN_USE";
/// The session has as many pending receives as the server allows.
pub const TOO_MANY_PENDING_RECEIVES: &str = "TOO_MANY_PENDING_RECEIVES";
/// A receive id already pending on the session.
pub const DUPLICATE_RECEIVE_ID: &str = "DUPLICATE_RECEIVE_ID";
/// The server has as many sessions as it allows.
pub const TOO_MANY_SESSIONS: &str = "TOO_MANY_SESSIONS";
/// The server is shutting down.
pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
/// An operation before the session's `open`.
pub const SESSION_NOT_OPEN: &str = "SESSION_NOT_OPEN";
/// A second `open` on one session.
pub const SESSION_ALREADY_OPEN: &str = "SESSION_ALREADY_OPEN";
/// A session operation the server does not know.
pub const UNKNOWN_OPERATION: &str = "UNKNOWN_OPERATION";
/// The server requires a token and the call carried none.
pub const TOKEN_MISSING: &str = "TOKEN_MISSING";
/// The call's token is not one the server accepts.
pub const TOKEN_INVALID: &str = "TOKEN_INVALID";
/// A request or Session frame larger than the server decodes (`RESOURCE_EXHAUSTED`, limit
/// `message_bytes`): split the frame's operations, or send smaller messages.
pub const FRAME_TOO_LARGE: &str = "FRAME_TOO_LARGE";
/// A Session frame that cannot be decoded.
pub const INVALID_FRAME: &str = "INVALID_FRAME";
/// A Session stream whose inbound side failed (the client reset it, or its connection broke).
pub const STREAM_BROKEN: &str = "STREAM_BROKEN";
/// The server failed while serving the call; a bug, reported in its log.
pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
