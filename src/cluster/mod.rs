//! Cluster mode: chanlayer nodes that share channels and groups through NATS.
//!
//! Off unless `--cluster-nats-url` is set; then the hub gets this module's [`Cluster`] as
//! its [`Backplane`] and each node:
//! - **holds the process-specific channels of its own sessions.** A new session's client
//!   prefix is probed cluster-wide (a proposed prefix another node holds is refused) and
//!   subscribed on `<root>.v1.p.<ns>.<prefix>`. A send, group_add or group_discard naming
//!   another node's channel is a NATS request to that subject, applied by the owner's core,
//!   so capacity (`CHANNEL_FULL`), expiry and errors are exactly a local send's. A request
//!   nobody answers (no node holds the prefix) is retried for about 130 ms, which covers the
//!   time NATS takes to spread a new subscription across its servers, and is then applied
//!   here, as a single node does with a channel nobody reads. A request that an owner does
//!   not answer in `--cluster-request-timeout-ms` fails with `OWNER_UNREACHABLE`.
//! - **publishes each group send once** on `<root>.v1.g.<ns>.<group>`, after its own
//!   fan-out. Every node subscribes to all group subjects on one subscription and fans a
//!   message out to the members it holds. A membership lives on the node holding its
//!   channel (a group_add of another node's channel is forwarded there), so each member
//!   gets each message once. NATS keeps one publisher's order on one subscription, so the
//!   members of a group get one sender's messages in order.
//! - **answers cluster-wide questions** (group size, members, flush) on
//!   `<root>.v1.ctl.survey`, and says it is up on `<root>.v1.ctl.hb`, so that the asking
//!   node knows whom to wait for.
//!
//! Normal channels (shared by several consumers, as `runworker` uses them) stay on the
//! node that a send or receive reaches in this version: a worker must read the node its
//! senders use.
//!
//! Nothing here runs under a hub lock: outgoing messages go through one bounded queue
//! drained by one task (which keeps this node's wire order, and never blocks the caller:
//! a full queue drops a group send, counted, and fails a request), and incoming ones are
//! handled by tasks that call the hub like any client.

mod config;
mod envelope;
mod subjects;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_nats::{Client, ConnectOptions, Event as NatsEvent, StatusCode, Subscriber};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt, future::BoxFuture};
use parking_lot::Mutex;
use prost::Message as _;
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::AbortHandle,
};

pub use self::config::{ClusterArgs, ClusterConfig};
use self::{
    envelope::{
        Envelope, GroupSendOp, Heartbeat, Member, MembershipOp, Op, Outcome, ProbeOp, Question,
        Reply, SendOp, Survey, SurveyReply, VERSION, error_to_wire, ms, outcome_from_wire,
        outcome_to_wire, rules_from_wire, rules_to_wire,
    },
    subjects::{Subjects, reply_seq},
};
use crate::{
    core::{CapacityRules, FlushReport, MembersPage},
    hub::{Backplane, Hub, HubError, OpOutcome, RemoteOp, Surveyed},
};

/// How long a request nobody answers is retried: NATS spreads a new subscription to its
/// other servers within about a millisecond on an idle machine, and within tens of
/// milliseconds on a loaded one, so this covers a session made right before (127 ms).
const NO_RESPONDER_RETRIES_MS: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];

/// Counters of cluster traffic, read by the metrics exporter.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Group sends published for other nodes.
    pub group_sends_published: AtomicU64,
    /// Group sends received from other nodes.
    pub group_sends_received: AtomicU64,
    /// Deliveries to this node's members of group sends from other nodes.
    pub remote_group_deliveries: AtomicU64,
    /// Operations forwarded to other nodes.
    pub requests_sent: AtomicU64,
    /// Operations other nodes forwarded here.
    pub requests_received: AtomicU64,
    /// Forwarded operations that no node held, applied here.
    pub no_owner: AtomicU64,
    /// Forwarded operations whose owner did not answer in time.
    pub request_timeouts: AtomicU64,
    /// Outgoing messages dropped because the publish queue was full.
    pub backlog_full: AtomicU64,
    /// Incoming messages that could not be read.
    pub bad_envelopes: AtomicU64,
    /// Reconnections to NATS.
    pub reconnects: AtomicU64,
    /// Cluster-wide questions answered without some nodes.
    pub partial_surveys: AtomicU64,
}

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A setting is wrong.
    #[error("cluster mode: {0}")]
    Config(String),
    /// NATS refused the connection's options.
    #[error("cluster mode: cannot connect to NATS: {0}")]
    Connect(String),
}

