//! chanlayer: the Django Channels channel layer as a gRPC server.
pub mod core;
pub mod proto;
