//! What nodes say to each other over NATS: protobuf messages declared here with
//! `prost`'s derive (they never leave the cluster, so they have no `.proto` of their own
//! in the public API). Every message starts with a version; a node drops, and counts, a
//! message of a version it does not know.

use std::time::Duration;

use bytes::Bytes;

use crate::{
    core::{CoreError, Limit, Pattern},
    hub::{HubError, HubStats, OpOutcome},
};

/// The version of the messages below.
pub(crate) const VERSION: u32 = 1;

/// A request to the node holding a session, or a group send for every node.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Envelope {
    /// [`VERSION`].
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The namespace of the operation.
    #[prost(string, tag = "2")]
    pub namespace: String,
    /// The node that sent it.
    #[prost(string, tag = "3")]
    pub origin: String,
    /// The operation.
    #[prost(oneof = "Op", tags = "10, 11, 12, 13, 14, 15, 16")]
    pub op: Option<Op>,
}

/// An operation carried by an [`Envelope`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum Op {
    /// A send to a channel of the receiving node.
    #[prost(message, tag = "10")]
    Send(SendOp),
    /// A group_add of a channel of the receiving node.
    #[prost(message, tag = "11")]
    GroupAdd(MembershipOp),
    /// A group_discard of a channel of the receiving node.
    #[prost(message, tag = "12")]
    GroupDiscard(MembershipOp),
    /// A group send, for the receiving node's members.
    #[prost(message, tag = "13")]
    GroupSend(GroupSendOp),
    /// Whether the receiving node holds a client prefix (it answers only if it does).
    #[prost(message, tag = "14")]
    Probe(ProbeOp),
    /// The sending node now holds a client prefix: what others kept for it goes there.
    #[prost(message, tag = "15")]
    Claimed(ClaimedOp),
    /// Several operations for one client prefix, applied in order and answered with a
    /// [`BatchReply`].
    #[prost(message, tag = "16")]
    Batch(BatchOp),
}

/// Operations for one client prefix that left the sending node back to back.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BatchOp {
    /// Each one an encoded [`Envelope`].
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub envelopes: Vec<Bytes>,
}

/// The answers to a [`BatchOp`], in its order.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BatchReply {
    /// Each one an encoded [`Reply`].
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub replies: Vec<Bytes>,
}

/// A client prefix claimed by a new session.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ClaimedOp {
    /// The prefix.
    #[prost(string, tag = "1")]
    pub client_prefix: String,
}

/// A send.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SendOp {
    /// The channel.
    #[prost(string, tag = "1")]
    pub channel: String,
    /// The message.
    #[prost(bytes = "bytes", tag = "2")]
    pub payload: Bytes,
    /// The channel's capacity.
    #[prost(uint64, tag = "3")]
    pub capacity: u64,
    /// How long the message lives, from its arrival at the owner.
    #[prost(uint64, tag = "4")]
    pub expiry_ms: u64,
}

/// A group_add or group_discard.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct MembershipOp {
    /// The group.
    #[prost(string, tag = "1")]
    pub group: String,
    /// The member channel.
    #[prost(string, tag = "2")]
    pub channel: String,
    /// How long the membership lasts (group_add only).
    #[prost(uint64, tag = "3")]
    pub group_expiry_ms: u64,
}

/// A group send.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct GroupSendOp {
    /// The group.
    #[prost(string, tag = "1")]
    pub group: String,
    /// The message.
    #[prost(bytes = "bytes", tag = "2")]
    pub payload: Bytes,
    /// How long the message lives.
    #[prost(uint64, tag = "3")]
    pub expiry_ms: u64,
    /// The capacity of members no rule names.
    #[prost(uint64, tag = "4")]
    pub default_capacity: u64,
    /// `channel_capacity` rules, in order.
    #[prost(message, repeated, tag = "5")]
    pub rules: Vec<CapacityRule>,
    /// The group send's id in the cluster: the copies for a normal member that several
    /// nodes hold are queued once.
    #[prost(string, tag = "6")]
    pub id: String,
}

