//! Channel, group and namespace name rules, equal to Django Channels'.
//!
//! Channels validates with `^[a-zA-Z\d\-_.]+(\![\d\w\-_.]*)?$` and `len(name) < 100`
//! (`channels/layers.py`). Python's `\d`, `\w` and `$` accept Unicode digits, Unicode word
//! characters and a trailing newline; chanlayer accepts only the ASCII names that rule was
//! written for, so a name valid here is valid for every Channels layer.

use crate::core::error::CoreError;

/// Names must be shorter than this many characters, as in Channels (`MAX_NAME_LENGTH`).
pub const MAX_NAME_LENGTH: usize = 100;

/// The longest namespace accepted, in bytes.
pub const MAX_NAMESPACE_LENGTH: usize = 100;

/// The rule every channel name follows, quoted in errors.
pub const CHANNEL_RULE: &str = "a channel name has 1 to 99 ASCII letters, digits, hyphens, \
     underscores or periods, optionally followed by one '!' and a local part of the same characters";

/// The rule every group name follows, quoted in errors.
pub const GROUP_RULE: &str =
    "a group name has 1 to 99 ASCII letters, digits, hyphens, underscores or periods";

/// The rule every namespace follows, quoted in errors.
pub const NAMESPACE_RULE: &str = "a namespace has at most 100 printable ASCII characters \
     other than spaces";

/// Which bytes may appear in a name: ASCII letters and digits, `-`, `_` and `.`.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
        b += 1;
    }
    table
};

fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[b as usize]
}

/// Checks a channel name against Channels' rule.
pub(crate) fn validate_channel(name: &str) -> Result<(), CoreError> {
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() < MAX_NAME_LENGTH
        && match bytes.iter().position(|&b| b == b'!') {
            None => bytes.iter().all(|&b| is_name_byte(b)),
            Some(bang) => {
                bang > 0
                    && bytes[..bang].iter().all(|&b| is_name_byte(b))
                    && bytes[bang + 1..].iter().all(|&b| is_name_byte(b))
            }
        };
    if valid {
        Ok(())
    } else {
        Err(CoreError::InvalidChannelName {
            name: truncate_for_error(name),
        })
    }
}

/// Checks a group name against Channels' rule (no `!`).
pub(crate) fn validate_group(name: &str) -> Result<(), CoreError> {
    let bytes = name.as_bytes();
    if !bytes.is_empty() && bytes.len() < MAX_NAME_LENGTH && bytes.iter().all(|&b| is_name_byte(b))
    {
        Ok(())
    } else {
        Err(CoreError::InvalidGroupName {
            name: truncate_for_error(name),
        })
    }
}

/// Checks a namespace: Django's channel-layer `prefix`, which may be empty.
pub(crate) fn validate_namespace(name: &str) -> Result<(), CoreError> {
    if name.len() <= MAX_NAMESPACE_LENGTH && name.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(CoreError::InvalidNamespace {
            name: truncate_for_error(name),
        })
    }
}

/// The client prefix that owns a process-specific channel: for `<remote>!<local>`, the
/// part of `<remote>` after its last `.`. `None` for a normal channel.
///
/// `new_channel()` names channels `specific.<client_prefix>!<id>`, so this is the prefix
/// of the session that created the channel.
pub(crate) fn client_prefix_of(channel: &str) -> Option<&str> {
    let bang = channel.find('!')?;
    let remote = &channel[..bang];
    Some(match remote.rfind('.') {
        Some(dot) => &remote[dot + 1..],
        None => remote,
    })
}

/// Checks a client prefix: 1 to 64 ASCII letters, digits, `-` and `_`.
pub(crate) fn validate_client_prefix(prefix: &str) -> Result<(), CoreError> {
    if !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(CoreError::InvalidClientPrefix {
            prefix: truncate_for_error(prefix),
        })
    }
}

/// Keeps error messages bounded when a client sends a huge name.
fn truncate_for_error(name: &str) -> String {
    const LIMIT: usize = 120;
    if name.len() <= LIMIT {
        return name.to_owned();
    }
    let mut end = LIMIT;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &name[..end], name.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_follow_channels_rules() {
        for ok in [
            "a",
            "test-channel_1.x",
            "foo!",
            "foo!bar",
            "specific.abc!def-1_2.3",
            &"a".repeat(99),
        ] {
            assert!(validate_channel(ok).is_ok(), "{ok:?} should be valid");
        }
        for bad in [
            "",
            "!",
            "!foo",
            "foo!bar!baz",
            "foo?bar",
            "foo bar",
            "foo\n",
            "foo\u{663}",
            "foo!\u{e9}",
            &"a".repeat(100),
            &format!("{}!", "a".repeat(99)),
        ] {
            assert!(
                matches!(
                    validate_channel(bad),
                    Err(CoreError::InvalidChannelName { .. })
                ),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn group_names_follow_channels_rules() {
        assert!(validate_group("chat_lobby.1-a").is_ok());
        assert!(validate_group(&"g".repeat(99)).is_ok());
        for bad in ["", "foo!", "foo!bar", "a b", "é", &"g".repeat(100)] {
            assert!(validate_group(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn errors_name_the_offending_name_and_rule() {
        let err = validate_channel("bad name").unwrap_err().to_string();
        assert!(err.contains("\"bad name\""), "{err}");
        assert!(err.contains("ASCII"), "{err}");
        let long = "x".repeat(10_000);
        let err = validate_group(&long).unwrap_err().to_string();
        assert!(
            err.len() < 400,
            "error text must stay bounded: {}",
            err.len()
        );
        assert!(err.contains("10000 bytes"), "{err}");
    }

    #[test]
    fn namespaces() {
        assert!(validate_namespace("").is_ok());
        assert!(validate_namespace("asgi").is_ok());
        assert!(validate_namespace("my:app/1").is_ok());
        assert!(validate_namespace("a b").is_err());
        assert!(validate_namespace(&"n".repeat(101)).is_err());
    }

    #[test]
    fn client_prefix_of_specific_channels() {
        assert_eq!(client_prefix_of("specific.abc123!x"), Some("abc123"));
        assert_eq!(client_prefix_of("abc123!x"), Some("abc123"));
        assert_eq!(client_prefix_of("a.b.c!"), Some("c"));
        assert_eq!(client_prefix_of("normal.channel"), None);
        assert!(validate_client_prefix("0123abcdef").is_ok());
        assert!(validate_client_prefix("").is_err());
        assert!(validate_client_prefix("a.b").is_err());
        assert!(validate_client_prefix(&"a".repeat(65)).is_err());
    }
}
