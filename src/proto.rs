//! Generated protobuf and gRPC code for `chanlayer.v1`.
#![allow(missing_docs)]

/// `chanlayer.v1`: the channel-layer API.
#[allow(clippy::all, clippy::pedantic)]
#[rustfmt::skip]
pub mod v1 {
    tonic::include_proto!("chanlayer.v1");
}

/// The encoded file descriptor set of `proto/`, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("chanlayer_descriptor");
