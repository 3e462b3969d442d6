//! Sessions: opening and resuming them, the lease of a detached one, its release, and
//! the end of every stream at shutdown.

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use parking_lot::Mutex;

use crate::{
    core::{Namespace, names::validate_client_prefix},
    hub::{
        CloseReason, Event, Hub, HubError, SessionHandle, now,
        outbox::{HubWaiter, Outbox},
        session::AckOrder,
    },
};

fn random_hex() -> String {
    let value: u128 = rand::random();
    format!("{value:032x}")
}

pub(super) type SessionKey = (Arc<str>, Arc<str>);

pub(super) struct SessionEntry {
    pub(super) token: Arc<str>,
    /// The stream attached now, with its id.
    pub(super) attached: Option<(u64, Arc<Outbox>)>,
    pub(super) detached_at: Option<Instant>,
}

#[derive(Default)]
pub(super) struct Sessions {
    pub(super) by_key: HashMap<SessionKey, SessionEntry>,
    pub(super) by_token: HashMap<Arc<str>, SessionKey>,
    /// How many sessions each namespace holds.
    per_namespace: HashMap<Arc<str>, usize>,
}

impl Sessions {
    /// Adds a session under its key and its token.
    fn insert(&mut self, key: SessionKey, entry: SessionEntry) {
        self.by_token.insert(Arc::clone(&entry.token), key.clone());
        *self.per_namespace.entry(Arc::clone(&key.0)).or_default() += 1;
        self.by_key.insert(key, entry);
    }

    /// Removes the session of `key`, from every index.
    pub(super) fn remove(&mut self, key: &SessionKey) -> Option<SessionEntry> {
        let entry = self.by_key.remove(key)?;
        self.by_token.remove(&entry.token);
        if let Some(count) = self.per_namespace.get_mut(&key.0) {
            *count -= 1;
            if *count == 0 {
                self.per_namespace.remove(&key.0);
            }
        }
        Some(entry)
    }

    /// How many sessions `namespace` holds.
    fn in_namespace(&self, namespace: &str) -> usize {
        self.per_namespace.get(namespace).copied().unwrap_or(0)
    }
}

/// What a client asks when it opens a session.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenRequest {
    /// The namespace.
    pub(crate) namespace: String,
    /// The proposed client prefix, or empty.
    pub(crate) client_prefix: String,
    /// The resume token of an earlier stream, or empty.
    pub(crate) resume_token: String,
}

/// What the hub answers to an open.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    /// The session's client prefix.
    pub(crate) client_prefix: String,
    /// Its resume token.
    pub(crate) resume_token: String,
    /// True when an existing session was taken over.
    pub(crate) resumed: bool,
}

impl Hub {
    /// Opens (or resumes) a session and attaches a new stream to it. In a cluster, a new
    /// session's client prefix is claimed on every node first: a proposed prefix that
    /// another node holds is refused as one a local session holds.
    pub(crate) async fn open_session(
        self: &Arc<Self>,
        request: OpenRequest,
    ) -> Result<(SessionHandle, Opened), HubError> {
        let proposed = !request.client_prefix.is_empty();
        let (handle, opened) = self.open_session_here(request)?;
        if let Some(backplane) = &self.backplane
            && !opened.resumed
        {
            let claim = backplane.claim(handle.ns.name(), &opened.client_prefix, proposed);
            if let Err(error) = claim.await {
                handle.abandon();
                return Err(error);
            }
        }
        Ok((handle, opened))
    }

