//! Per-channel capacities for `group_send`: Django Channels' `channel_capacity` setting,
//! a list of (pattern, capacity) pairs where the first matching pattern wins.
//!
//! A `send` carries the capacity its client already resolved; a `group_send` cannot, since
//! only the server knows the members, so it carries the rules and the server resolves
//! them per member. Globs follow Python's `fnmatch` (whole-name match; `*`, `?`, `[seq]`,
//! `[!seq]`); regular expressions follow `re.match` (anchored at the start only).

use regex::Regex;

use crate::core::error::CoreError;

/// The capacity of a channel when no other is given, as in Channels.
pub const DEFAULT_CAPACITY: usize = 100;

/// How a rule names its channels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// A shell-style glob, matched against the whole name.
    Glob(String),
    /// A regular expression, matched at the start of the name.
    Regex(String),
}

/// Compiled capacity rules with a default.
#[derive(Debug, Clone)]
pub struct CapacityRules {
    default: usize,
    rules: Vec<(Regex, usize)>,
    sources: Vec<(Pattern, usize)>,
}

impl CapacityRules {
    /// Rules that give every channel `default`.
    pub fn uniform(default: usize) -> Self {
        Self {
            default,
            rules: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// Compiles `rules`, in order, over `default`.
    pub(crate) fn compile(default: usize, sources: &[(Pattern, usize)]) -> Result<Self, CoreError> {
        let rules = sources
            .iter()
            .map(|(pattern, capacity)| Ok((compile_pattern(pattern)?, *capacity)))
            .collect::<Result<Vec<_>, CoreError>>()?;
        Ok(Self {
            default,
            rules,
            sources: sources.to_vec(),
        })
    }

    /// The capacity of channels no rule names.
    pub(crate) fn default_capacity(&self) -> usize {
        self.default
    }

    /// The largest capacity the rules give any channel.
    pub(crate) fn max_capacity(&self) -> usize {
        self.sources
            .iter()
            .map(|(_, capacity)| *capacity)
            .fold(self.default, usize::max)
    }

    /// The rules as they were given, in order (what another node compiles again).
    pub(crate) fn sources(&self) -> &[(Pattern, usize)] {
        &self.sources
    }

    /// The capacity of `channel`: the first matching rule's, or the default.
    pub(crate) fn capacity_of(&self, channel: &str) -> usize {
        self.rules
            .iter()
            .find(|(re, _)| re.is_match(channel))
            .map_or(self.default, |(_, capacity)| *capacity)
    }
}

fn compile_pattern(pattern: &Pattern) -> Result<Regex, CoreError> {
    let (source, text) = match pattern {
        Pattern::Glob(glob) => (glob_to_regex(glob), glob),
        Pattern::Regex(re) => (format!("^(?:{re})"), re),
    };
    regex::RegexBuilder::new(&source)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| CoreError::InvalidCapacityRule {
            pattern: text.clone(),
            detail: err.to_string(),
        })
}

/// Translates a `fnmatch` glob into an anchored regular expression, as Python's
/// `fnmatch.translate` does.
fn glob_to_regex(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::from("^(?s:");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                // Consecutive stars mean the same as one.
                while i < chars.len() && chars[i] == '*' {
                    i += 1;
                }
                out.push_str(".*");
            }
            '?' => out.push('.'),
            '[' => {
                // Find the closing bracket; a `]` right after `[` or `[!` is literal.
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str("\\[");
                } else {
                    let mut set = String::from("[");
                    let mut k = i;
                    if chars[k] == '!' {
                        set.push('^');
                        k += 1;
                    }
                    for &ch in &chars[k..j] {
                        if matches!(ch, '\\' | '[' | '&' | '~' | '|' | '^') {
                            set.push('\\');
                        }
                        set.push(ch);
                    }
                    set.push(']');
                    out.push_str(&set);
                    i = j + 1;
                }
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out.push_str(")$");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(Pattern, usize)]) -> CapacityRules {
        CapacityRules::compile(DEFAULT_CAPACITY, list).unwrap()
    }

    #[test]
    fn globs_match_whole_names_like_fnmatch() {
        let r = rules(&[
            (Pattern::Glob("http.response!*".into()), 10),
            (Pattern::Glob("http.request".into()), 200),
            (Pattern::Glob("chat.?".into()), 3),
            (Pattern::Glob("room[0-9]".into()), 4),
            (Pattern::Glob("x[!a]".into()), 5),
        ]);
        assert_eq!(r.capacity_of("http.response!abc"), 10);
        assert_eq!(r.capacity_of("http.request"), 200);
        assert_eq!(r.capacity_of("http.request2"), DEFAULT_CAPACITY);
        assert_eq!(r.capacity_of("httpXrequest"), DEFAULT_CAPACITY);
        assert_eq!(r.capacity_of("chat.a"), 3);
        assert_eq!(r.capacity_of("chat.ab"), DEFAULT_CAPACITY);
        assert_eq!(r.capacity_of("room7"), 4);
        assert_eq!(r.capacity_of("xb"), 5);
        assert_eq!(r.capacity_of("xa"), DEFAULT_CAPACITY);
    }

    #[test]
    fn regexes_match_at_the_start_like_re_match() {
        let r = rules(&[
            (Pattern::Regex("^.*!aaa".into()), 7),
            (Pattern::Regex("ws".into()), 8),
        ]);
        assert_eq!(r.capacity_of("specific.x!aaa-more"), 7);
        assert_eq!(r.capacity_of("ws.anything"), 8);
        assert_eq!(r.capacity_of("not.ws"), DEFAULT_CAPACITY);
    }

    #[test]
    fn first_match_wins() {
        let r = rules(&[
            (Pattern::Glob("a*".into()), 1),
            (Pattern::Glob("ab*".into()), 2),
        ]);
        assert_eq!(r.capacity_of("abc"), 1);
    }

    #[test]
    fn bad_patterns_are_errors() {
        let err = CapacityRules::compile(1, &[(Pattern::Regex("(".into()), 1)]).unwrap_err();
        assert!(matches!(err, CoreError::InvalidCapacityRule { .. }));
        // An unclosed bracket in a glob is a literal, as in fnmatch.
        let r = rules(&[(Pattern::Glob("a[b".into()), 9)]);
        assert_eq!(r.capacity_of("a[b"), 9);
    }
}
