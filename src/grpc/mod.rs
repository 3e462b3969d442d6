//! The tonic adapter: the only module that sees generated types. It validates requests,
//! converts them for the hub, and maps errors to statuses (`status`).
//!
//! One addition to the design's `Delivery{receive_id, channel, message}` answer: a stream
//! opened with `shared_deliveries` gets the deliveries one group send makes to its receives
//! as one `SharedDelivery` (the message once, then the receive ids; see `to_frame`). A
//! group send to the 10 000 members one process holds costs that process, and the server,
//! one copy of the message instead of 10 000, with a channel name each. The hub is
//! unchanged: it still queues one delivery per receive, and only the frame encoding merges.
//!
//! Files: `unary` (the service's unary calls), `session` (the Session stream: opening it,
//! reading and applying its frames), `frame` (server frames built from the hub's events),
//! `convert` (request fields to engine arguments), `status` (errors to statuses) and
//! `guard` (a panic ends only its call, with INTERNAL; a request too large to decode gets
//! a reason).

mod convert;
mod frame;
mod guard;
mod session;
pub(crate) mod status;
mod unary;

use std::{pin::Pin, sync::Arc, time::Duration};

use futures_util::Stream;
use tonic::Status;

use self::convert::CapacityCache;
pub(crate) use self::guard::FrameLimitLayer;
use crate::{hub::Hub, proto::v1 as pb};

/// How long a new Session stream may take to send its `open` operation.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// How much payload a server frame carries before the rest waits for the next frame
/// (a single larger message still goes alone). Large frames cost more than they save:
/// the encoder's buffer grows by copying, and the client's decoder likewise.
const FRAME_TARGET_BYTES: usize = crate::proto::frame::FRAME_PAYLOAD;

/// The largest page of group members.
const MAX_PAGE_SIZE: usize = 10_000;

/// The response header of `GetServerStats` that carries the server's version
/// (`chanlayer status` shows it).
pub(crate) const VERSION_HEADER: &str = "chanlayer-version";

/// The service implementation.
pub(crate) struct ChannelLayerGrpc {
    hub: Arc<Hub>,
    capacities: Arc<CapacityCache>,
    max_frame_bytes: usize,
}

impl ChannelLayerGrpc {
    /// The service over `hub`; server frames carry up to `max_frame_bytes` of payload.
    pub(crate) fn new(hub: Arc<Hub>, max_frame_bytes: usize) -> Self {
        Self {
            hub,
            capacities: Arc::new(CapacityCache::default()),
            max_frame_bytes,
        }
    }
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::SessionResponse, Status>> + Send>>;

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
