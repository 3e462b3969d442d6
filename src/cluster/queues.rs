//! Normal channels shared by the whole cluster (`--cluster-normal-channels jetstream`, the
//! default): one JetStream work-queue stream holds every namespace's normal channels, a
//! subject each (`<root>.v1.q.<ns>.<channel>`), so that a message sent through any node is
//! received once, by one receive on any node.
//!
//! - **Send.** A JetStream publish through the node's publish queue (so one client's sends
//!   keep their order), answered by the stream's acknowledgement. The stream refuses a
//!   message past `--cluster-normal-capacity` messages on its subject
//!   (`max_msgs_per_subject`, `discard: new`, `discard_new_per_subject`): that refusal is
//!   `CHANNEL_FULL`, as on a single node.
//! - **Capacity** is exact, and one value for every normal channel: the stream is the only
//!   place that counts, so nodes cannot disagree. A request's own capacity and
//!   `channel_capacity` rules do not apply to normal channels in cluster mode.
//! - **Expiry.** The message carries its deadline in a header; a node drops it at fetch
//!   time once passed (never delivered late). The stream's `max_age`
//!   (`--cluster-normal-max-age-ms`) removes it from the stream: until then an expired
//!   message still counts toward its channel's capacity, and a message that should live
//!   longer than `max_age` is gone at `max_age`.
//! - **Receive.** While receives of this node wait on a channel, one task per channel pulls
//!   as many messages as those receives would take (one each, or a prefetching receive's
//!   `max_messages`, up to [`FETCH_AHEAD_MAX`] in flight) from a durable consumer that every
//!   node shares (one per channel, removed by NATS after some idle minutes), acknowledges
//!   each on arrival (waiting for the stream to confirm, so that the message's place in
//!   the channel is free before a receive has it) and hands it to the node's core, which
//!   gives it to the oldest
//!   waiting receive; the rest of a prefetching receive's batch waits here for its next
//!   receive, which takes it without a trip to NATS. A message fetched for a receive
//!   cancelled meanwhile stays queued on this node, for its next receive on that channel,
//!   until its expiry.
//! - **Group sends** to a normal member publish the member's copy with a message id made of
//!   the group send's id and the channel: where several nodes hold that membership, the
//!   stream's duplicate window keeps one copy.

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use async_nats::{
    HeaderMap,
    jetstream::{
        self,
        consumer::{AckPolicy, DeliverPolicy, pull},
        publish::PublishAck,
        response::Response,
        stream::{Config as StreamConfig, DiscardPolicy, RetentionPolicy, StorageType},
    },
};
use futures_util::stream::{self, FuturesOrdered, SelectAll};
use tokio::sync::Notify;

use super::{config::NormalStorage, *};
use crate::core::CoreError;

/// The header that carries a message's deadline, in milliseconds since the Unix epoch.
const EXPIRES_HEADER: &str = "Chanlayer-Expires";

/// How long one pull request waits for messages before it is made again.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// The most messages one pull request asks for.
const PULL_MAX: usize = 256;

/// The most messages of one channel this node has asked for and not yet handed to its
/// core, whatever its receives' `max_messages` add up to.
const FETCH_AHEAD_MAX: usize = 1024;

/// A durable consumer nobody pulled from for this long is removed by NATS.
const CONSUMER_IDLE: Duration = Duration::from_secs(300);

/// A message that a consumer delivered but whose acknowledgement was lost is delivered
/// again after this long.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// The stream and the channels this node pulls from.
pub(super) struct Queues {
    js: jetstream::Context,
    name: String,
    stream: Mutex<Option<jetstream::stream::Stream>>,
    /// Channels with a pulling task, each with the signal that more receives wait.
    pulling: Mutex<HashMap<(String, String), Arc<Notify>>>,
}

impl Queues {
    pub(super) fn new(client: Client, root: &str) -> Self {
        Self {
            // JetStream's API answers within milliseconds when it can; a call that gets no
            // answer (its leader being elected, or its interest not yet known to this
            // node's server) is made again soon rather than waited on for long.
            js: jetstream::ContextBuilder::new()
                .timeout(Duration::from_secs(1))
                .build(client),
            name: stream_name(root),
            stream: Mutex::default(),
            pulling: Mutex::default(),
        }
    }

    /// True once the stream exists (this node created or found it).
    pub(super) fn ready(&self) -> bool {
        self.stream.lock().is_some()
    }
}

