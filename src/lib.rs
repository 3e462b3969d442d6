//! chanlayer: the Django Channels channel layer as a gRPC server.
pub mod auth;
pub mod config;
pub mod core;
pub mod grpc;
pub mod hub;
pub mod metrics;
pub mod proto;
pub mod server;
pub mod shutdown;
