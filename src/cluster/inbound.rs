//! What a node receives from the others: group sends for its members, and the operations
//! other nodes forward to the client prefixes it holds.

use super::*;

impl Cluster {
    pub(super) async fn read_groups(self: Arc<Self>, mut sub: Subscriber) {
        while let Some(message) = sub.next().await {
            let Some(hub) = self.hub() else { return };
            let envelope = match Envelope::decode(message.payload) {
                Ok(e) if e.version == VERSION => e,
                _ => {
                    self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let Some(Op::GroupSend(op)) = envelope.op else {
                self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            self.stats
                .group_sends_received
                .fetch_add(1, Ordering::Relaxed);
            let default = usize::try_from(op.default_capacity).unwrap_or(usize::MAX);
            let rules = match CapacityRules::compile(default, &rules_from_wire(&op.rules)) {
                Ok(rules) => rules,
                Err(error) => {
                    tracing::warn!(%error, "a group send from another node has bad capacity rules");
                    self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            match hub.group_send_here(
                &envelope.namespace,
                &op.group,
                op.payload,
                &rules,
                Duration::from_millis(op.expiry_ms),
                &op.id,
            ) {
                Ok((delivered, _)) => {
                    self.stats
                        .remote_group_deliveries
                        .fetch_add(delivered as u64, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::debug!(%error, "a group send from another node was refused here");
                }
            }
        }
    }

    /// Serves the requests for one client prefix this node holds.
    pub(super) async fn serve_prefix(self: Arc<Self>, namespace: String, mut sub: Subscriber) {
        while let Some(message) = sub.next().await {
            let Some(reply) = message.reply else {
                continue;
            };
            let Some(hub) = self.hub() else { return };
            let answer: Bytes = match Envelope::decode(message.payload) {
                Ok(Envelope {
                    version: VERSION,
                    op: Some(Op::Batch(batch)),
                    ..
                }) => {
                    // In order: one client's operations keep the order they were made in.
                    let replies = batch
                        .envelopes
                        .into_iter()
                        .map(|inner| {
                            let reply = Envelope::decode(inner)
                                .ok()
                                .filter(|e| e.version == VERSION)
                                .and_then(|e| self.apply_forwarded(&hub, &namespace, e.op))
                                .unwrap_or_else(|| {
                                    self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                                    outcome_to_wire(Err(HubError::ClusterUnavailable {
                                        detail: "the owner node could not read the operation"
                                            .into(),
                                    }))
                                });
                            Bytes::from(reply.encode_to_vec())
                        })
                        .collect();
                    BatchReply { replies }.encode_to_vec().into()
                }
                Ok(e) if e.version == VERSION => {
                    match self.apply_forwarded(&hub, &namespace, e.op) {
                        Some(reply) => reply.encode_to_vec().into(),
                        None => {
                            self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                }
                _ => {
                    self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            self.enqueue(reply.to_string(), None, answer);
        }
    }

    /// Applies one operation forwarded to a client prefix this node holds; `None` for
    /// what is not such an operation.
    fn apply_forwarded(&self, hub: &Hub, namespace: &str, op: Option<Op>) -> Option<Reply> {
        self.stats.requests_received.fetch_add(1, Ordering::Relaxed);
        let op = match op? {
            Op::Probe(_) => {
                return Some(Reply {
                    outcome: Some(Outcome::Held(true)),
                });
            }
            Op::Send(op) => RemoteOp::Send {
                channel: op.channel,
                payload: op.payload,
                capacity: usize::try_from(op.capacity).unwrap_or(usize::MAX),
                expiry: Duration::from_millis(op.expiry_ms),
            },
            Op::GroupAdd(op) => RemoteOp::GroupAdd {
                group: op.group,
                channel: op.channel,
                group_expiry: Duration::from_millis(op.group_expiry_ms),
            },
            Op::GroupDiscard(op) => RemoteOp::GroupDiscard {
                group: op.group,
                channel: op.channel,
            },
            Op::GroupSend(_) | Op::Claimed(_) | Op::Batch(_) => return None,
        };
        Some(outcome_to_wire(hub.apply_here(namespace, op)))
    }

    /// Hands what this node kept for client prefixes that other nodes now hold to those
    /// nodes: the queued messages of their channels, in order, then their memberships.
    pub(super) async fn read_claims(self: Arc<Self>, mut sub: Subscriber) {
        while let Some(message) = sub.next().await {
            let Some(hub) = self.hub() else { return };
            let Ok(Envelope {
                version: VERSION,
                namespace,
                op: Some(Op::Claimed(claimed)),
                ..
            }) = Envelope::decode(message.payload)
            else {
                self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            // Before the handover: an operation for the prefix that nobody answers from now
            // on is asked for again, after what is handed over, rather than kept here after
            // the handover took what was kept.
            self.remember_claim(namespace.clone(), claimed.client_prefix.clone());
            self.hand_over(&hub, &namespace, &claimed.client_prefix);
        }
    }

    /// Notes that another node claimed `prefix` now (see [`CLAIM_FRESH_FOR`]).
    fn remember_claim(&self, namespace: String, prefix: String) {
        let now = Instant::now();
        let mut claims = self.claims.lock();
        if claims.len() >= CLAIMS_MAX {
            claims.retain(|_, at| now.duration_since(*at) < CLAIM_FRESH_FOR);
        }
        if claims.len() < CLAIMS_MAX {
            claims.insert((namespace, prefix), now);
        }
    }

    /// True when another node announced a claim of `prefix` within [`CLAIM_FRESH_FOR`].
    pub(super) fn claimed_lately(&self, namespace: &str, prefix: &str) -> bool {
        // A lookup by borrowed parts would need a key type of its own; prefixes are short.
        let key = (namespace.to_owned(), prefix.to_owned());
        self.claims
            .lock()
            .get(&key)
            .is_some_and(|at| at.elapsed() < CLAIM_FRESH_FOR)
    }

    /// Hands what this node kept for `prefix`, which another node now holds, to that
    /// node: the queued messages of its channels, in order, then their memberships.
    pub(super) fn hand_over(self: &Arc<Self>, hub: &Hub, namespace: &str, prefix: &str) {
        let taken = hub.take_client(namespace, prefix);
        if taken.messages.is_empty() && taken.memberships.is_empty() {
            return;
        }
        let now = tokio::time::Instant::now().into_std();
        // Queued now, in order: they leave before anything sent after them.
        let mut handed = Vec::new();
        for (channel, messages) in taken.messages {
            for m in messages {
                let op = RemoteOp::Send {
                    channel: channel.clone(),
                    payload: m.payload,
                    // Accepted here already: the owner keeps them whatever its capacity.
                    capacity: usize::MAX,
                    expiry: m.expires_at.saturating_duration_since(now),
                };
                handed.push(self.forward(namespace, prefix, op));
            }
        }
        for (group, channel, left) in taken.memberships {
            let op = RemoteOp::GroupAdd {
                group,
                channel,
                group_expiry: left,
            };
            handed.push(self.forward(namespace, prefix, op));
        }
        let count = handed.len();
        let cluster = Arc::clone(self);
        let prefix = prefix.to_owned();
        tokio::spawn(async move {
            let mut failed = 0;
            for result in futures_util::future::join_all(handed).await {
                if !matches!(result, Ok(Some(_))) {
                    failed += 1;
                }
            }
            if failed > 0 {
                cluster
                    .stats
                    .handover_failures
                    .fetch_add(failed, Ordering::Relaxed);
                tracing::warn!(client_prefix = %prefix, failed, count, "some messages or memberships kept for a client prefix did not reach the node that holds it");
            }
        });
    }

    /// Remembers that this node kept an operation for `prefix`, which no node held.
    pub(super) fn keep(&self, namespace: &str, prefix: &str) {
        let mut kept = self.kept.lock();
        if kept.len() < KEPT_MAX {
            kept.entry((namespace.to_owned(), prefix.to_owned()))
                .or_insert_with(Instant::now);
        }
    }

    /// Asks, every [`KEPT_PROBE_INTERVAL`], whether a node holds the client prefixes this
    /// node kept operations for, and hands them over to it: the announcement of the
    /// session that claimed it may not have reached this node (it was cut off from NATS, or
    /// NATS was partitioned, at the time).
    pub(super) async fn probe_kept(self: Arc<Self>) {
        let mut tick = tokio::time::interval(KEPT_PROBE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !*self.connected.borrow() {
                continue;
            }
            let Some(hub) = self.hub() else { return };
            let due: Vec<(String, String)> = {
                let now = Instant::now();
                self.claims
                    .lock()
                    .retain(|_, at| now.duration_since(*at) < CLAIM_FRESH_FOR);
                let mut kept = self.kept.lock();
                kept.retain(|_, since| now.duration_since(*since) < KEPT_PROBE_FOR);
                kept.keys().cloned().collect()
            };
            futures_util::stream::iter(due)
                .for_each_concurrent(32, |(namespace, prefix)| {
                    let (this, hub) = (Arc::clone(&self), Arc::clone(&hub));
                    async move { this.probe_one(&hub, namespace, prefix).await }
                })
                .await;
        }
    }

    async fn probe_one(self: Arc<Self>, hub: &Arc<Hub>, namespace: String, prefix: String) {
        let key = (namespace, prefix);
        if self.holds(&key.0, &key.1) {
            // Its session opened here: what was kept is where it is read.
            self.kept.lock().remove(&key);
            return;
        }
        let probe = Envelope {
            version: VERSION,
            namespace: key.0.clone(),
            origin: self.node.clone(),
            op: Some(Op::Probe(ProbeOp {})),
        };
        let subject = self.subjects.prefix(&key.0, &key.1);
        if self
            .request(subject, probe.encode_to_vec().into())
            .await
            .is_ok()
        {
            self.kept.lock().remove(&key);
            self.hand_over(hub, &key.0, &key.1);
        }
    }
}