/// One `channel_capacity` rule.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CapacityRule {
    /// The pattern.
    #[prost(string, tag = "1")]
    pub pattern: String,
    /// True for a regular expression, false for a glob.
    #[prost(bool, tag = "2")]
    pub regex: bool,
    /// The capacity of channels it matches.
    #[prost(uint64, tag = "3")]
    pub capacity: u64,
}

/// A probe for a client prefix.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProbeOp {}

/// The answer to an [`Envelope`] request.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Reply {
    /// What happened.
    #[prost(oneof = "Outcome", tags = "1, 2, 3, 4")]
    pub outcome: Option<Outcome>,
}

/// What a request did.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum Outcome {
    /// A send was accepted.
    #[prost(message, tag = "1")]
    Sent(Sent),
    /// A membership changed (or not).
    #[prost(bool, tag = "2")]
    Changed(bool),
    /// The operation was refused.
    #[prost(message, tag = "3")]
    Error(WireError),
    /// The prefix is held by the answering node.
    #[prost(bool, tag = "4")]
    Held(bool),
}

/// An accepted send.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Sent {
    /// Handed to a waiting receive.
    #[prost(bool, tag = "1")]
    pub delivered: bool,
    /// Messages the channel holds afterwards.
    #[prost(uint64, tag = "2")]
    pub queued: u64,
}

/// A refusal, with what the sender needs to raise the same error a local one would.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WireError {
    /// Which error (the [`CoreError`] variant's name).
    #[prost(string, tag = "1")]
    pub kind: String,
    /// Its text.
    #[prost(string, tag = "2")]
    pub message: String,
    /// The channel, group, namespace or pattern it names.
    #[prost(string, tag = "3")]
    pub name: String,
    /// A size or capacity.
    #[prost(uint64, tag = "4")]
    pub size: u64,
    /// A limit.
    #[prost(uint64, tag = "5")]
    pub limit: u64,
    /// What was counted, or what is wrong.
    #[prost(string, tag = "6")]
    pub what: String,
    /// Which limit refused it ([`Limit::name`]).
    #[prost(string, tag = "7")]
    pub limit_name: String,
}

/// A cluster-wide question, answered by every node.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Survey {
    /// [`VERSION`].
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The asking node.
    #[prost(string, tag = "2")]
    pub origin: String,
    /// The namespace.
    #[prost(string, tag = "3")]
    pub namespace: String,
    /// The group, for the group questions.
    #[prost(string, tag = "4")]
    pub group: String,
    /// What is asked.
    #[prost(enumeration = "Question", tag = "5")]
    pub question: i32,
    /// Members: the page starts after this name.
    #[prost(string, tag = "6")]
    pub after: String,
    /// Members: at most this many.
    #[prost(uint64, tag = "7")]
    pub limit: u64,
}

/// What a [`Survey`] asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum Question {
    /// Nothing (an unknown question).
    Unspecified = 0,
    /// How many members a group has on the node.
    GroupSize = 1,
    /// A page of the node's members of a group.
    GroupMembers = 2,
    /// Flush the namespace on the node.
    Flush = 3,
    /// The node's counters and gauges.
    Stats = 4,
}

/// One node's answer to a [`Survey`].
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SurveyReply {
    /// The answering node.
    #[prost(string, tag = "1")]
    pub node: String,
    /// Group size.
    #[prost(uint64, tag = "2")]
    pub size: u64,
    /// Members, sorted by name.
    #[prost(message, repeated, tag = "3")]
    pub members: Vec<Member>,
    /// The node has more members after the page.
    #[prost(bool, tag = "4")]
    pub more: bool,
    /// Flush: messages dropped.
    #[prost(uint64, tag = "5")]
    pub dropped_messages: u64,
    /// Flush: groups removed.
    #[prost(uint64, tag = "6")]
    pub removed_groups: u64,
    /// The node could not answer.
    #[prost(message, optional, tag = "7")]
    pub error: Option<WireError>,
    /// Stats: the node's counters and gauges.
    #[prost(message, optional, tag = "8")]
    pub stats: Option<NodeStats>,
}