/// The stream's name: the subject prefix in capitals, dots made underscores.
fn stream_name(root: &str) -> String {
    format!("{}_QUEUES", root.replace('.', "_").to_ascii_uppercase())
}

/// A consumer name for a subject: FNV-1a over it, 128 bits, so that no two channels share
/// one (consumer names cannot hold the subject's dots).
fn consumer_name(subject: &str) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in subject.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    format!("q_{hash:032x}")
}

fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, ms)
}

impl Cluster {
    fn queues(&self) -> Option<&Queues> {
        self.queues.as_ref()
    }

    /// Creates the stream, or brings its settings to this node's, retrying until NATS
    /// answers; the node is not ready before.
    pub(super) async fn ensure_stream(self: Arc<Self>) {
        let Some(queues) = self.queues() else { return };
        let config = StreamConfig {
            name: queues.name.clone(),
            subjects: vec![self.subjects.all_queues()],
            retention: RetentionPolicy::WorkQueue,
            storage: match self.config.normal.storage {
                NormalStorage::Memory => StorageType::Memory,
                NormalStorage::File => StorageType::File,
            },
            num_replicas: self.config.normal.replicas,
            max_messages_per_subject: self.config.normal.capacity as i64,
            discard: DiscardPolicy::New,
            discard_new_per_subject: true,
            max_age: self.config.normal.max_age,
            duplicate_window: self.config.normal.max_age.min(Duration::from_secs(30)),
            ..Default::default()
        };
        let mut delay = Duration::from_millis(50);
        for attempt in 0u64.. {
            match queues.js.create_or_update_stream(config.clone()).await {
                Ok(_) => match queues.js.get_stream(&queues.name).await {
                    Ok(stream) => {
                        tracing::info!(stream = %queues.name, "normal channels are shared through JetStream");
                        *queues.stream.lock() = Some(stream);
                        return;
                    }
                    Err(error) => tracing::debug!(%error, "JetStream stream lookup failed"),
                },
                // Said at once, then about every 30 s: the node is not ready meanwhile.
                Err(error) if attempt % 16 == 0 => tracing::warn!(
                    %error,
                    stream = %queues.name,
                    "cannot create the JetStream stream of normal channels; retrying (is JetStream enabled on the NATS servers? --cluster-normal-channels node-local does without)"
                ),
                Err(error) => tracing::debug!(%error, "JetStream stream creation failed"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// Fails at once when normal channels cannot be reached.
    fn check_queues(&self) -> Result<&Queues, HubError> {
        self.check()?;
        match self.queues() {
            Some(q) if q.ready() => Ok(q),
            _ => Err(HubError::ClusterUnavailable {
                detail: "the JetStream stream of normal channels is not available yet".into(),
            }),
        }
    }

    fn queue_headers(&self, expiry: Duration, id: Option<String>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let deadline = unix_ms_now().saturating_add(ms(expiry));
        headers.insert(EXPIRES_HEADER, deadline.to_string().as_str());
        if let Some(id) = id {
            headers.insert("Nats-Msg-Id", id.as_str());
        }
        headers
    }

    /// Queues a message on a normal channel (see [`Backplane::send_normal`]): the request
    /// leaves now, in order with this node's other messages.
    pub(super) fn queue_send(
        &self,
        namespace: &str,
        channel: &str,
        payload: Bytes,
        expiry: Duration,
        id: Option<String>,
    ) -> BoxFuture<'static, Result<OpOutcome, HubError>> {
        if let Err(error) = self.check_queues() {
            return std::future::ready(Err(error)).boxed();
        }
        let subject = self.subjects.queue(namespace, channel);
        let headers = self.queue_headers(expiry, id);
        let sent = self.send_request_with(subject, Some(headers), payload, false);
        let this = self.me();
        let channel = channel.to_owned();
        async move {
            let Some(this) = this else {
                return Err(HubError::ShuttingDown);
            };
            let answer = this.answer_to(sent).await;
            this.queue_answer(&channel, answer)
        }
        .boxed()
    }

    /// What the stream's acknowledgement of a publish says.
    fn queue_answer(
        &self,
        channel: &str,
        answer: Result<async_nats::Message, RequestFailure>,
    ) -> Result<OpOutcome, HubError> {
        let unavailable = |detail: String| HubError::ClusterUnavailable { detail };
        let message = match answer {
            Ok(message) => message,
            Err(RequestFailure::NoResponders) => {
                return Err(unavailable(
                    "no NATS server holds the JetStream stream of normal channels".into(),
                ));
            }
            Err(RequestFailure::TimedOut) => {
                self.stats.request_timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(unavailable(format!(
                    "JetStream did not acknowledge a message for {channel:?} within {} ms; it may or may not be queued",
                    ms(self.config.request_timeout)
                )));
            }
            Err(failure) => return Err(self.unreachable("", failure)),
        };
        match serde_json::from_slice::<Response<PublishAck>>(&message.payload) {
            Ok(Response::Ok(_)) => {
                self.stats.normal_queued.fetch_add(1, Ordering::Relaxed);
                // The stream's answer does not say how full the channel is: the client
                // is told nothing, so it lets no send complete before its result.
                Ok(OpOutcome::Sent {
                    delivered: false,
                    queued: None,
                })
            }
            // JSStreamStoreFailedF is the stream refusing past `max_msgs_per_subject`
            // with `discard_new_per_subject`.
            Ok(Response::Err { error }) if error.error_code().0 == 10077 => {
                self.stats.normal_full.fetch_add(1, Ordering::Relaxed);
                Err(HubError::Core(CoreError::ChannelFull {
                    channel: channel.to_owned(),
                    capacity: self.config.normal.capacity,
                }))
            }
            Ok(Response::Err { error }) => Err(unavailable(format!(
                "JetStream refused a message for {channel:?}: {error}"
            ))),
            Err(error) => Err(unavailable(format!(
                "JetStream's answer for {channel:?} is unreadable: {error}"
            ))),
        }
    }

    /// Makes sure a task pulls `channel` for this node's waiting receives.
    pub(super) fn want(&self, namespace: &str, channel: &str) {
        let (Some(queues), Some(this)) = (self.queues(), self.me()) else {
            return;
        };
        let key = (namespace.to_owned(), channel.to_owned());
        let mut pulling = queues.pulling.lock();
        if let Some(more) = pulling.get(&key) {
            more.notify_one();
            return;
        }
        let more = Arc::new(Notify::new());
        pulling.insert(key.clone(), Arc::clone(&more));
        let task = tokio::spawn(this.pull(key, more));
        drop(task);
    }

    /// Pulls `channel` while receives of this node wait on it, from the consumer every
    /// node shares: as many messages as those receives would take (each its
    /// `max_messages`), at most [`FETCH_AHEAD_MAX`] asked for and not yet handed over.
    async fn pull(self: Arc<Self>, key: (String, String), more: Arc<Notify>) {
        let Some(queues) = self.queues() else { return };
        let (namespace, channel) = (&key.0, &key.1);
        let subject = self.subjects.queue(namespace, channel);
        let mut consumer = None;
        let mut batches = SelectAll::new();
        // Messages asked for and not yet come, in all and by pull request.
        let mut outstanding = 0usize;
        let mut asked: HashMap<u64, usize> = HashMap::new();
        let mut next_batch = 0u64;
        // Fetched messages whose acknowledgement is on its way, delivered in fetch order as
        // it is confirmed: several acknowledgements are in flight at once.
        let mut acking = FuturesOrdered::new();
        let mut delay = Duration::from_millis(50);
        loop {
            let Some(hub) = self.hub() else { return };
            let demand = hub.demand(namespace, channel);
            if demand.receives == 0 && batches.is_empty() && acking.is_empty() {
                // Checked again under the lock that `want` takes after a receive
                // registers, so that no receive is left without a puller.
                let mut pulling = queues.pulling.lock();
                if hub.demand(namespace, channel).receives == 0 {
                    pulling.remove(&key);
                    return;
                }
                continue;
            }
            let coming = outstanding + acking.len();
            let wanted = demand.messages.min(FETCH_AHEAD_MAX);
            if wanted > coming && *self.connected.borrow() {
                if consumer.is_none() {
                    consumer = self.consumer(queues, &subject).await;
                }
                let wanted = (wanted - coming).min(PULL_MAX);
                let batch = match &consumer {
                    Some(c) => c
                        .batch()
                        .max_messages(wanted)
                        .expires(PULL_EXPIRES)
                        .messages()
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err("no consumer".into()),
                };
                match batch {
                    Ok(batch) => {
                        next_batch += 1;
                        let id = next_batch;
                        asked.insert(id, wanted);
                        outstanding += wanted;
                        batches.push(
                            batch
                                .map(move |m| (id, Some(m)))
                                .chain(stream::once(std::future::ready((id, None))))
                                .boxed(),
                        );
                        delay = Duration::from_millis(50);
                    }
                    Err(error) => {
                        tracing::debug!(%error, channel, "pulling a normal channel failed; retrying");
                        consumer = None;
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            tokio::select! {
                () = more.notified() => {}
                () = tokio::time::sleep(PULL_EXPIRES), if batches.is_empty() && acking.is_empty() => {}
                Some(message) = acking.next(), if !acking.is_empty() => {
                    self.take(&hub, namespace, channel, message);
                }
                item = batches.next(), if !batches.is_empty() => match item {
                    Some((id, Some(Ok(message)))) => {
                        if let Some(left) = asked.get_mut(&id)
                            && *left > 0
                        {
                            *left -= 1;
                            outstanding -= 1;
                        }
                        acking.push_back(self.acknowledge(message));
                    }
                    Some((_, Some(Err(error)))) => {
                        tracing::debug!(%error, channel, "a pull request of a normal channel ended");
                    }
                    Some((id, None)) => {
                        outstanding -= asked.remove(&id).unwrap_or(0);
                    }
                    None => {}
                },
            }
        }
    }

    /// The consumer every node pulls `subject` from, made on first use.
    async fn consumer(
        &self,
        queues: &Queues,
        subject: &str,
    ) -> Option<jetstream::consumer::Consumer<pull::Config>> {
        let stream = queues.stream.lock().clone()?;
        let name = consumer_name(subject);
        let config = pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            inactive_threshold: CONSUMER_IDLE,
            max_waiting: 4096,
            ..Default::default()
        };
        match stream.get_or_create_consumer(&name, config).await {
            Ok(consumer) => Some(consumer),
            Err(error) => {
                tracing::warn!(%error, subject, "cannot make the consumer of a normal channel");
                None
            }
        }
    }

    /// Acknowledges a fetched message, and gives it back once the stream confirmed: by the
    /// time a receive has it, its place in the channel is free again, as on a single node.
    fn acknowledge(&self, message: jetstream::Message) -> BoxFuture<'static, jetstream::Message> {
        let client = self.client.clone();
        async move {
            if let Some(reply) = message.message.reply.clone() {
                let acked = client.request(reply, Bytes::from_static(b"+ACK")).await;
                if let Err(error) = acked {
                    tracing::debug!(%error, "acknowledging a normal channel's message failed");
                }
            }
            message
        }
        .boxed()
    }

    /// Gives a fetched and acknowledged message to this node's core, unless expired.
    fn take(&self, hub: &Hub, namespace: &str, channel: &str, message: jetstream::Message) {
        self.stats.normal_fetched.fetch_add(1, Ordering::Relaxed);
        let deadline = message
            .headers
            .as_ref()
            .and_then(|h| h.get(EXPIRES_HEADER))
            .and_then(|v| v.as_str().parse::<u64>().ok());
        let left = match deadline {
            Some(deadline) => deadline.saturating_sub(unix_ms_now()),
            None => ms(self.config.normal.max_age),
        };
        if left == 0 {
            self.stats.normal_expired.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let payload = message.message.payload.clone();
        if let Err(error) =
            hub.deliver_fetched(namespace, channel, payload, Duration::from_millis(left))
        {
            tracing::warn!(%error, channel, "a normal channel's message could not be queued here");
        }
    }

    /// Removes every queued message of `namespace`'s normal channels.
    pub(super) async fn purge_queues(&self, namespace: &str) -> Result<u64, HubError> {
        let Some(queues) = self.queues() else {
            return Ok(0);
        };
        let Some(stream) = queues.stream.lock().clone() else {
            return Err(HubError::ClusterUnavailable {
                detail: "the JetStream stream of normal channels is not available yet".into(),
            });
        };
        stream
            .purge()
            .filter(self.subjects.namespace_queues(namespace))
            .await
            .map(|r| r.purged)
            .map_err(|e| HubError::ClusterUnavailable {
                detail: format!("purging the normal channels failed: {e}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_for_nats() {
        assert_eq!(stream_name("chanlayer"), "CHANLAYER_QUEUES");
        assert_eq!(stream_name("prod.chat-1"), "PROD_CHAT-1_QUEUES");
        let a = consumer_name("chanlayer.v1.q.nasgi.a");
        let b = consumer_name("chanlayer.v1.q.nasgi.b");
        assert_ne!(a, b);
        assert_eq!(a.len(), 34);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
    }
}
