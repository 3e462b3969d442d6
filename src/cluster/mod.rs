//! Cluster mode: chanlayer nodes that share channels and groups through NATS.
//!
//! Off unless `--cluster-nats-url` is set; then the hub gets this module's [`Cluster`] as
//! its [`Backplane`] and each node:
//! - **holds the process-specific channels of its own sessions.** A new session's client
//!   prefix is probed cluster-wide (a proposed prefix another node holds is refused) and
//!   subscribed on `<root>.v1.p.<ns>.<prefix>`. A send, group_add or group_discard naming
//!   another node's channel is a NATS request to that subject, applied by the owner's core,
//!   so capacity (`CHANNEL_FULL`), expiry and errors are exactly a local send's. A request
//!   nobody answers (no node holds the prefix) is retried for about 0.5 s, which covers the
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
//! - **queues normal channels** (shared by several consumers, as `runworker` uses them)
//!   in one JetStream work-queue stream that every node reads (see `queues`), unless
//!   `--cluster-normal-channels node-local` keeps them on each node.
//!
//! Nothing here runs under a hub lock: outgoing messages go through one bounded queue
//! drained by one task (which keeps this node's wire order, and never blocks the caller:
//! a full queue drops a group send, counted, and fails a request), and incoming ones are
//! handled by tasks that call the hub like any client.

mod backplane;
mod config;
mod envelope;
mod inbound;
mod outbound;
mod queues;
mod subjects;
mod survey;

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

pub use self::config::{ClusterArgs, ClusterConfig, NormalChannels, NormalStorage};
use self::{
    envelope::{
        BatchOp, BatchReply, ClaimedOp, Envelope, GroupSendOp, Heartbeat, Member, MembershipOp,
        NodeStats, Op, Outcome, ProbeOp, Question, Reply, SendOp, Survey, SurveyReply, VERSION,
        error_to_wire, ms, outcome_from_wire, outcome_to_wire, rules_from_wire, rules_to_wire,
    },
    queues::Queues,
    subjects::{Subjects, reply_seq},
};
use crate::{
    core::{CapacityRules, FlushReport, MembersPage},
    hub::{Backplane, Hub, HubError, HubStats, OpOutcome, RemoteOp, Surveyed},
};

/// How long a forwarded operation nobody answers is retried, when another node claimed
/// its client prefix lately ([`CLAIM_FRESH_FOR`]): NATS spreads a new subscription to its
/// other servers within about a millisecond on an idle machine, and has been seen to take
/// over 100 ms on a loaded one, so this covers a session made right before (511 ms in all).
const NO_RESPONDER_RETRIES_MS: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// How long another node's claim of a client prefix counts as recent: an operation for
/// the prefix that nobody answers is retried within it. A prefix claimed before (or never
/// announced here) is not waited for: the operation is kept here at once, and handed over
/// when the claim's announcement comes or a probe finds the holder.
const CLAIM_FRESH_FOR: Duration = Duration::from_secs(10);

/// The most recent claims remembered.
const CLAIMS_MAX: usize = 100_000;

/// The most forwarded operations one batch carries.
const BATCH_MAX: usize = 64;

/// The most bytes of operations one batch carries, well under NATS' default
/// `max_payload` (1 MiB); a larger operation leaves alone.
const BATCH_BYTES: usize = 256 * 1024;

/// How often a node asks whether a node holds the client prefixes it kept operations for.
const KEPT_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How long it keeps asking: past it, what it kept has expired or is left where it is.
const KEPT_PROBE_FOR: Duration = Duration::from_secs(600);

/// The most client prefixes it keeps asking about.
const KEPT_MAX: usize = 100_000;

