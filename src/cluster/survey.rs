//! Cluster-wide questions (group size, members, flush), and the heartbeats that tell the
//! asking node which nodes to wait for.

use super::*;

impl Cluster {
    pub(super) async fn read_surveys(self: Arc<Self>, mut sub: Subscriber) {
        while let Some(message) = sub.next().await {
            let Some(reply) = message.reply else {
                continue;
            };
            let Some(hub) = self.hub() else { return };
            let survey = match Survey::decode(message.payload) {
                Ok(s) if s.version == VERSION => s,
                _ => {
                    self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let answer = self.answer(&hub, survey);
            self.enqueue(reply.to_string(), None, answer.encode_to_vec().into());
        }
    }

    /// This node's answer to a cluster-wide question.
    pub(super) fn answer(&self, hub: &Hub, survey: Survey) -> SurveyReply {
        let mut reply = SurveyReply {
            node: self.node.clone(),
            ..SurveyReply::default()
        };
        if survey.question == Question::Stats as i32 {
            reply.stats = Some(NodeStats::from(&hub.stats()));
            return reply;
        }
        if !hub.has_namespace(&survey.namespace) {
            return reply;
        }
        let result = match Question::try_from(survey.question) {
            Ok(Question::GroupSize) => hub
                .group_size_here(&survey.namespace, &survey.group)
                .map(|size| reply.size = size as u64),
            Ok(Question::GroupMembers) => {
                let limit = usize::try_from(survey.limit).unwrap_or(usize::MAX);
                hub.group_members_here(&survey.namespace, &survey.group, &survey.after, limit)
                    .map(|page| {
                        reply.size = page.total as u64;
                        reply.more = page.more;
                        reply.members = page
                            .members
                            .into_iter()
                            .map(|(channel, left)| Member {
                                channel,
                                expires_in_ms: ms(left),
                            })
                            .collect();
                    })
            }
            Ok(Question::Flush) => hub.flush_here(&survey.namespace).map(|report| {
                reply.dropped_messages = report.dropped_messages;
                reply.removed_groups = report.removed_groups;
            }),
            _ => Ok(()),
        };
        if let Err(error) = result {
            reply.error = Some(error_to_wire(&error));
        }
        reply
    }

    /// Asks every other node; waits for those known to be up, or the survey timeout.
    pub(super) async fn survey(
        self: Arc<Self>,
        namespace: String,
        question: Question,
        group: String,
        after: String,
        limit: usize,
    ) -> Result<Surveyed<SurveyReply>, HubError> {
        let expected = self.live_nodes();
        if expected.is_empty() {
            return Ok(Surveyed::default());
        }
        let unavailable = |e: &dyn std::fmt::Display| HubError::ClusterUnavailable {
            detail: e.to_string(),
        };
        let inbox = self.client.new_inbox();
        let mut sub = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        let survey = Survey {
            version: VERSION,
            origin: self.node.clone(),
            namespace,
            group,
            question: question as i32,
            after,
            limit: limit as u64,
        };
        self.client
            .publish_with_reply(self.subjects.survey(), inbox, survey.encode_to_vec().into())
            .await
            .map_err(|e| unavailable(&e))?;
        let deadline = tokio::time::Instant::now() + self.config.survey_timeout;
        let mut answered = HashSet::new();
        let mut answers = Vec::new();
        while !expected.iter().all(|n| answered.contains(n)) {
            match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(message)) => {
                    if message.status == Some(StatusCode::NO_RESPONDERS) {
                        break;
                    }
                    let Ok(reply) = SurveyReply::decode(message.payload) else {
                        self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if answered.insert(reply.node.clone()) {
                        answers.push(reply);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        let missing = expected.iter().filter(|n| !answered.contains(*n)).count();
        if missing > 0 {
            self.stats.partial_surveys.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(error) = answers.iter().find_map(|a| a.error.clone()) {
            return Err(envelope::error_from_wire(error));
        }
        Ok(Surveyed { answers, missing })
    }

    pub(super) async fn read_heartbeats(self: Arc<Self>, mut sub: Subscriber) {
        while let Some(message) = sub.next().await {
            let Ok(beat) = Heartbeat::decode(message.payload) else {
                self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if beat.node == self.node {
                continue;
            }
            let mut nodes = self.nodes.lock();
            if beat.leaving {
                nodes.remove(&beat.node);
            } else if nodes.insert(beat.node.clone(), Instant::now()).is_none() {
                tracing::info!(node = %beat.node, "a node joined the cluster");
            }
        }
    }

    pub(super) async fn beat(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let beat = Heartbeat {
            version: VERSION,
            node: self.node.clone(),
            leaving: false,
        }
        .encode_to_vec();
        loop {
            tick.tick().await;
            if self.leaving.load(Ordering::Relaxed) {
                return;
            }
            if *self.connected.borrow() {
                self.enqueue(self.subjects.heartbeat(), None, beat.clone().into());
            }
        }
    }

    pub(super) fn ask(
        &self,
        namespace: &str,
        question: Question,
        group: &str,
        after: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Surveyed<SurveyReply>, HubError>> {
        match self.me() {
            Some(this) => this
                .survey(
                    namespace.to_owned(),
                    question,
                    group.to_owned(),
                    after.to_owned(),
                    limit,
                )
                .boxed(),
            None => std::future::ready(Err(HubError::ShuttingDown)).boxed(),
        }
    }
}
