//! The hub's view of the cluster: [`Backplane`] implemented over this node's NATS
//! connection.

use super::*;

impl Backplane for Cluster {
    fn check(&self) -> Result<(), HubError> {
        if *self.connected.borrow() {
            Ok(())
        } else {
            Err(HubError::ClusterUnavailable {
                detail: "this node is not connected to NATS".into(),
            })
        }
    }

    fn holds(&self, namespace: &str, client_prefix: &str) -> bool {
        self.prefixes
            .lock()
            .get(namespace)
            .is_some_and(|p| p.contains_key(client_prefix))
    }

    fn claim(
        &self,
        namespace: &str,
        client_prefix: &str,
        probe: bool,
    ) -> BoxFuture<'static, Result<(), HubError>> {
        let this = self.me();
        let namespace = namespace.to_owned();
        let prefix = client_prefix.to_owned();
        async move {
            let Some(this) = this else {
                return Err(HubError::ShuttingDown);
            };
            this.check()?;
            let subject = this.subjects.prefix(&namespace, &prefix);
            if probe {
                let envelope = Envelope {
                    version: VERSION,
                    namespace: namespace.clone(),
                    origin: this.node.clone(),
                    op: Some(Op::Probe(ProbeOp {})),
                };
                let payload: Bytes = envelope.encode_to_vec().into();
                // A holder that subscribed a moment ago may not be known to this node's
                // NATS server yet: asked again after 2 and 4 ms before the prefix is free.
                let mut retries = PROBE_RETRIES_MS.iter();
                loop {
                    match this.request(subject.clone(), payload.clone()).await {
                        Err(RequestFailure::NoResponders) => match retries.next() {
                            Some(delay) => tokio::time::sleep(Duration::from_millis(*delay)).await,
                            None => break,
                        },
                        Ok(_) => {
                            return Err(HubError::ClientPrefixInUse { namespace, prefix });
                        }
                        Err(failure) => return Err(this.unreachable(&prefix, failure)),
                    }
                }
            }
            // Held from now on: this node's own operations on the prefix stay here.
            this.prefixes
                .lock()
                .entry(namespace.clone())
                .or_default()
                .insert(prefix.clone(), None);
            let sub = this.client.subscribe(subject).await;
            let flushed = this.client.flush().await;
            // Let the subscription reach the other NATS servers before the session is
            // answered, so that what the client does next anywhere finds it.
            tokio::time::sleep(this.config.interest_settle).await;
            let sub = match (sub, flushed) {
                (Ok(sub), Ok(())) => sub,
                (Err(e), _) => {
                    this.release(&namespace, &prefix);
                    return Err(HubError::ClusterUnavailable {
                        detail: e.to_string(),
                    });
                }
                (_, Err(e)) => {
                    this.release(&namespace, &prefix);
                    return Err(HubError::ClusterUnavailable {
                        detail: e.to_string(),
                    });
                }
            };
            let task = tokio::spawn(Arc::clone(&this).serve_prefix(namespace.clone(), sub));
            {
                let mut prefixes = this.prefixes.lock();
                match prefixes
                    .get_mut(&namespace)
                    .and_then(|p| p.get_mut(&prefix))
                {
                    Some(slot) => *slot = Some(task.abort_handle()),
                    // Released while subscribing.
                    None => task.abort(),
                }
            }
            // What other nodes kept for the prefix before this session opened comes here.
            let claimed = Envelope {
                version: VERSION,
                namespace,
                origin: this.node.clone(),
                op: Some(Op::Claimed(ClaimedOp {
                    client_prefix: prefix,
                })),
            };
            this.enqueue(
                this.subjects.claimed(),
                None,
                claimed.encode_to_vec().into(),
            );
            Ok(())
        }
        .boxed()
    }

    fn release(&self, namespace: &str, client_prefix: &str) {
        let mut prefixes = self.prefixes.lock();
        if let Some(held) = prefixes.get_mut(namespace) {
            if let Some(Some(task)) = held.remove(client_prefix) {
                task.abort();
            }
            if held.is_empty() {
                prefixes.remove(namespace);
            }
        }
    }

    fn forward(
        &self,
        namespace: &str,
        client_prefix: &str,
        op: RemoteOp,
    ) -> BoxFuture<'static, Result<Option<OpOutcome>, HubError>> {
        if let Err(error) = self.check() {
            return std::future::ready(Err(error)).boxed();
        }
        let op = match op {
            RemoteOp::Send {
                channel,
                payload,
                capacity,
                expiry,
            } => Op::Send(SendOp {
                channel,
                payload,
                capacity: capacity as u64,
                expiry_ms: ms(expiry),
            }),
            RemoteOp::GroupAdd {
                group,
                channel,
                group_expiry,
            } => Op::GroupAdd(MembershipOp {
                group,
                channel,
                group_expiry_ms: ms(group_expiry),
            }),
            RemoteOp::GroupDiscard { group, channel } => Op::GroupDiscard(MembershipOp {
                group,
                channel,
                group_expiry_ms: 0,
            }),
        };
        let envelope = Envelope {
            version: VERSION,
            namespace: namespace.to_owned(),
            origin: self.node.clone(),
            op: Some(op),
        };
        let payload: Bytes = envelope.encode_to_vec().into();
        let subject = self.subjects.prefix(namespace, client_prefix);
        let prefix = client_prefix.to_owned();
        let namespace = namespace.to_owned();
        let this = self.me();
        // The first attempt is queued now: one session's operations leave in order.
        let mut sent = Some(self.send_forwarded(subject.clone(), payload.clone()));
        async move {
            let Some(this) = this else {
                return Err(HubError::ShuttingDown);
            };
            let mut retries = NO_RESPONDER_RETRIES_MS.iter();
            loop {
                let attempt = match sent.take() {
                    Some(first) => first,
                    None => this.send_forwarded(subject.clone(), payload.clone()),
                };
                match this.answer_to(attempt).await {
                    Ok(message) => {
                        let reply = Reply::decode(message.payload).map_err(|e| {
                            HubError::ClusterUnavailable {
                                detail: format!("the owner node's answer is unreadable: {e}"),
                            }
                        })?;
                        return outcome_from_wire(reply).map(Some);
                    }
                    Err(RequestFailure::NoResponders) => match retries
                        .next()
                        .filter(|_| this.claimed_lately(&namespace, &prefix))
                    {
                        Some(delay) => tokio::time::sleep(Duration::from_millis(*delay)).await,
                        // Nobody holds it, or nobody announced it lately: kept here.
                        None => {
                            this.stats.no_owner.fetch_add(1, Ordering::Relaxed);
                            this.keep(&namespace, &prefix);
                            return Ok(None);
                        }
                    },
                    Err(failure) => return Err(this.unreachable(&prefix, failure)),
                }
            }
        }
        .boxed()
    }

    fn group_send_id(&self) -> String {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        format!("{}.{seq}", self.node)
    }

    fn shares_normal(&self) -> bool {
        self.queues.is_some()
    }

    fn send_normal(
        &self,
        namespace: &str,
        channel: &str,
        payload: Bytes,
        expiry: Duration,
    ) -> BoxFuture<'static, Result<OpOutcome, HubError>> {
        self.queue_send(namespace, channel, payload, expiry, None)
    }

    fn publish_normal(
        &self,
        namespace: &str,
        channel: &str,
        payload: Bytes,
        expiry: Duration,
        id: &str,
    ) {
        let mut msg_id = String::with_capacity(id.len() + channel.len() + 1);
        msg_id.push_str(id);
        msg_id.push('.');
        msg_id.push_str(channel);
        let queued = self.queue_send(namespace, channel, payload, expiry, Some(msg_id));
        let Some(this) = self.me() else { return };
        tokio::spawn(async move {
            if let Err(error) = queued.await {
                this.stats.normal_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, "a group send's copy for a normal channel was not queued");
            }
        });
    }

    fn wants_normal(&self, namespace: &str, channel: &str) {
        self.want(namespace, channel);
    }

    fn publish_group_send(
        &self,
        namespace: &str,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
        id: &str,
    ) {
        let envelope = Envelope {
            version: VERSION,
            namespace: namespace.to_owned(),
            origin: self.node.clone(),
            op: Some(Op::GroupSend(GroupSendOp {
                group: group.to_owned(),
                payload,
                expiry_ms: ms(expiry),
                default_capacity: capacities.default_capacity() as u64,
                rules: rules_to_wire(capacities.sources()),
                id: id.to_owned(),
            })),
        };
        if self.enqueue(
            self.subjects.group(namespace, group),
            None,
            envelope.encode_to_vec().into(),
        ) {
            self.stats
                .group_sends_published
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn group_sizes(
        &self,
        namespace: &str,
        group: &str,
    ) -> BoxFuture<'static, Result<Surveyed<usize>, HubError>> {
        let survey = self.ask(namespace, Question::GroupSize, group, "", 0);
        async move {
            let s = survey.await?;
            Ok(Surveyed {
                answers: s.answers.iter().map(|a| a.size as usize).collect(),
                missing: s.missing,
            })
        }
        .boxed()
    }

    fn group_members(
        &self,
        namespace: &str,
        group: &str,
        after: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Surveyed<MembersPage>, HubError>> {
        let survey = self.ask(namespace, Question::GroupMembers, group, after, limit);
        async move {
            let s = survey.await?;
            Ok(Surveyed {
                answers: s
                    .answers
                    .into_iter()
                    .map(|a| MembersPage {
                        members: a
                            .members
                            .into_iter()
                            .map(|m| (m.channel, Duration::from_millis(m.expires_in_ms)))
                            .collect(),
                        total: a.size as usize,
                        more: a.more,
                    })
                    .collect(),
                missing: s.missing,
            })
        }
        .boxed()
    }

    fn server_stats(&self) -> BoxFuture<'static, Result<Surveyed<HubStats>, HubError>> {
        let survey = self.ask("", Question::Stats, "", "", 0);
        async move {
            let s = survey.await?;
            Ok(Surveyed {
                answers: s
                    .answers
                    .into_iter()
                    .map(|a| a.stats.map(HubStats::from).unwrap_or_default())
                    .collect(),
                missing: s.missing,
            })
        }
        .boxed()
    }

    fn flush(
        &self,
        namespace: &str,
    ) -> BoxFuture<'static, Result<Surveyed<FlushReport>, HubError>> {
        let survey = self.ask(namespace, Question::Flush, "", "", 0);
        let this = self.me();
        let namespace = namespace.to_owned();
        async move {
            let s = survey.await?;
            let mut answers: Vec<FlushReport> = s
                .answers
                .iter()
                .map(|a| FlushReport {
                    dropped_messages: a.dropped_messages,
                    removed_groups: a.removed_groups,
                })
                .collect();
            // The normal channels' messages, queued in the stream.
            if let Some(this) = this {
                let purged = this.purge_queues(&namespace).await?;
                answers.push(FlushReport {
                    dropped_messages: purged,
                    removed_groups: 0,
                });
            }
            Ok(Surveyed {
                answers,
                missing: s.missing,
            })
        }
        .boxed()
    }
}