    fn open_session_here(
        self: &Arc<Self>,
        request: OpenRequest,
    ) -> Result<(SessionHandle, Opened), HubError> {
        if *self.shutting_down.borrow() {
            return Err(HubError::ShuttingDown);
        }
        let ns = self.namespace(&request.namespace)?;
        if !request.client_prefix.is_empty() {
            validate_client_prefix(&request.client_prefix)?;
        }
        let outbox = Outbox::new();
        let stream_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut sessions = self.sessions.lock();

        // Resume, when the token names a session of this namespace.
        if !request.resume_token.is_empty()
            && let Some(key) = sessions
                .by_token
                .get(request.resume_token.as_str())
                .cloned()
            && *key.0 == *request.namespace
            && (request.client_prefix.is_empty() || *key.1 == *request.client_prefix)
        {
            let entry = sessions.by_key.get_mut(&key).expect("indexes agree");
            let previous = entry.attached.replace((stream_id, Arc::clone(&outbox)));
            entry.detached_at = None;
            let token = entry.token.to_string();
            drop(sessions);
            if let Some((_, old)) = previous {
                old.finish(Some(Event::Closing(CloseReason::ResumedElsewhere)));
            }
            self.counters
                .sessions_resumed
                .fetch_add(1, Ordering::Relaxed);
            let opened = Opened {
                client_prefix: key.1.to_string(),
                resume_token: token,
                resumed: true,
            };
            return Ok((self.handle(ns, key, stream_id, outbox), opened));
        }

        if sessions.by_key.len() >= self.config.max_sessions {
            return Err(HubError::TooManySessions {
                limit: self.config.max_sessions,
            });
        }
        if sessions.in_namespace(ns.name()) >= self.config.max_sessions_per_namespace {
            return Err(HubError::TooManySessionsInNamespace {
                namespace: request.namespace,
                limit: self.config.max_sessions_per_namespace,
            });
        }
        let prefix: Arc<str> = if request.client_prefix.is_empty() {
            random_hex().into()
        } else {
            request.client_prefix.as_str().into()
        };
        let key: SessionKey = (ns.name().into(), prefix);
        if sessions.by_key.contains_key(&key) {
            return Err(HubError::ClientPrefixInUse {
                namespace: request.namespace,
                prefix: key.1.to_string(),
            });
        }
        let token: Arc<str> = random_hex().into();
        sessions.insert(
            key.clone(),
            SessionEntry {
                token: Arc::clone(&token),
                attached: Some((stream_id, Arc::clone(&outbox))),
                detached_at: None,
            },
        );
        drop(sessions);
        self.counters
            .sessions_opened
            .fetch_add(1, Ordering::Relaxed);
        let opened = Opened {
            client_prefix: key.1.to_string(),
            resume_token: token.to_string(),
            resumed: false,
        };
        Ok((self.handle(ns, key, stream_id, outbox), opened))
    }

    fn handle(
        self: &Arc<Self>,
        ns: Arc<Namespace<HubWaiter>>,
        key: SessionKey,
        stream_id: u64,
        outbox: Arc<Outbox>,
    ) -> SessionHandle {
        SessionHandle {
            hub: Arc::clone(self),
            ns,
            key,
            stream_id,
            outbox,
            acks: Vec::new(),
            order: self
                .backplane
                .as_ref()
                .map(|_| Arc::new(Mutex::new(AckOrder::default()))),
            ended: false,
        }
    }

    /// Releases sessions detached for longer than the lease grace period.
    pub(crate) fn expire_leases(&self) -> usize {
        let now = now();
        let grace = self.config.lease_grace;
        let expired: Vec<SessionKey> = {
            let mut sessions = self.sessions.lock();
            let keys: Vec<SessionKey> = sessions
                .by_key
                .iter()
                .filter(|(_, s)| {
                    s.detached_at
                        .is_some_and(|at| now.saturating_duration_since(at) >= grace)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in &keys {
                sessions.remove(key);
            }
            keys
        };
        for key in &expired {
            self.release(key, true);
        }
        expired.len()
    }

    pub(super) fn release(&self, key: &SessionKey, expired: bool) {
        if let Some(backplane) = &self.backplane {
            backplane.release(&key.0, &key.1);
        }
        self.counters
            .sessions_released
            .fetch_add(1, Ordering::Relaxed);
        if let Some(ns) = self.layer.existing(&key.0) {
            let report = ns.release_client(&key.1);
            tracing::debug!(
                namespace = %key.0,
                client_prefix = %key.1,
                expired,
                channels = report.channels,
                dropped_messages = report.dropped_messages,
                memberships = report.memberships,
                "session released"
            );
        }
    }

    /// Tells every stream that the server shuts down and refuses new sessions. Streams end
    /// once their last events are written; their sessions stay detached, so clients can
    /// resume them elsewhere within the grace period.
    pub(crate) fn shutdown(&self) {
        self.shutting_down.send_replace(true);
        let outboxes: Vec<Arc<Outbox>> = self
            .sessions
            .lock()
            .by_key
            .values()
            .filter_map(|s| s.attached.as_ref().map(|(_, o)| Arc::clone(o)))
            .collect();
        for outbox in outboxes {
            outbox.finish(Some(Event::Closing(CloseReason::Shutdown)));
        }
    }
}