/// One node's counters and gauges (the hub's and its engine's).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NodeStats {
    #[prost(uint64, tag = "1")]
    pub sessions_open: u64,
    #[prost(uint64, tag = "2")]
    pub sessions_detached: u64,
    #[prost(uint64, tag = "3")]
    pub delivered_total: u64,
    #[prost(uint64, tag = "4")]
    pub sessions_opened_total: u64,
    #[prost(uint64, tag = "5")]
    pub sessions_resumed_total: u64,
    #[prost(uint64, tag = "6")]
    pub sessions_released_total: u64,
    #[prost(uint64, tag = "7")]
    pub namespaces: u64,
    #[prost(uint64, tag = "10")]
    pub channels: u64,
    #[prost(uint64, tag = "11")]
    pub groups: u64,
    #[prost(uint64, tag = "12")]
    pub memberships: u64,
    #[prost(uint64, tag = "13")]
    pub queued_messages: u64,
    #[prost(uint64, tag = "14")]
    pub queued_bytes: u64,
    #[prost(uint64, tag = "15")]
    pub waiting_receives: u64,
    #[prost(uint64, tag = "16")]
    pub sent_total: u64,
    #[prost(uint64, tag = "17")]
    pub dropped_channel_full_total: u64,
    #[prost(uint64, tag = "18")]
    pub dropped_expired_total: u64,
    #[prost(uint64, tag = "19")]
    pub dropped_session_gone_total: u64,
    #[prost(uint64, tag = "20")]
    pub dropped_flushed_total: u64,
    #[prost(uint64, tag = "21")]
    pub memberships_expired_total: u64,
    #[prost(uint64, tag = "22")]
    pub memberships_released_total: u64,
}

impl From<&HubStats> for NodeStats {
    fn from(s: &HubStats) -> Self {
        Self {
            sessions_open: s.sessions_open,
            sessions_detached: s.sessions_detached,
            delivered_total: s.delivered_total,
            sessions_opened_total: s.sessions_opened_total,
            sessions_resumed_total: s.sessions_resumed_total,
            sessions_released_total: s.sessions_released_total,
            namespaces: s.namespaces,
            channels: s.core.channels,
            groups: s.core.groups,
            memberships: s.core.memberships,
            queued_messages: s.core.queued_messages,
            queued_bytes: s.core.queued_bytes,
            waiting_receives: s.core.waiting_receives,
            sent_total: s.core.sent_total,
            dropped_channel_full_total: s.core.dropped_channel_full_total,
            dropped_expired_total: s.core.dropped_expired_total,
            dropped_session_gone_total: s.core.dropped_session_gone_total,
            dropped_flushed_total: s.core.dropped_flushed_total,
            memberships_expired_total: s.core.memberships_expired_total,
            memberships_released_total: s.core.memberships_released_total,
        }
    }
}

impl From<NodeStats> for HubStats {
    fn from(s: NodeStats) -> Self {
        Self {
            core: crate::core::Stats {
                channels: s.channels,
                groups: s.groups,
                memberships: s.memberships,
                queued_messages: s.queued_messages,
                queued_bytes: s.queued_bytes,
                waiting_receives: s.waiting_receives,
                sent_total: s.sent_total,
                dropped_channel_full_total: s.dropped_channel_full_total,
                dropped_expired_total: s.dropped_expired_total,
                dropped_session_gone_total: s.dropped_session_gone_total,
                dropped_flushed_total: s.dropped_flushed_total,
                memberships_expired_total: s.memberships_expired_total,
                memberships_released_total: s.memberships_released_total,
            },
            uptime: Duration::ZERO,
            sessions_open: s.sessions_open,
            sessions_detached: s.sessions_detached,
            delivered_total: s.delivered_total,
            sessions_opened_total: s.sessions_opened_total,
            sessions_resumed_total: s.sessions_resumed_total,
            sessions_released_total: s.sessions_released_total,
            namespaces: s.namespaces,
        }
    }
}

