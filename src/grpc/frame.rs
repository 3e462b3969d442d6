//! Server frames of a Session stream, built from the hub's events: deliveries (merged
//! into shared deliveries where the stream asked for them), results, failures, cancels and
//! the closing notice.

use std::{sync::Arc, time::Duration};

use crate::{
    core::Message,
    grpc::{ms, status::to_detail},
    hub::{CloseReason, Event, OpOutcome, Opened},
    proto::v1::{self as pb, session_event},
};

pub(super) fn opened_event(
    opened: &Opened,
    lease_grace: Duration,
    max_message_bytes: usize,
    max_pending_receives: usize,
) -> pb::SessionEvent {
    pb::SessionEvent {
        event: Some(session_event::Event::Opened(pb::SessionOpened {
            client_prefix: opened.client_prefix.clone(),
            resume_token: opened.resume_token.clone(),
            resumed: opened.resumed,
            lease_grace_ms: ms(lease_grace),
            max_message_bytes: max_message_bytes as u64,
            max_pending_receives: max_pending_receives.min(u32::MAX as usize) as u32,
        })),
    }
}

/// Builds one server frame of `events`.
///
/// On a stream opened with `shared_deliveries`, consecutive one-message deliveries of the
/// same message (the members of a group that wait on this stream, as one group send left
/// them in the outbox) become one `SharedDelivery`: the message is encoded once and each
/// receive costs its id, instead of a `Delivery` with the channel name and a copy of the
/// message each. Order is kept: only neighbours merge.
pub(super) fn to_frame(events: Vec<Event>, shared: bool) -> pb::SessionResponse {
    let now = tokio::time::Instant::now().into_std();
    let mut out = Vec::with_capacity(events.len());
    let mut run: Option<Run> = None;
    for event in events {
        match event {
            Event::Delivery {
                receive_id,
                channel,
                messages,
            } if shared && messages.len() == 1 => {
                let joins = match &run {
                    Some(Run::One {
                        messages: first, ..
                    }) => same_message(&first[0], &messages[0]),
                    Some(Run::Many { message, .. }) => same_message(message, &messages[0]),
                    None => false,
                };
                if joins {
                    run = run.map(|r| r.join(receive_id));
                    continue;
                }
                let one = Run::One {
                    receive_id,
                    channel,
                    messages,
                };
                if let Some(previous) = run.replace(one) {
                    out.push(previous.into_proto(now));
                }
            }
            other => {
                if let Some(previous) = run.take() {
                    out.push(previous.into_proto(now));
                }
                out.push(to_proto(other, now));
            }
        }
    }
    if let Some(last) = run {
        out.push(last.into_proto(now));
    }
    pb::SessionResponse { events: out }
}

/// Deliveries of one message in a row, as [`to_frame`] gathers them.
enum Run {
    /// One so far: it stays a plain `Delivery` unless another joins it.
    One {
        receive_id: u64,
        channel: Arc<str>,
        messages: Vec<Message>,
    },
    /// Several: a `SharedDelivery`.
    Many {
        receive_ids: Vec<u64>,
        message: Message,
    },
}

impl Run {
    /// Adds a receive the same message goes to.
    fn join(self, receive_id: u64) -> Self {
        match self {
            Self::One {
                receive_id: first,
                mut messages,
                ..
            } => Self::Many {
                receive_ids: vec![first, receive_id],
                message: messages.pop().expect("one message"),
            },
            Self::Many {
                mut receive_ids,
                message,
            } => {
                receive_ids.push(receive_id);
                Self::Many {
                    receive_ids,
                    message,
                }
            }
        }
    }

    fn into_proto(self, now: std::time::Instant) -> pb::SessionEvent {
        match self {
            Self::One {
                receive_id,
                channel,
                messages,
            } => to_proto(
                Event::Delivery {
                    receive_id,
                    channel,
                    messages,
                },
                now,
            ),
            Self::Many {
                receive_ids,
                message,
            } => pb::SessionEvent {
                event: Some(session_event::Event::SharedDelivery(pb::SharedDelivery {
                    receive_ids,
                    expires_in_ms: expires_in_ms(&message, now),
                    message: message.payload,
                })),
            },
        }
    }
}

/// True when `b` is the same message as `a`: one payload shared by a group send (not merely
/// equal bytes) with the same expiry.
fn same_message(a: &Message, b: &Message) -> bool {
    a.payload.as_ptr() == b.payload.as_ptr()
        && a.payload.len() == b.payload.len()
        && a.expires_at == b.expires_at
}

