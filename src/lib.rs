//! chanlayer: the Django Channels channel layer as a gRPC server.
//!
//! # Layout
//!
//! Dependencies point one way, inward: `core` <- `hub` <- `grpc`, `metrics` <- `server`.
//!
//! - [`core`]: the engine, pure synchronous state with time as a parameter: namespaces,
//!   channels (bounded FIFO queues with expiry), groups (members with expiry), names,
//!   capacities, the limits ([`core::Limits`], and [`core::Limit`] to say which one
//!   refused) and [`core::CoreError`] with its `ErrorInfo` reason. No tokio, no tonic.
//! - `hub`: the async facade over the engine: sessions and their leases, each stream's
//!   outbox (events to write, receives pending), delivery, the sweeper task, and the
//!   observer hooks the metrics plug into. No tonic.
//! - `grpc`: the tonic adapter, the only code that sees generated types: unary calls, the
//!   Session stream, server frames, request conversion, and the one mapping of errors to
//!   statuses.
//! - [`metrics`]: the list of every exported metric, the Prometheus recorder, the hub's
//!   observer, the per-RPC tower layer and the HTTP endpoint. It reads refusals' reasons
//!   and limits from the errors (or the `ErrorInfo`), never from the gRPC adapter.
//! - [`cluster`]: cluster mode, the NATS backplane the hub uses when `--cluster-nats-url`
//!   is set (the hub sees it only as a `Backplane`).
//! - [`server`]: assembly (service, health, reflection, TLS, auth, metrics, sweeper) and
//!   the shutdown sequence; [`config`] its settings, `auth` the bearer-token check,
//!   `listener` the connection limit and handshake deadline, `unix_socket` the Unix
//!   domain socket listener's file, [`shutdown`] the signal.
//! - [`cli`]: the operator's commands of the binary (`chanlayer status`, `group`,
//!   `channel`, `send`, `flush`), clients of a running server through `chanlayer-client`.
//! - [`proto`]: the generated types, re-exported from the `chanlayer-proto` crate, which
//!   the typed Rust client (`chanlayer-client`, with the `chanlayer-loadgen` load
//!   generator) and the Python extension share with the server.
//!
//! Only what the binary, the integration tests and the benchmarks use is public.
pub(crate) mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod core;
pub(crate) mod grpc;
pub(crate) mod hub;
pub(crate) mod listener;
pub mod metrics;
pub mod proto;
pub mod server;
pub mod shutdown;
pub(crate) mod unix_socket;