/// A group member.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Member {
    /// The channel.
    #[prost(string, tag = "1")]
    pub channel: String,
    /// When its membership expires.
    #[prost(uint64, tag = "2")]
    pub expires_in_ms: u64,
}

/// A node saying it is up (or leaving).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Heartbeat {
    /// [`VERSION`].
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The node.
    #[prost(string, tag = "2")]
    pub node: String,
    /// The node is shutting down.
    #[prost(bool, tag = "3")]
    pub leaving: bool,
}

/// Milliseconds of `d`, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// The wire form of a rule list.
pub(crate) fn rules_to_wire(rules: &[(Pattern, usize)]) -> Vec<CapacityRule> {
    rules
        .iter()
        .map(|(pattern, capacity)| match pattern {
            Pattern::Glob(p) => CapacityRule {
                pattern: p.clone(),
                regex: false,
                capacity: *capacity as u64,
            },
            Pattern::Regex(p) => CapacityRule {
                pattern: p.clone(),
                regex: true,
                capacity: *capacity as u64,
            },
        })
        .collect()
}

/// A rule list back from its wire form.
pub(crate) fn rules_from_wire(rules: &[CapacityRule]) -> Vec<(Pattern, usize)> {
    rules
        .iter()
        .map(|r| {
            let pattern = if r.regex {
                Pattern::Regex(r.pattern.clone())
            } else {
                Pattern::Glob(r.pattern.clone())
            };
            (pattern, usize::try_from(r.capacity).unwrap_or(usize::MAX))
        })
        .collect()
}

/// The wire form of a refusal.
pub(crate) fn error_to_wire(error: &HubError) -> WireError {
    let message = error.to_string();
    let mut w = WireError {
        message,
        ..WireError::default()
    };
    match error {
        HubError::Core(core) => match core {
            CoreError::InvalidChannelName { name } => {
                w.kind = "InvalidChannelName".into();
                w.name = name.clone();
            }
            CoreError::InvalidGroupName { name } => {
                w.kind = "InvalidGroupName".into();
                w.name = name.clone();
            }
            CoreError::InvalidNamespace { name } => {
                w.kind = "InvalidNamespace".into();
                w.name = name.clone();
            }
            CoreError::InvalidClientPrefix { prefix } => {
                w.kind = "InvalidClientPrefix".into();
                w.name = prefix.clone();
            }
            CoreError::ChannelFull { channel, capacity } => {
                w.kind = "ChannelFull".into();
                w.name = channel.clone();
                w.size = *capacity as u64;
            }
            CoreError::MessageTooLarge { size, limit } => {
                w.kind = "MessageTooLarge".into();
                w.size = *size as u64;
                w.limit = *limit as u64;
            }
            CoreError::InvalidCapacityRule { pattern, detail } => {
                w.kind = "InvalidCapacityRule".into();
                w.name = pattern.clone();
                w.what = detail.clone();
            }
            CoreError::LimitExceeded {
                namespace,
                limit,
                what,
                max,
            } => {
                w.kind = "LimitExceeded".into();
                w.name = namespace.clone();
                w.what = what.clone();
                w.limit = *max as u64;
                w.limit_name = limit.name().into();
            }
        },
        _ => w.kind = "Unavailable".into(),
    }
    w
}

