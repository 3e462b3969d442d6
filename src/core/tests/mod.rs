//! Unit tests of every channel-layer rule, with time as a parameter: channels (`channel`),
//! groups (`group`), namespaces, cleanup, introspection and limits (`namespace`).

mod channel;
mod group;
mod namespace;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use bytes::Bytes;

use super::*;
use crate::core::{Layer, Limits, Received, Waiter};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, PartialEq, Eq)]
struct TestWaiter(u64);

impl Waiter for TestWaiter {
    fn id(&self) -> u64 {
        self.0
    }
}

fn waiter() -> TestWaiter {
    TestWaiter(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

fn layer() -> Layer<TestWaiter> {
    Layer::new(Limits::default(), 8)
}

fn msg(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

const MIN: Duration = Duration::from_secs(60);

fn received(r: Received) -> Vec<Bytes> {
    match r {
        Received::Messages(m) => m.into_iter().map(|m| m.payload).collect(),
        Received::Waiting => panic!("expected messages, the receive is waiting"),
    }
}
