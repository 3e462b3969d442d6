//! The `chanlayer.v1` protocol, from the `chanlayer-proto` crate: generated types and stubs
//! ([`v1`]), the file descriptor set, the `ErrorInfo` reasons and the session framing policy.
pub use chanlayer_proto::*;
