//! The `chanlayer.v1` protocol as the server and its Rust clients share it:
//!
//! - [`v1`]: the generated protobuf messages and gRPC stubs (client and server);
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors of `proto/`, served by reflection;
//! - [`reason`]: the `google.rpc.ErrorInfo` reasons (and their domain) that clients match on;
//! - [`frame`]: the session framing policy, how many operations and how much payload one
//!   session frame carries.
#![allow(missing_docs)]

pub mod frame;
pub mod reason;

/// `chanlayer.v1`: the channel-layer API.
#[allow(clippy::all, clippy::pedantic)]
#[rustfmt::skip]
pub mod v1 {
    tonic::include_proto!("chanlayer.v1");
}

/// The encoded file descriptor set of `proto/`, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("chanlayer_descriptor");
