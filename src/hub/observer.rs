//! Hooks the hub calls as things happen, so that the metrics can count them without the
//! hub knowing about them.

use std::time::Duration;

use crate::hub::HubError;

/// Hooks the hub calls as things happen, so that an exporter (see `metrics`) can count
/// them without the hub knowing about it. Every method does nothing by default.
pub(crate) trait Observer: Send + Sync {
    /// A message was delivered to a receive, `latency` after it was sent.
    fn delivered(&self, latency: Duration) {
        let _ = latency;
    }
    /// A group send reached `delivered` members and dropped `dropped` full ones.
    fn group_sent(&self, delivered: usize, dropped: usize) {
        let _ = (delivered, dropped);
    }
    /// An operation or a receive on a session stream was refused; the refusal goes to the
    /// client inside the stream, not as a call's status.
    fn refused(&self, error: &HubError) {
        let _ = error;
    }
    /// A frame of a session stream was applied: `operations` counts its operations by
    /// kind, and applying them took `elapsed`.
    fn frame_handled(&self, operations: &OperationCounts, elapsed: Duration) {
        let _ = (operations, elapsed);
    }
}

/// The operations of one session frame, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OperationCounts {
    /// Receive operations.
    pub(crate) receive: u32,
    /// Cancel operations.
    pub(crate) cancel: u32,
    /// Send operations.
    pub(crate) send: u32,
    /// Group add operations.
    pub(crate) group_add: u32,
    /// Group discard operations.
    pub(crate) group_discard: u32,
    /// Group send operations.
    pub(crate) group_send: u32,
    /// Close operations.
    pub(crate) close: u32,
}

/// The observer that observes nothing.
pub(crate) struct NoObserver;

impl Observer for NoObserver {}