/// How long a probe for a proposed client prefix that nobody answers is retried.
const PROBE_RETRIES_MS: [u64; 2] = [2, 4];

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
    /// NATS messages that carried several forwarded operations.
    pub batches_sent: AtomicU64,
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
    /// Messages or memberships kept for a client prefix that could not be handed to the
    /// node that came to hold it.
    pub handover_failures: AtomicU64,
    /// Messages queued on normal channels in the cluster's stream.
    pub normal_queued: AtomicU64,
    /// Messages refused by the stream because their normal channel was full.
    pub normal_full: AtomicU64,
    /// Group-send copies for normal members that could not be queued.
    pub normal_dropped: AtomicU64,
    /// Messages of normal channels fetched for receives of this node.
    pub normal_fetched: AtomicU64,
    /// Fetched messages dropped because they had expired.
    pub normal_expired: AtomicU64,
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
    headers: Option<async_nats::HeaderMap>,
    payload: Bytes,
    /// For an operation forwarded to a client prefix's owner: the request's sequence
    /// number. Such requests to one subject that wait back to back leave as one batch.
    batch: Option<u64>,
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
    /// Batches waiting for their answer, by the first request's sequence number (whose
    /// reply subject the batch uses): every request's sequence number, in order.
    batches: Mutex<HashMap<u64, Vec<u64>>>,
    next_seq: AtomicU64,
    /// Client prefixes held by sessions of this node, by namespace, with the task that
    /// serves each one's subject.
    prefixes: Mutex<HashMap<String, HashMap<String, Option<AbortHandle>>>>,
    /// Client prefixes no node held when an operation for them came, so this node kept
    /// it, by when: they are probed until a node holds them (and then handed over), in
    /// case that node's announcement did not reach this one (a NATS outage or partition).
    kept: Mutex<HashMap<(String, String), Instant>>,
    /// Client prefixes other nodes announced they claimed, by when, for
    /// [`CLAIM_FRESH_FOR`].
    claims: Mutex<HashMap<(String, String), Instant>>,
    /// Other nodes, by when they were last heard of.
    nodes: Mutex<HashMap<String, Instant>>,
    connected: watch::Sender<bool>,
    /// Connected, and the normal channels' stream is there (when the cluster shares them).
    ready: watch::Sender<bool>,
    queues: Option<Queues>,
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
        let queues = config
            .normal
            .shared
            .then(|| Queues::new(client.clone(), &config.subject_prefix));
        let cluster = Arc::new(Self {
            client,
            subjects: Subjects::new(&config.subject_prefix),
            node,
            config,
            hub: OnceLock::new(),
            outgoing,
            outgoing_rx: Mutex::new(Some(outgoing_rx)),
            pending: Mutex::default(),
            batches: Mutex::default(),
            next_seq: AtomicU64::new(1),
            prefixes: Mutex::default(),
            kept: Mutex::default(),
            claims: Mutex::default(),
            nodes: Mutex::default(),
            connected,
            ready: watch::channel(false).0,
            queues,
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

    /// Whether the node can serve its part of the cluster: connected to NATS and, when the
    /// cluster shares normal channels, their stream found. Its changes.
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
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
        let claims = subscribe(self.subjects.claimed()).await?;
        let rx = self.outgoing_rx.lock().take().expect("started once");
        let mut tasks = vec![
            tokio::spawn(Arc::clone(self).publish(rx)).abort_handle(),
            tokio::spawn(Arc::clone(self).read_replies(replies)).abort_handle(),
            tokio::spawn(Arc::clone(self).read_groups(groups)).abort_handle(),
            tokio::spawn(Arc::clone(self).read_surveys(surveys)).abort_handle(),
            tokio::spawn(Arc::clone(self).read_heartbeats(heartbeats)).abort_handle(),
            tokio::spawn(Arc::clone(self).read_claims(claims)).abort_handle(),
            tokio::spawn(Arc::clone(self).beat()).abort_handle(),
            tokio::spawn(Arc::clone(self).watch_connection()).abort_handle(),
            tokio::spawn(Arc::clone(self).ensure_stream()).abort_handle(),
            tokio::spawn(Arc::clone(self).probe_kept()).abort_handle(),
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

    /// Keeps `connected` true to the connection's state, also where no event said so, and
    /// `ready` to `connected` and the normal channels' stream.
    async fn watch_connection(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let set = |watch: &watch::Sender<bool>, now: bool| {
            watch.send_if_modified(|was| {
                let changed = *was != now;
                *was = now;
                changed
            });
        };
        let mut checks = 0u32;
        loop {
            tick.tick().await;
            checks = checks.wrapping_add(1);
            if checks.is_multiple_of(3) {
                let up = self.client.connection_state() == async_nats::connection::State::Connected;
                set(&self.connected, up);
            }
            let stream = self.queues.as_ref().is_none_or(Queues::ready);
            set(&self.ready, *self.connected.borrow() && stream);
        }
    }

    /// This node as an `Arc`, for the futures it hands out.
    fn me(&self) -> Option<Arc<Self>> {
        self.this.get().and_then(Weak::upgrade)
    }
}
