//! What a node sends: one bounded queue drained by one publisher task (so this node's
//! messages leave in the order they were made and no caller ever waits on NATS), and
//! requests whose answers come back on the node's reply subject.

use super::*;

impl Cluster {
    /// Queues a message for the publisher; false when the queue is full.
    pub(super) fn enqueue(&self, subject: String, reply: Option<String>, payload: Bytes) -> bool {
        self.enqueue_with(subject, reply, None, payload)
    }

    /// [`Cluster::enqueue`] with headers.
    fn enqueue_with(
        &self,
        subject: String,
        reply: Option<String>,
        headers: Option<async_nats::HeaderMap>,
        payload: Bytes,
    ) -> bool {
        match self.outgoing.try_send(Outgoing {
            subject,
            reply,
            headers,
            payload,
        }) {
            Ok(()) => true,
            Err(_) => {
                self.stats.backlog_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    pub(super) async fn publish(self: Arc<Self>, mut rx: mpsc::Receiver<Outgoing>) {
        while let Some(out) = rx.recv().await {
            let result = match (out.reply, out.headers) {
                (Some(reply), Some(headers)) => {
                    self.client
                        .publish_with_reply_and_headers(out.subject, reply, headers, out.payload)
                        .await
                }
                (Some(reply), None) => {
                    self.client
                        .publish_with_reply(out.subject, reply, out.payload)
                        .await
                }
                (None, Some(headers)) => {
                    self.client
                        .publish_with_headers(out.subject, headers, out.payload)
                        .await
                }
                (None, None) => self.client.publish(out.subject, out.payload).await,
            };
            if let Err(error) = result {
                tracing::warn!(%error, "publishing to NATS failed");
            }
        }
    }

    /// Sends `payload` to `subject` as a request and waits for its answer.
    pub(super) async fn request(
        &self,
        subject: String,
        payload: Bytes,
    ) -> Result<async_nats::Message, RequestFailure> {
        let sent = self.send_request(subject, payload);
        self.answer_to(sent).await
    }

    /// Queues a request now, so that requests leave in the order they are made.
    pub(super) fn send_request(
        &self,
        subject: String,
        payload: Bytes,
    ) -> Result<PendingReply, RequestFailure> {
        self.send_request_with(subject, None, payload)
    }

    /// [`Cluster::send_request`] with headers.
    pub(super) fn send_request_with(
        &self,
        subject: String,
        headers: Option<async_nats::HeaderMap>,
        payload: Bytes,
    ) -> Result<PendingReply, RequestFailure> {
        if !*self.connected.borrow() {
            return Err(RequestFailure::Disconnected("not connected to NATS".into()));
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(seq, tx);
        let reply = Some(self.subjects.reply(&self.node, seq));
        if !self.enqueue_with(subject, reply, headers, payload) {
            self.pending.lock().remove(&seq);
            return Err(RequestFailure::Backlog);
        }
        self.stats.requests_sent.fetch_add(1, Ordering::Relaxed);
        Ok((seq, rx))
    }

    /// Waits for the answer to a request queued by [`Cluster::send_request`].
    pub(super) async fn answer_to(
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

    pub(super) async fn read_replies(self: Arc<Self>, mut sub: Subscriber) {
        while let Some(message) = sub.next().await {
            let Some(seq) = reply_seq(&message.subject) else {
                continue;
            };
            if let Some(tx) = self.pending.lock().remove(&seq) {
                let _ = tx.send(message);
            }
        }
    }

    pub(super) fn unreachable(&self, prefix: &str, failure: RequestFailure) -> HubError {
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
