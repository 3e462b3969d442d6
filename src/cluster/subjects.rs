//! The NATS subjects a node uses, built from names that Channels allows but NATS does not
//! (`.` separates subject tokens; `!` and others are best kept out).
//!
//! Every name becomes one token: ASCII letters, digits, `_` and `-` stay as they are, every
//! other byte is written `=XX` (two upper-case hex digits). `=` is itself escaped, so the
//! encoding is reversible and two names never share a token. Namespaces get an `n` in front,
//! so that the empty namespace still makes a token.
//!
//! | subject | carries |
//! |---|---|
//! | `<root>.v1.p.<ns>.<client prefix>` | requests to the node holding a session (request/reply) |
//! | `<root>.v1.g.<ns>.<group>` | group sends, published once, read by every node |
//! | `<root>.v1.q.<ns>.<channel>` | normal channels: the subjects of a JetStream work queue |
//! | `<root>.v1.ctl.survey` | cluster-wide questions (group size, members, flush) |
//! | `<root>.v1.ctl.hb` | heartbeats: which nodes are up |
//! | `<root>.v1.ctl.claimed` | a node holds a client prefix now: others hand over what they kept for it |
//! | `<root>.v1.r.<node>.<seq>` | replies to this node's requests |

use std::fmt::Write as _;

/// Writes `name` as one subject token.
pub(crate) fn escape_into(out: &mut String, name: &str) {
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(byte as char);
        } else {
            let _ = write!(out, "={byte:02X}");
        }
    }
}

/// Reads back a token written by [`escape_into`]; `None` when it is not one.
#[cfg(test)]
fn unescape(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// True when `root` is usable as the first tokens of every subject: one or more tokens of
/// ASCII letters, digits, `_` and `-`, separated by dots.
pub(crate) fn valid_root(root: &str) -> bool {
    !root.is_empty()
        && root.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// The subjects of one cluster, under its root.
#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    root: String,
}

impl Subjects {
    /// Subjects under `root` (checked with [`valid_root`] by the caller).
    pub(crate) fn new(root: &str) -> Self {
        Self {
            root: format!("{root}.v1"),
        }
    }

    fn namespaced(&self, kind: &str, namespace: &str, name: &str) -> String {
        let mut s = String::with_capacity(self.root.len() + namespace.len() + name.len() + 8);
        s.push_str(&self.root);
        s.push('.');
        s.push_str(kind);
        s.push_str(".n");
        escape_into(&mut s, namespace);
        s.push('.');
        escape_into(&mut s, name);
        s
    }

    /// Where requests for the session holding `client_prefix` go.
    pub(crate) fn prefix(&self, namespace: &str, client_prefix: &str) -> String {
        self.namespaced("p", namespace, client_prefix)
    }

    /// Where the group sends of `group` go.
    pub(crate) fn group(&self, namespace: &str, group: &str) -> String {
        self.namespaced("g", namespace, group)
    }

    /// Where the messages of normal channel `channel` are queued (the stream's subject).
    pub(crate) fn queue(&self, namespace: &str, channel: &str) -> String {
        self.namespaced("q", namespace, channel)
    }

    /// Every normal channel of `namespace`.
    pub(crate) fn namespace_queues(&self, namespace: &str) -> String {
        let mut s = format!("{}.q.n", self.root);
        escape_into(&mut s, namespace);
        s.push_str(".>");
        s
    }

    /// Every normal channel of every namespace: the stream's subjects.
    pub(crate) fn all_queues(&self) -> String {
        format!("{}.q.>", self.root)
    }

    /// Every group of every namespace: what each node subscribes to.
    pub(crate) fn all_groups(&self) -> String {
        format!("{}.g.>", self.root)
    }

    /// Cluster-wide questions.
    pub(crate) fn survey(&self) -> String {
        format!("{}.ctl.survey", self.root)
    }

    /// Announcements of client prefixes that a node has come to hold.
    pub(crate) fn claimed(&self) -> String {
        format!("{}.ctl.claimed", self.root)
    }

    /// Heartbeats.
    pub(crate) fn heartbeat(&self) -> String {
        format!("{}.ctl.hb", self.root)
    }

    /// Replies to `node`'s requests: the wildcard it subscribes to, and one reply subject.
    pub(crate) fn replies(&self, node: &str) -> String {
        format!("{}.r.{node}.>", self.root)
    }

    /// The reply subject of request `seq` of `node`.
    pub(crate) fn reply(&self, node: &str, seq: u64) -> String {
        format!("{}.r.{node}.{seq}", self.root)
    }
}

/// The sequence number at the end of a reply subject.
pub(crate) fn reply_seq(subject: &str) -> Option<u64> {
    subject.rsplit('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_one_token() {
        for name in [
            "",
            "chat",
            "specific.abc!def",
            "a=b",
            "=3D",
            "with space",
            "ünïcode",
            "*>",
        ] {
            let mut token = String::new();
            escape_into(&mut token, name);
            assert!(!token.contains(['.', '*', '>', ' ']), "{token}");
            assert_eq!(unescape(&token).as_deref(), Some(name));
        }
    }

    #[test]
    fn distinct_names_make_distinct_tokens() {
        let mut a = String::new();
        let mut b = String::new();
        escape_into(&mut a, "x.y");
        escape_into(&mut b, "x=2Ey");
        assert_ne!(a, b);
    }

    #[test]
    fn subjects_are_one_token_per_name() {
        let s = Subjects::new("chanlayer");
        let subject = s.group("", "room.1");
        assert_eq!(subject, "chanlayer.v1.g.n.room=2E1");
        assert_eq!(s.prefix("asgi", "abc"), "chanlayer.v1.p.nasgi.abc");
        assert_eq!(s.queue("asgi", "work.1"), "chanlayer.v1.q.nasgi.work=2E1");
        assert_eq!(s.namespace_queues("a.b"), "chanlayer.v1.q.na=2Eb.>");
    }

    #[test]
    fn roots_are_checked() {
        assert!(valid_root("chanlayer"));
        assert!(valid_root("prod.chanlayer-1"));
        assert!(!valid_root(""));
        assert!(!valid_root("a..b"));
        assert!(!valid_root("a.*"));
    }

    #[test]
    fn reply_subjects_carry_their_sequence() {
        let s = Subjects::new("x");
        assert_eq!(reply_seq(&s.reply("node-1", 42)), Some(42));
    }
}
