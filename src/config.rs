//! Command-line flags and environment variables. Every flag of `chanlayer serve` can also
//! be set as `CHANLAYER_<FLAG>` (for example `CHANLAYER_LISTEN=0.0.0.0:50051`); a flag
//! given on the command line wins over the environment.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{core::Limits, hub::HubConfig};

/// chanlayer: the Django Channels channel layer as a gRPC server.
#[derive(Debug, Parser)]
#[command(name = "chanlayer", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to run; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Drive a running server with load and print throughput and latency.
    Bench(crate::bench::BenchArgs),
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `chanlayer serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the gRPC API listens on. The default only accepts local clients, as a
    /// sidecar wants; use 0.0.0.0:50051 to serve other pods.
    #[arg(long, env = "CHANLAYER_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Log format.
    #[arg(long, env = "CHANLAYER_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Largest message accepted, in bytes. Django Channels requires at least 1 MB.
    #[arg(long, env = "CHANLAYER_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=256 * 1024 * 1024))]
    pub max_message_bytes: u64,

    /// Most receives one session may have pending (one per open WebSocket, typically).
    #[arg(long, env = "CHANLAYER_MAX_PENDING_RECEIVES", default_value_t = 250_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_pending_receives: u64,

    /// Most sessions (gateway processes) the server holds, attached or awaiting resume.
    #[arg(long, env = "CHANLAYER_MAX_SESSIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_sessions: u64,

    /// Most channels (with queued messages or waiting receives) in one namespace.
    #[arg(long, env = "CHANLAYER_MAX_CHANNELS_PER_NAMESPACE", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_channels_per_namespace: u64,

    /// Most groups in one namespace.
    #[arg(long, env = "CHANLAYER_MAX_GROUPS_PER_NAMESPACE", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_groups_per_namespace: u64,

    /// Most members in one group.
    #[arg(long, env = "CHANLAYER_MAX_MEMBERS_PER_GROUP", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_members_per_group: u64,

    /// Most namespaces (Django `prefix`es) on the server.
    #[arg(long, env = "CHANLAYER_MAX_NAMESPACES", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_namespaces: u64,

    /// How long a session whose stream ended can be resumed, in milliseconds. After that
    /// its specific channels, their messages and their group memberships are removed.
    #[arg(long, env = "CHANLAYER_LEASE_GRACE_MS", default_value_t = 30_000)]
    pub lease_grace_ms: u64,

    /// How often expired messages and memberships are swept, in milliseconds.
    #[arg(long, env = "CHANLAYER_SWEEP_INTERVAL_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub sweep_interval_ms: u64,

    /// Shards per namespace (rounded up to a power of two). More shards mean less lock
    /// contention on many cores.
    #[arg(long, env = "CHANLAYER_SHARDS", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub shards: u64,

    /// After SIGTERM, how long health reports NOT_SERVING while calls are still served,
    /// in milliseconds, so that load balancers stop routing first.
    #[arg(long, env = "CHANLAYER_DRAIN_DELAY_MS", default_value_t = 0)]
    pub drain_delay_ms: u64,

    /// After SIGTERM (and the drain delay), how long in-flight calls and streams may take
    /// to finish before the process exits anyway, in milliseconds.
    #[arg(long, env = "CHANLAYER_SHUTDOWN_TIMEOUT_MS", default_value_t = 5_000)]
    pub shutdown_timeout_ms: u64,
}

impl ServeArgs {
    /// The hub's settings.
    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            limits: Limits {
                max_message_bytes: self.max_message_bytes as usize,
                max_channels_per_namespace: self.max_channels_per_namespace as usize,
                max_groups_per_namespace: self.max_groups_per_namespace as usize,
                max_members_per_group: self.max_members_per_group as usize,
                max_namespaces: self.max_namespaces as usize,
            },
            shards: self.shards as usize,
            lease_grace: Duration::from_millis(self.lease_grace_ms),
            max_pending_receives: self.max_pending_receives as usize,
            max_sessions: self.max_sessions as usize,
            sweep_interval: Duration::from_millis(self.sweep_interval_ms),
        }
    }

    /// The largest gRPC frame accepted: one message at the limit plus room for its
    /// envelope and a few small operations.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_message_bytes as usize + 1024 * 1024
    }

    /// Settings for tests: listen on an ephemeral loopback port.
    pub fn for_tests() -> Self {
        let mut args = Cli::parse_from(["chanlayer"]).serve;
        args.listen = "127.0.0.1:0".parse().expect("valid address");
        args
    }
}

impl Cli {
    /// The `serve` flags, whether given with or without the subcommand (the top-level
    /// defaults for another subcommand).
    pub fn serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            _ => self.serve,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_suit_a_sidecar() {
        let args = Cli::parse_from(["chanlayer"]).serve_args();
        assert_eq!(args.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(args.max_message_bytes, 4 * 1024 * 1024);
        assert_eq!(args.lease_grace_ms, 30_000);
        let args = Cli::parse_from(["chanlayer", "serve", "--listen", "0.0.0.0:1"]).serve_args();
        assert_eq!(args.listen.to_string(), "0.0.0.0:1");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Cli::try_parse_from(["chanlayer", "--max-message-bytes", "10"]).is_err());
        assert!(Cli::try_parse_from(["chanlayer", "--listen", "nowhere"]).is_err());
        assert!(Cli::try_parse_from(["chanlayer", "--no-such-flag"]).is_err());
    }
}
