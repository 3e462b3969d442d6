//! Proto requests to engine arguments: defaults for zero values and compiled capacity
//! rules.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;

use crate::{
    core::{CapacityRules, DEFAULT_CAPACITY, DEFAULT_EXPIRY, DEFAULT_GROUP_EXPIRY, Pattern},
    hub::HubError,
    proto::v1::{CapacityRule, capacity_rule},
};

/// The most capacity rules one group send may carry.
pub(crate) const MAX_CAPACITY_RULES: usize = 64;

/// The capacity of a request: zero means the default.
pub(crate) fn capacity(value: u32) -> usize {
    if value == 0 {
        DEFAULT_CAPACITY
    } else {
        value as usize
    }
}

/// The message expiry of a request: zero means the default.
pub(crate) fn expiry(ms: u64) -> Duration {
    if ms == 0 {
        DEFAULT_EXPIRY
    } else {
        Duration::from_millis(ms)
    }
}

/// The group expiry of a request: zero means the default.
pub(crate) fn group_expiry(seconds: u64) -> Duration {
    if seconds == 0 {
        DEFAULT_GROUP_EXPIRY
    } else {
        Duration::from_secs(seconds)
    }
}

type RuleKey = (usize, Vec<(Pattern, usize)>);

/// Compiled capacity rules, cached: a group send usually repeats the same rules (the
/// client's `channel_capacity` setting), and compiling them each time would dominate.
#[derive(Default)]
pub(crate) struct CapacityCache {
    compiled: Mutex<HashMap<RuleKey, Arc<CapacityRules>>>,
}

impl CapacityCache {
    const MAX_ENTRIES: usize = 256;

    /// The rules of a group send.
    pub(crate) fn rules(
        &self,
        default: u32,
        rules: &[CapacityRule],
    ) -> Result<Arc<CapacityRules>, HubError> {
        let default = capacity(default);
        if rules.is_empty() {
            return Ok(Arc::new(CapacityRules::uniform(default)));
        }
        if rules.len() > MAX_CAPACITY_RULES {
            return Err(crate::core::CoreError::InvalidCapacityRule {
                pattern: String::new(),
                detail: format!(
                    "{} rules given, at most {MAX_CAPACITY_RULES} are allowed",
                    rules.len()
                ),
            }
            .into());
        }
        let list = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let pattern = match &rule.pattern {
                    Some(capacity_rule::Pattern::Glob(g)) => Pattern::Glob(g.clone()),
                    Some(capacity_rule::Pattern::Regex(r)) => Pattern::Regex(r.clone()),
                    None => {
                        return Err(HubError::from(
                            crate::core::CoreError::InvalidCapacityRule {
                                pattern: String::new(),
                                detail: format!(
                                    "rule {} has neither a glob nor a regex",
                                    index + 1
                                ),
                            },
                        ));
                    }
                };
                Ok((pattern, capacity(rule.capacity)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let key = (default, list);
        if let Some(found) = self.compiled.lock().get(&key) {
            return Ok(Arc::clone(found));
        }
        let compiled = Arc::new(CapacityRules::compile(key.0, &key.1)?);
        let mut cache = self.compiled.lock();
        if cache.len() >= Self::MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&compiled));
        Ok(compiled)
    }
}
