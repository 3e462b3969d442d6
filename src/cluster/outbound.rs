//! What a node sends: one bounded queue drained by one publisher task (so this node's
//! messages leave in the order they were made and no caller ever waits on NATS), and
//! requests whose answers come back on the node's reply subject. Operations forwarded to
//! one client prefix's owner that wait in the queue back to back leave as one batch (one
//! NATS message and one answer), which the owner applies in order.

use super::*;

impl Cluster {
    /// Queues a message for the publisher; false when the queue is full.
    pub(super) fn enqueue(&self, subject: String, reply: Option<String>, payload: Bytes) -> bool {
        self.enqueue_with(Outgoing {
            subject,
            reply,
            headers: None,
            payload,
            batch: None,
        })
    }

    fn enqueue_with(&self, outgoing: Outgoing) -> bool {
        match self.outgoing.try_send(outgoing) {
            Ok(()) => true,
            Err(_) => {
                self.stats.backlog_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    pub(super) async fn publish(self: Arc<Self>, mut rx: mpsc::Receiver<Outgoing>) {
        let mut ready = Vec::with_capacity(BATCH_MAX);
        while rx.recv_many(&mut ready, BATCH_MAX).await > 0 {
            let mut queued = ready.drain(..).peekable();
            while let Some(mut out) = queued.next() {
                if let Some(first) = out.batch {
                    let mut run = Vec::new();
                    let mut bytes = out.payload.len();
                    while let Some(next) = queued.next_if(|n| {
                        n.batch.is_some()
                            && n.subject == out.subject
                            && run.len() + 1 < BATCH_MAX
                            && bytes + n.payload.len() <= BATCH_BYTES
                    }) {
                        bytes += next.payload.len();
                        run.push(next);
                    }
                    if !run.is_empty() {
                        out = self.batch_of(first, out, run);
                    }
                }
                self.publish_one(out).await;
            }
        }
    }

    /// One message carrying `first` and the requests of `rest`, answered on `first`'s
    /// reply subject.
    fn batch_of(&self, first: u64, out: Outgoing, rest: Vec<Outgoing>) -> Outgoing {
        let mut seqs = Vec::with_capacity(rest.len() + 1);
        let mut envelopes = Vec::with_capacity(rest.len() + 1);
        seqs.push(first);
        envelopes.push(out.payload);
        for next in rest {
            seqs.extend(next.batch);
            envelopes.push(next.payload);
        }
        self.batches.lock().insert(first, seqs);
        self.stats.batches_sent.fetch_add(1, Ordering::Relaxed);
        let batch = Envelope {
            version: VERSION,
            namespace: String::new(),
            origin: self.node.clone(),
            op: Some(Op::Batch(BatchOp { envelopes })),
        };
        Outgoing {
            subject: out.subject,
            reply: out.reply,
            headers: None,
            payload: batch.encode_to_vec().into(),
            batch: None,
        }
    }

    async fn publish_one(&self, out: Outgoing) {
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
        self.send_request_with(subject, None, payload, false)
    }

    /// [`Cluster::send_request`] for an operation forwarded to the owner of a client
    /// prefix: it may leave in a batch with the ones queued next to it.
    pub(super) fn send_forwarded(
        &self,
        subject: String,
        payload: Bytes,
    ) -> Result<PendingReply, RequestFailure> {
        self.send_request_with(subject, None, payload, true)
    }

    /// [`Cluster::send_request`] with headers, batched or not.
    pub(super) fn send_request_with(
        &self,
        subject: String,
        headers: Option<async_nats::HeaderMap>,
        payload: Bytes,
        batched: bool,
    ) -> Result<PendingReply, RequestFailure> {
        if !*self.connected.borrow() {
            return Err(RequestFailure::Disconnected("not connected to NATS".into()));
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(seq, tx);
        let reply = Some(self.subjects.reply(&self.node, seq));
        let outgoing = Outgoing {
            subject,
            reply,
            headers,
            payload,
            batch: batched.then_some(seq),
        };
        if !self.enqueue_with(outgoing) {
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
                self.batches.lock().remove(&seq);
                Err(RequestFailure::TimedOut)
            }
        }
    }

    pub(super) async fn read_replies(self: Arc<Self>, mut sub: Subscriber) {
        while let Some(message) = sub.next().await {
            let Some(seq) = reply_seq(&message.subject) else {
                continue;
            };
            let batch = self.batches.lock().remove(&seq);
            match batch {
                None => {
                    if let Some(tx) = self.pending.lock().remove(&seq) {
                        let _ = tx.send(message);
                    }
                }
                Some(seqs) => self.answer_batch(seqs, message),
            }
        }
    }

    /// Hands each request of a batch its own answer; a batch-wide answer (no responders,
    /// or one that cannot be read) goes to each of them.
    fn answer_batch(&self, seqs: Vec<u64>, message: async_nats::Message) {
        let replies = match message.status {
            Some(status) if status == StatusCode::NO_RESPONDERS => None,
            _ => BatchReply::decode(message.payload.clone())
                .ok()
                .filter(|b| b.replies.len() == seqs.len()),
        };
        let mut pending = self.pending.lock();
        match replies {
            Some(batch) => {
                for (seq, reply) in seqs.into_iter().zip(batch.replies) {
                    if let Some(tx) = pending.remove(&seq) {
                        let mut one = message.clone();
                        one.payload = reply;
                        let _ = tx.send(one);
                    }
                }
            }
            None => {
                for seq in seqs {
                    if let Some(tx) = pending.remove(&seq) {
                        let _ = tx.send(message.clone());
                    }
                }
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
