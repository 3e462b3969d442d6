//! The session framing policy: what one `SessionRequest` carries. Operations queued together
//! go out as one frame of at most [`FRAME_OPERATIONS`] operations and [`FRAME_PAYLOAD`] bytes
//! of message payload; a single larger message gets a frame of its own.
#![warn(missing_docs)]

use crate::v1::{SessionOperation, SessionRequest, session_operation::Operation};

/// Most operations in one frame.
pub const FRAME_OPERATIONS: usize = 4096;
/// Most payload bytes in one frame (a larger single message gets a frame of its own).
pub const FRAME_PAYLOAD: usize = 256 * 1024;

/// The bytes an operation counts for against [`FRAME_PAYLOAD`]: its message, or a small
/// constant for operations without one.
pub fn payload_len(op: &Operation) -> usize {
    match op {
        Operation::Send(send) => send.message.len(),
        Operation::GroupSend(send) => send.message.len(),
        _ => 16,
    }
}

/// A frame being filled within the frame limits.
#[derive(Debug, Default)]
pub struct FrameBuilder {
    operations: Vec<SessionOperation>,
    bytes: usize,
}

impl FrameBuilder {
    /// An empty frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `op` still fits in this frame (an empty frame takes any operation).
    pub fn has_room_for(&self, op: &Operation) -> bool {
        self.operations.is_empty()
            || (self.operations.len() < FRAME_OPERATIONS
                && self.bytes + payload_len(op) <= FRAME_PAYLOAD)
    }

    /// Adds `op` to the frame, whether or not it has room (see [`Self::has_room_for`]).
    pub fn push(&mut self, op: Operation) {
        self.bytes += payload_len(&op);
        self.operations.push(SessionOperation {
            operation: Some(op),
        });
    }

    /// Whether the frame has no operation yet.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The frame's operations; the builder is empty again.
    pub fn take(&mut self) -> Vec<SessionOperation> {
        self.bytes = 0;
        std::mem::take(&mut self.operations)
    }

    /// The frame as a request.
    pub fn into_request(self) -> SessionRequest {
        SessionRequest {
            operations: self.operations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{SendOperation, session_operation::Operation};

    fn send(len: usize) -> Operation {
        Operation::Send(SendOperation {
            message: vec![0; len].into(),
            ..Default::default()
        })
    }

    #[test]
    fn a_frame_holds_up_to_the_operation_limit() {
        let mut frame = FrameBuilder::new();
        for _ in 0..FRAME_OPERATIONS {
            assert!(frame.has_room_for(&send(1)));
            frame.push(send(1));
        }
        assert!(!frame.has_room_for(&send(1)));
        assert_eq!(frame.take().len(), FRAME_OPERATIONS);
        assert!(frame.is_empty() && frame.has_room_for(&send(1)));
    }

    #[test]
    fn a_frame_holds_up_to_the_payload_limit_and_a_large_message_goes_alone() {
        let mut frame = FrameBuilder::new();
        frame.push(send(FRAME_PAYLOAD - 10));
        assert!(frame.has_room_for(&send(10)));
        assert!(!frame.has_room_for(&send(11)));
        let mut alone = FrameBuilder::new();
        assert!(alone.has_room_for(&send(FRAME_PAYLOAD * 2)));
        alone.push(send(FRAME_PAYLOAD * 2));
        assert!(!alone.has_room_for(&send(0)));
        assert_eq!(alone.into_request().operations.len(), 1);
    }
}