fn expires_in_ms(message: &Message, now: std::time::Instant) -> u64 {
    ms(message.expires_at.saturating_duration_since(now)).max(1)
}

fn to_proto(event: Event, now: std::time::Instant) -> pb::SessionEvent {
    let event = match event {
        Event::Delivery {
            receive_id,
            channel,
            messages,
        } => session_event::Event::Delivery(pb::Delivery {
            receive_id,
            channel: channel.to_string(),
            messages: messages
                .into_iter()
                .map(|m| pb::DeliveredMessage {
                    expires_in_ms: expires_in_ms(&m, now),
                    message: m.payload,
                })
                .collect(),
        }),
        Event::Result {
            request_id,
            outcome,
        } => {
            let mut result = pb::OperationResult {
                request_id,
                ..Default::default()
            };
            match outcome {
                Ok(OpOutcome::Sent { delivered, queued }) => {
                    result.delivered = delivered;
                    result.queued = queued.map(|q| u32::try_from(q).unwrap_or(u32::MAX));
                }
                Ok(OpOutcome::Changed(changed)) => result.changed = changed,
                Ok(OpOutcome::GroupSent { delivered, dropped }) => {
                    result.delivered_count = delivered;
                    result.dropped_count = dropped;
                }
                Err(error) => result.error = Some(to_detail(&error)),
            }
            session_event::Event::Result(result)
        }
        Event::ReceiveFailed { receive_id, error } => {
            session_event::Event::ReceiveFailed(pb::ReceiveFailed {
                receive_id,
                error: Some(to_detail(&error)),
            })
        }
        Event::Cancelled {
            receive_id,
            was_pending,
        } => session_event::Event::Cancelled(pb::ReceiveCancelled {
            receive_id,
            was_pending,
        }),
        Event::Closing(reason) => session_event::Event::Closing(pb::SessionClosing {
            reason: match reason {
                CloseReason::Shutdown => pb::SessionCloseReason::Shutdown,
                CloseReason::ClientClose => pb::SessionCloseReason::ClientClose,
                CloseReason::ResumedElsewhere => pb::SessionCloseReason::ResumedElsewhere,
            } as i32,
        }),
    };
    pb::SessionEvent { event: Some(event) }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;

    fn delivery(receive_id: u64, message: &Message) -> Event {
        Event::Delivery {
            receive_id,
            channel: format!("c{receive_id}").into(),
            messages: vec![message.clone()],
        }
    }

    fn kinds(frame: &pb::SessionResponse) -> Vec<String> {
        frame
            .events
            .iter()
            .map(|e| match e.event.as_ref().expect("an event") {
                session_event::Event::Delivery(d) => format!("delivery {}", d.receive_id),
                session_event::Event::SharedDelivery(s) => format!("shared {:?}", s.receive_ids),
                session_event::Event::Result(r) => format!("result {}", r.request_id),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn only_neighbouring_deliveries_of_one_message_merge() {
        let now = Instant::now();
        let expiry = Duration::from_secs(60);
        let group = Message::new(Bytes::from_static(b"group"), now, expiry);
        // Equal bytes, but another message.
        let equal = Message::new(Bytes::copy_from_slice(b"group"), now, expiry);
        let events = || {
            vec![
                delivery(1, &group),
                delivery(2, &group),
                delivery(3, &group),
                Event::Result {
                    request_id: 9,
                    outcome: Ok(OpOutcome::Changed(true)),
                },
                delivery(4, &group),
                delivery(5, &equal),
                delivery(6, &equal),
            ]
        };
        assert_eq!(
            kinds(&to_frame(events(), true)),
            [
                "shared [1, 2, 3]",
                "result 9",
                "delivery 4",
                "shared [5, 6]"
            ]
        );
        assert_eq!(
            kinds(&to_frame(events(), false)),
            [
                "delivery 1",
                "delivery 2",
                "delivery 3",
                "result 9",
                "delivery 4",
                "delivery 5",
                "delivery 6"
            ]
        );
        let frame = to_frame(events(), true);
        let Some(session_event::Event::Delivery(alone)) = &frame.events[2].event else {
            panic!("a lone delivery stays a delivery");
        };
        assert_eq!(&*alone.channel, "c4");
        assert_eq!(alone.messages[0].message, Bytes::from_static(b"group"));
    }
}