/// A request's sequence number and where its answer arrives.
type PendingReply = (u64, oneshot::Receiver<async_nats::Message>);

struct Outgoing {
    subject: String,
    reply: Option<String>,
    payload: Bytes,
}

enum RequestFailure {
    NoResponders,
    TimedOut,
    Backlog,
    Disconnected(String),
}

/// This node's part of a cluster: its NATS connection and what it holds.
pub struct Cluster {
    client: Client,
    node: String,
    subjects: Subjects,
    config: ClusterConfig,
    hub: OnceLock<Weak<Hub>>,
    outgoing: mpsc::Sender<Outgoing>,
    outgoing_rx: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<async_nats::Message>>>,
    next_seq: AtomicU64,
    /// Client prefixes held by sessions of this node, by namespace, with the task that
    /// serves each one's subject.
    prefixes: Mutex<HashMap<String, HashMap<String, Option<AbortHandle>>>>,
    /// Other nodes, by when they were last heard of.
    nodes: Mutex<HashMap<String, Instant>>,
    connected: watch::Sender<bool>,
    leaving: AtomicBool,
    stats: ClusterStats,
    tasks: Mutex<Vec<AbortHandle>>,
    this: OnceLock<Weak<Cluster>>,
}

impl Cluster {
    /// Connects to NATS (in the background: the node starts while NATS is unreachable,
    /// and reports not ready until it connects).
    pub async fn connect(config: ClusterConfig) -> Result<Arc<Self>, ClusterError> {
        let suffix: u32 = rand::random();
        let mut name = String::new();
        subjects::escape_into(&mut name, &config.node_name);
        let node = format!("{name}-{suffix:08x}");
        let (connected, _) = watch::channel(false);
        let events = connected.clone();
        let stats_slot: Arc<OnceLock<Weak<Cluster>>> = Arc::default();
        let stats_for_events = Arc::clone(&stats_slot);
        let mut options = ConnectOptions::new()
            .name(format!("chanlayer {node}"))
            .no_echo()
            .retain_servers_order()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .ping_interval(Duration::from_secs(2))
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(config.request_timeout))
            .client_capacity(config.publish_queue.clamp(128, 65_536))
            .subscription_capacity(65_536)
            .event_callback(move |event| {
                let events = events.clone();
                let slot = Arc::clone(&stats_for_events);
                async move {
                    match event {
                        NatsEvent::Connected => {
                            let was = events.send_replace(true);
                            if !was {
                                tracing::info!("connected to NATS");
                            }
                        }
                        NatsEvent::Disconnected => {
                            events.send_replace(false);
                            tracing::warn!("disconnected from NATS; reconnecting");
                            if let Some(cluster) = slot.get().and_then(Weak::upgrade) {
                                cluster.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        NatsEvent::SlowConsumer(sid) => {
                            tracing::warn!(
                                sid,
                                "a NATS subscription fell behind; messages were dropped"
                            );
                        }
                        other => tracing::debug!(event = %other, "NATS event"),
                    }
                }
            });
        if let Some(path) = &config.creds_file {
            options = options.credentials_file(path).await.map_err(|e| {
                ClusterError::Config(format!("credentials file {}: {e}", path.display()))
            })?;
        }
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &config.tls_client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let urls: Vec<async_nats::ServerAddr> = config
            .urls
            .iter()
            .map(|u| {
                u.parse()
                    .map_err(|e| ClusterError::Config(format!("NATS URL {u:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let client = options
            .connect(urls)
            .await
            .map_err(|e| ClusterError::Connect(e.to_string()))?;
        let (outgoing, outgoing_rx) = mpsc::channel(config.publish_queue);
        let cluster = Arc::new(Self {
            client,
            subjects: Subjects::new(&config.subject_prefix),
            node,
            config,
            hub: OnceLock::new(),
            outgoing,
            outgoing_rx: Mutex::new(Some(outgoing_rx)),
            pending: Mutex::default(),
            next_seq: AtomicU64::new(1),
            prefixes: Mutex::default(),
            nodes: Mutex::default(),
            connected,
            leaving: AtomicBool::new(false),
            stats: ClusterStats::default(),
            tasks: Mutex::default(),
            this: OnceLock::new(),
        });
        let _ = cluster.this.set(Arc::downgrade(&cluster));
        let _ = stats_slot.set(Arc::downgrade(&cluster));
        tracing::info!(node = %cluster.node, servers = ?cluster.config.urls, "cluster mode");
        Ok(cluster)
    }

    /// This node's id in the cluster: its name and a random suffix.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// Whether the node is connected to NATS now, and its changes.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.subscribe()
    }

    /// Counters of cluster traffic.
    pub fn stats(&self) -> &ClusterStats {
        &self.stats
    }

    /// Client prefixes this node holds.
    pub fn prefixes_held(&self) -> usize {
        self.prefixes.lock().values().map(HashMap::len).sum()
    }

    /// Other nodes heard from recently.
    pub fn nodes_seen(&self) -> usize {
        self.live_nodes().len()
    }

    /// Starts serving `hub`'s part of the cluster: the publisher, and the subscriptions
    /// for replies, group sends, questions and heartbeats.
    pub(crate) async fn start(self: &Arc<Self>, hub: &Arc<Hub>) -> Result<(), ClusterError> {
        let _ = self.hub.set(Arc::downgrade(hub));
        let subscribe = |subject: String| {
            let client = self.client.clone();
            async move {
                client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|e| ClusterError::Connect(format!("subscribe {subject}: {e}")))
            }
        };
        let replies = subscribe(self.subjects.replies(&self.node)).await?;
        let groups = subscribe(self.subjects.all_groups()).await?;
        let surveys = subscribe(self.subjects.survey()).await?;
        let heartbeats = subscribe(self.subjects.heartbeat()).await?;
        let rx = self.outgoing_rx.lock().take().expect("started once");
        let mut tasks = vec![
            tokio::spawn(Arc::clone(self).publish(rx)).abort_handle(),
            tokio::spawn(Arc::clone(self).read_replies(replies)).abort_handle(),
            tokio::spawn(Arc::clone(self).read_groups(groups)).abort_handle(),
            tokio::spawn(Arc::clone(self).read_surveys(surveys)).abort_handle(),
            tokio::spawn(Arc::clone(self).read_heartbeats(heartbeats)).abort_handle(),
            tokio::spawn(Arc::clone(self).beat()).abort_handle(),
            tokio::spawn(Arc::clone(self).watch_connection()).abort_handle(),
        ];
        self.tasks.lock().append(&mut tasks);
        Ok(())
    }

    /// Says goodbye to the other nodes and stops the node's tasks.
    pub async fn leave(&self) {
        self.leaving.store(true, Ordering::Relaxed);
        let bye = Heartbeat {
            version: VERSION,
            node: self.node.clone(),
            leaving: true,
        };
        let _ = self
            .client
            .publish(self.subjects.heartbeat(), bye.encode_to_vec().into())
            .await;
        let _ = tokio::time::timeout(Duration::from_millis(500), self.client.flush()).await;
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }

    fn hub(&self) -> Option<Arc<Hub>> {
        self.hub.get().and_then(Weak::upgrade)
    }

    fn live_nodes(&self) -> HashSet<String> {
        let horizon = self.config.heartbeat * 3;
        let now = Instant::now();
        let mut nodes = self.nodes.lock();
        nodes.retain(|_, seen| now.duration_since(*seen) < horizon);
        nodes.keys().cloned().collect()
    }

    /// Queues a message for the publisher; false when the queue is full.
    fn enqueue(&self, subject: String, reply: Option<String>, payload: Bytes) -> bool {
        match self.outgoing.try_send(Outgoing {
            subject,
            reply,
            payload,
        }) {
            Ok(()) => true,
            Err(_) => {
                self.stats.backlog_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    async fn publish(self: Arc<Self>, mut rx: mpsc::Receiver<Outgoing>) {
        while let Some(out) = rx.recv().await {
            let result = match out.reply {
                Some(reply) => {
                    self.client
                        .publish_with_reply(out.subject, reply, out.payload)
                        .await
                }
                None => self.client.publish(out.subject, out.payload).await,
            };
            if let Err(error) = result {
                tracing::warn!(%error, "publishing to NATS failed");
            }
        }
    }

    /// Sends `payload` to `subject` as a request and waits for its answer.
    async fn request(
        &self,
        subject: String,
        payload: Bytes,
    ) -> Result<async_nats::Message, RequestFailure> {
        let sent = self.send_request(subject, payload);
        self.answer_to(sent).await
    }

    /// Queues a request now, so that requests leave in the order they are made.
    fn send_request(
        &self,
        subject: String,
        payload: Bytes,
    ) -> Result<PendingReply, RequestFailure> {
        if !*self.connected.borrow() {
            return Err(RequestFailure::Disconnected("not connected to NATS".into()));
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(seq, tx);
        if !self.enqueue(subject, Some(self.subjects.reply(&self.node, seq)), payload) {
            self.pending.lock().remove(&seq);
            return Err(RequestFailure::Backlog);
        }
        self.stats.requests_sent.fetch_add(1, Ordering::Relaxed);
        Ok((seq, rx))
    }

    /// Waits for the answer to a request queued by [`Cluster::send_request`].
    async fn answer_to(
        &self,
        sent: Result<PendingReply, RequestFailure>,
    ) -> Result<async_nats::Message, RequestFailure> {
        let (seq, rx) = sent?;
        match tokio::time::timeout(self.config.request_timeout, rx).await {
            Ok(Ok(message)) if message.status == Some(StatusCode::NO_RESPONDERS) => {
                Err(RequestFailure::NoResponders)
            }
            Ok(Ok(message)) => Ok(message),
            Ok(Err(_)) => Err(RequestFailure::Disconnected(
                "the request was dropped".into(),
            )),
            Err(_) => {
                self.pending.lock().remove(&seq);
                Err(RequestFailure::TimedOut)
            }
        }
    }

    async fn read_replies(self: Arc<Self>, mut sub: Subscriber) {
        while let Some(message) = sub.next().await {
            let Some(seq) = reply_seq(&message.subject) else {
                continue;
            };
            if let Some(tx) = self.pending.lock().remove(&seq) {
                let _ = tx.send(message);
            }
        }
    }

    async fn read_groups(self: Arc<Self>, mut sub: Subscriber) {
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
    async fn serve_prefix(self: Arc<Self>, namespace: String, mut sub: Subscriber) {
        while let Some(message) = sub.next().await {
            let Some(reply) = message.reply else {
                continue;
            };
            let Some(hub) = self.hub() else { return };
            self.stats.requests_received.fetch_add(1, Ordering::Relaxed);
            let answer = match Envelope::decode(message.payload) {
                Ok(e) if e.version == VERSION => match e.op {
                    Some(Op::Probe(_)) => Reply {
                        outcome: Some(Outcome::Held(true)),
                    },
                    Some(Op::Send(op)) => outcome_to_wire(hub.apply_here(
                        &namespace,
                        RemoteOp::Send {
                            channel: op.channel,
                            payload: op.payload,
                            capacity: usize::try_from(op.capacity).unwrap_or(usize::MAX),
                            expiry: Duration::from_millis(op.expiry_ms),
                        },
                    )),
                    Some(Op::GroupAdd(op)) => outcome_to_wire(hub.apply_here(
                        &namespace,
                        RemoteOp::GroupAdd {
                            group: op.group,
                            channel: op.channel,
                            group_expiry: Duration::from_millis(op.group_expiry_ms),
                        },
                    )),
                    Some(Op::GroupDiscard(op)) => outcome_to_wire(hub.apply_here(
                        &namespace,
                        RemoteOp::GroupDiscard {
                            group: op.group,
                            channel: op.channel,
                        },
                    )),
                    Some(Op::GroupSend(_)) | None => {
                        self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                },
                _ => {
                    self.stats.bad_envelopes.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            self.enqueue(reply.to_string(), None, answer.encode_to_vec().into());
        }
    }

    async fn read_surveys(self: Arc<Self>, mut sub: Subscriber) {
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
    fn answer(&self, hub: &Hub, survey: Survey) -> SurveyReply {
        let mut reply = SurveyReply {
            node: self.node.clone(),
            ..SurveyReply::default()
        };
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
    async fn survey(
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

    async fn read_heartbeats(self: Arc<Self>, mut sub: Subscriber) {
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

    async fn beat(self: Arc<Self>) {
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

    /// Keeps `connected` true to the connection's state, also where no event said so.
    async fn watch_connection(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let up = self.client.connection_state() == async_nats::connection::State::Connected;
            self.connected.send_if_modified(|was| {
                let changed = *was != up;
                *was = up;
                changed
            });
        }
    }

    fn unreachable(&self, prefix: &str, failure: RequestFailure) -> HubError {
        match failure {
            RequestFailure::TimedOut => {
                self.stats.request_timeouts.fetch_add(1, Ordering::Relaxed);
                HubError::OwnerUnreachable {
                    client_prefix: prefix.to_owned(),
                    timeout_ms: ms(self.config.request_timeout),
                }
            }
            RequestFailure::Backlog => HubError::ClusterUnavailable {
                detail: "too many messages are waiting to be published to NATS".into(),
            },
            RequestFailure::Disconnected(detail) => HubError::ClusterUnavailable { detail },
            RequestFailure::NoResponders => HubError::ClusterUnavailable {
                detail: "no node answered".into(),
            },
        }
    }
}

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
                match this
                    .request(subject.clone(), envelope.encode_to_vec().into())
                    .await
                {
                    Err(RequestFailure::NoResponders) => {}
                    Ok(_) => {
                        return Err(HubError::ClientPrefixInUse { namespace, prefix });
                    }
                    Err(failure) => return Err(this.unreachable(&prefix, failure)),
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
            let mut prefixes = this.prefixes.lock();
            match prefixes
                .get_mut(&namespace)
                .and_then(|p| p.get_mut(&prefix))
            {
                Some(slot) => *slot = Some(task.abort_handle()),
                // Released while subscribing.
                None => task.abort(),
            }
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
        let this = self.me();
        // The first attempt is queued now: one session's operations leave in order.
        let mut sent = Some(self.send_request(subject.clone(), payload.clone()));
        async move {
            let Some(this) = this else {
                return Err(HubError::ShuttingDown);
            };
            let mut retries = NO_RESPONDER_RETRIES_MS.iter();
            loop {
                let attempt = match sent.take() {
                    Some(first) => first,
                    None => this.send_request(subject.clone(), payload.clone()),
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
                    Err(RequestFailure::NoResponders) => match retries.next() {
                        Some(delay) => tokio::time::sleep(Duration::from_millis(*delay)).await,
                        None => {
                            this.stats.no_owner.fetch_add(1, Ordering::Relaxed);
                            return Ok(None);
                        }
                    },
                    Err(failure) => return Err(this.unreachable(&prefix, failure)),
                }
            }
        }
        .boxed()
    }

    fn publish_group_send(
        &self,
        namespace: &str,
        group: &str,
        payload: Bytes,
        capacities: &CapacityRules,
        expiry: Duration,
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

    fn flush(
        &self,
        namespace: &str,
    ) -> BoxFuture<'static, Result<Surveyed<FlushReport>, HubError>> {
        let survey = self.ask(namespace, Question::Flush, "", "", 0);
        async move {
            let s = survey.await?;
            Ok(Surveyed {
                answers: s
                    .answers
                    .iter()
                    .map(|a| FlushReport {
                        dropped_messages: a.dropped_messages,
                        removed_groups: a.removed_groups,
                    })
                    .collect(),
                missing: s.missing,
            })
        }
        .boxed()
    }
}

impl Cluster {
    /// This node as an `Arc`, for the futures it hands out.
    fn me(&self) -> Option<Arc<Self>> {
        self.this.get().and_then(Weak::upgrade)
    }

    fn ask(
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