/// A refusal back from its wire form: the same error a local operation gives, where the
/// kind is known.
pub(crate) fn error_from_wire(w: WireError) -> HubError {
    let size = usize::try_from(w.size).unwrap_or(usize::MAX);
    let limit = usize::try_from(w.limit).unwrap_or(usize::MAX);
    let core = match w.kind.as_str() {
        "InvalidChannelName" => CoreError::InvalidChannelName { name: w.name },
        "InvalidGroupName" => CoreError::InvalidGroupName { name: w.name },
        "InvalidNamespace" => CoreError::InvalidNamespace { name: w.name },
        "InvalidClientPrefix" => CoreError::InvalidClientPrefix { prefix: w.name },
        "ChannelFull" => CoreError::ChannelFull {
            channel: w.name,
            capacity: size,
        },
        "MessageTooLarge" => CoreError::MessageTooLarge { size, limit },
        "InvalidCapacityRule" => CoreError::InvalidCapacityRule {
            pattern: w.name,
            detail: w.what,
        },
        "LimitExceeded" => match Limit::from_name(&w.limit_name) {
            Some(which) => CoreError::LimitExceeded {
                namespace: w.name,
                limit: which,
                what: w.what,
                max: limit,
            },
            None => {
                return HubError::ClusterUnavailable {
                    detail: format!("the owner node refused: {}", w.message),
                };
            }
        },
        _ => {
            return HubError::ClusterUnavailable {
                detail: format!("the owner node refused: {}", w.message),
            };
        }
    };
    HubError::Core(core)
}

/// The wire form of an outcome.
pub(crate) fn outcome_to_wire(outcome: Result<OpOutcome, HubError>) -> Reply {
    let outcome = match outcome {
        Ok(OpOutcome::Sent { delivered, queued }) => Outcome::Sent(Sent {
            delivered,
            // Forwarded operations reach process-specific channels, whose owner counts.
            queued: queued.map_or(u64::MAX, |q| q as u64),
        }),
        Ok(OpOutcome::Changed(changed)) => Outcome::Changed(changed),
        Ok(OpOutcome::GroupSent { .. }) => Outcome::Changed(true),
        Err(error) => Outcome::Error(error_to_wire(&error)),
    };
    Reply {
        outcome: Some(outcome),
    }
}

/// An outcome back from its wire form.
pub(crate) fn outcome_from_wire(reply: Reply) -> Result<OpOutcome, HubError> {
    match reply.outcome {
        Some(Outcome::Sent(s)) => Ok(OpOutcome::Sent {
            delivered: s.delivered,
            queued: usize::try_from(s.queued).ok().filter(|&q| q != usize::MAX),
        }),
        Some(Outcome::Changed(changed)) => Ok(OpOutcome::Changed(changed)),
        Some(Outcome::Error(w)) => Err(error_from_wire(w)),
        Some(Outcome::Held(_)) | None => Err(HubError::ClusterUnavailable {
            detail: "the owner node sent an answer this node does not understand".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn a_refusal_crosses_the_wire_unchanged() {
        for error in [
            CoreError::ChannelFull {
                channel: "specific.a!b".into(),
                capacity: 3,
            },
            CoreError::MessageTooLarge { size: 9, limit: 4 },
            CoreError::LimitExceeded {
                namespace: "my-namespaces".into(),
                limit: Limit::ChannelsPerNamespace,
                what: "channels".into(),
                max: 7,
            },
            CoreError::InvalidCapacityRule {
                pattern: "[".into(),
                detail: "unclosed".into(),
            },
        ] {
            let error = HubError::Core(error);
            let reply = outcome_to_wire(Err(error.clone()));
            let bytes = reply.encode_to_vec();
            let back = outcome_from_wire(Reply::decode(bytes.as_slice()).unwrap());
            assert_eq!(back, Err(error));
        }
    }

    #[test]
    fn rules_cross_the_wire_in_order() {
        let rules = vec![
            (Pattern::Glob("specific.*".into()), 5),
            (Pattern::Regex("^http".into()), 7),
        ];
        assert_eq!(rules_from_wire(&rules_to_wire(&rules)), rules);
    }
}
