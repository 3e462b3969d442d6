//! The operator's commands of the `chanlayer` binary, as `redis-cli` is to Redis: they
//! talk to a running server over its gRPC API with the typed client (`chanlayer-client`).
//!
//! - `status`: health (`grpc.health.v1`), version, uptime and the server's counters;
//! - `group NAME`: a group's size and members;
//! - `channel NAME`: a channel's depth;
//! - `send NAME MESSAGE`: sends a message, encoded as the Python layer does (msgpack);
//! - `flush --yes`: clears a namespace.
//!
//! Every command takes the connection flags of [`connect::ConnectArgs`] (`--target`,
//! `--namespace`, the token, TLS) and prints for a person, or one JSON object with
//! `--json`. Exit codes: 0 when it worked, 1 when the server refused or failed the call
//! (or, for `status`, does not report SERVING), 2 for a usage error or bad input, 3 when
//! the server cannot be reached. A failure is one line on stderr; with `--json` the same
//! error is also written to stdout as `{"error": {...}}`.
//!
//! Files: `connect` (flags and connection), `output` (the report, errors, exit codes and
//! human formatting), then one file per command.

mod channel;
mod connect;
mod flush;
mod group;
mod output;
mod send;
mod status;

use std::process::ExitCode;

use clap::Subcommand;

use self::output::Report;
pub use self::{
    channel::ChannelArgs, connect::ConnectArgs, flush::FlushArgs, group::GroupArgs, send::SendArgs,
    status::StatusArgs,
};

/// The operator's commands, each talking to a running server.
#[derive(Debug, Subcommand)]
pub enum Operation {
    /// Show a running server's health, version, uptime and counters.
    Status(StatusArgs),
    /// Show a group's size and members.
    Group(GroupArgs),
    /// Show a channel's queued messages, bytes, waiting receives and oldest message.
    Channel(ChannelArgs),
    /// Send a message to a channel (or, with --group, to a group).
    Send(SendArgs),
    /// Remove every channel, message and group of a namespace (needs --yes).
    Flush(FlushArgs),
}

impl Operation {
    fn connect_args(&self) -> &ConnectArgs {
        match self {
            Operation::Status(a) => &a.connect,
            Operation::Group(a) => &a.connect,
            Operation::Channel(a) => &a.connect,
            Operation::Send(a) => &a.connect,
            Operation::Flush(a) => &a.connect,
        }
    }
}

/// Runs one command on a runtime of its own; prints its report or its error.
pub fn run(operation: Operation) -> ExitCode {
    let json = operation.connect_args().json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chanlayer: error: cannot start the runtime: {error}");
            return ExitCode::from(output::EXIT_USAGE);
        }
    };
    let result: Result<Report, output::Failure> = runtime.block_on(async {
        match operation {
            Operation::Status(args) => status::run(args).await,
            Operation::Group(args) => group::run(args).await,
            Operation::Channel(args) => channel::run(args).await,
            Operation::Send(args) => send::run(args).await,
            Operation::Flush(args) => flush::run(args).await,
        }
    });
    match result {
        Ok(report) => report.print(json),
        Err(failure) => failure.print(json),
    }
}
