//! The flags of cluster mode (`chanlayer serve --cluster-nats-url ...`), part of
//! `ServeArgs`: each is also a `CHANLAYER_CLUSTER_*` variable and a key of the config file.

use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::subjects::valid_root;

/// Flags of cluster mode.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cluster mode (off unless --cluster-nats-url is set)")]
pub struct ClusterArgs {
    /// NATS servers to join a cluster through, comma-separated (`nats://10.0.0.1:4222,...`).
    /// Without it the server is a single node and never touches NATS.
    #[arg(long, env = "CHANLAYER_CLUSTER_NATS_URL", value_name = "URLS")]
    pub cluster_nats_url: Option<String>,

    /// This node's name in the cluster (logs, metrics, heartbeats); default: `$POD_NAME`,
    /// else `$HOSTNAME`, else `chanlayer`. A random suffix makes each start unique.
    #[arg(long, env = "CHANLAYER_CLUSTER_NODE_NAME", value_name = "NAME")]
    pub cluster_node_name: Option<String>,

    /// First tokens of every NATS subject the cluster uses; clusters that share NATS servers
    /// need different prefixes.
    #[arg(
        long,
        env = "CHANLAYER_CLUSTER_SUBJECT_PREFIX",
        default_value = "chanlayer",
        value_name = "PREFIX"
    )]
    pub cluster_subject_prefix: String,

    /// NATS credentials file (JWT and NKey seed) to connect with.
    #[arg(long, env = "CHANLAYER_CLUSTER_CREDS_FILE", value_name = "FILE")]
    pub cluster_creds_file: Option<PathBuf>,

    /// PEM CA certificates to verify the NATS servers with (and require TLS).
    #[arg(long, env = "CHANLAYER_CLUSTER_TLS_CA", value_name = "FILE")]
    pub cluster_tls_ca: Option<PathBuf>,

    /// PEM client certificate for NATS (with `--cluster-tls-key`).
    #[arg(
        long,
        env = "CHANLAYER_CLUSTER_TLS_CERT",
        value_name = "FILE",
        requires = "cluster_tls_key"
    )]
    pub cluster_tls_cert: Option<PathBuf>,

    /// PEM private key of `--cluster-tls-cert`.
    #[arg(
        long,
        env = "CHANLAYER_CLUSTER_TLS_KEY",
        value_name = "FILE",
        requires = "cluster_tls_cert"
    )]
    pub cluster_tls_key: Option<PathBuf>,

    /// How long an operation forwarded to another node waits for its answer, in
    /// milliseconds, before it fails with `UNAVAILABLE` / `OWNER_UNREACHABLE`.
    #[arg(long, env = "CHANLAYER_CLUSTER_REQUEST_TIMEOUT_MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub cluster_request_timeout_ms: u64,

    /// How long a new session waits, after this node subscribed to its client prefix, for
    /// the subscription to reach the other NATS servers, in milliseconds.
    #[arg(long, env = "CHANLAYER_CLUSTER_INTEREST_SETTLE_MS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=1_000))]
    pub cluster_interest_settle_ms: u64,

    /// How long a cluster-wide question (group size, members, flush) waits for the other
    /// nodes, in milliseconds.
    #[arg(long, env = "CHANLAYER_CLUSTER_SURVEY_TIMEOUT_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub cluster_survey_timeout_ms: u64,

    /// How often a node says it is up, in milliseconds; a node silent for three of these is
    /// no longer waited for.
    #[arg(long, env = "CHANLAYER_CLUSTER_HEARTBEAT_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub cluster_heartbeat_ms: u64,

    /// Messages for other nodes that may wait while NATS is slow or reconnecting; past it,
    /// group sends for other nodes are dropped (counted) and forwarded operations fail.
    #[arg(long, env = "CHANLAYER_CLUSTER_PUBLISH_QUEUE", default_value_t = 65_536,
          value_parser = clap::value_parser!(u64).range(16..=16_777_216))]
    pub cluster_publish_queue: u64,

    /// Where normal channels (names without `!`, read by workers) live: `jetstream` queues
    /// them in one JetStream work-queue stream that every node reads, so a message sent
    /// anywhere is received once, anywhere; `node-local` keeps them on the node a send
    /// reaches, as a single node does (for NATS servers without JetStream).
    #[arg(long, env = "CHANLAYER_CLUSTER_NORMAL_CHANNELS", value_enum,
          default_value_t = NormalChannels::Jetstream, value_name = "WHERE")]
    pub cluster_normal_channels: NormalChannels,

    /// The capacity of every normal channel in the cluster: the stream refuses a message
    /// past it with `CHANNEL_FULL`. A request's own capacity and `channel_capacity` rules
    /// do not apply to normal channels in cluster mode.
    #[arg(long, env = "CHANLAYER_CLUSTER_NORMAL_CAPACITY", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub cluster_normal_capacity: u64,

    /// How long the stream keeps a message of a normal channel, in milliseconds: the
    /// longest expiry a normal channel's message can have, and how long an expired one
    /// still counts toward its channel's capacity. Set it to the layer's `expiry`.
    #[arg(long, env = "CHANLAYER_CLUSTER_NORMAL_MAX_AGE_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(1_000..=604_800_000))]
    pub cluster_normal_max_age_ms: u64,

    /// Replicas of the normal channels' stream (1 to 5; 3 survives the loss of a NATS
    /// server, with a few seconds of refusals while JetStream elects a new leader).
    #[arg(long, env = "CHANLAYER_CLUSTER_NORMAL_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=5))]
    pub cluster_normal_replicas: u64,

    /// Where the normal channels' stream keeps its messages: `memory`, or `file` (survives
    /// a restart of the NATS servers).
    #[arg(long, env = "CHANLAYER_CLUSTER_NORMAL_STORAGE", value_enum,
          default_value_t = NormalStorage::Memory, value_name = "STORAGE")]
    pub cluster_normal_storage: NormalStorage,
}

/// Where normal channels live in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NormalChannels {
    /// In one JetStream work-queue stream that every node reads.
    Jetstream,
    /// On the node a send reaches.
    NodeLocal,
}

/// Where the normal channels' stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NormalStorage {
    /// In memory.
    Memory,
    /// On disk.
    File,
}

/// Normal channels' settings in a cluster.
#[derive(Debug, Clone)]
pub struct NormalConfig {
    /// Whether the cluster shares them (else they stay on each node).
    pub shared: bool,
    /// Every normal channel's capacity.
    pub capacity: usize,
    /// The stream's `max_age`.
    pub max_age: Duration,
    /// The stream's replicas.
    pub replicas: usize,
    /// The stream's storage.
    pub storage: NormalStorage,
}

/// Cluster mode's settings, checked.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS server URLs.
    pub urls: Vec<String>,
    /// The node's name.
    pub node_name: String,
    /// The subject prefix.
    pub subject_prefix: String,
    /// Credentials file.
    pub creds_file: Option<PathBuf>,
    /// TLS CA file.
    pub tls_ca: Option<PathBuf>,
    /// TLS client certificate and key.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// Forwarded-operation timeout.
    pub request_timeout: Duration,
    /// Survey timeout.
    pub survey_timeout: Duration,
    /// Wait after subscribing a new session's prefix.
    pub interest_settle: Duration,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Publish queue length.
    pub publish_queue: usize,
    /// Normal channels.
    pub normal: NormalConfig,
}

impl ClusterArgs {
    /// The cluster's settings, or `None` for a single node.
    pub fn config(&self) -> Result<Option<ClusterConfig>, String> {
        let Some(urls) = &self.cluster_nats_url else {
            return Ok(None);
        };
        let urls: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err("--cluster-nats-url names no server".into());
        }
        if !valid_root(&self.cluster_subject_prefix) {
            return Err(format!(
                "--cluster-subject-prefix {:?}: use dot-separated tokens of ASCII letters, digits, '_' and '-'",
                self.cluster_subject_prefix
            ));
        }
        let node_name = self
            .cluster_node_name
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "chanlayer".into());
        Ok(Some(ClusterConfig {
            urls,
            node_name,
            subject_prefix: self.cluster_subject_prefix.clone(),
            creds_file: self.cluster_creds_file.clone(),
            tls_ca: self.cluster_tls_ca.clone(),
            tls_client: self
                .cluster_tls_cert
                .clone()
                .zip(self.cluster_tls_key.clone()),
            request_timeout: Duration::from_millis(self.cluster_request_timeout_ms),
            survey_timeout: Duration::from_millis(self.cluster_survey_timeout_ms),
            interest_settle: Duration::from_millis(self.cluster_interest_settle_ms),
            heartbeat: Duration::from_millis(self.cluster_heartbeat_ms),
            publish_queue: self.cluster_publish_queue as usize,
            normal: NormalConfig {
                shared: self.cluster_normal_channels == NormalChannels::Jetstream,
                capacity: self.cluster_normal_capacity as usize,
                max_age: Duration::from_millis(self.cluster_normal_max_age_ms),
                replicas: self.cluster_normal_replicas as usize,
                storage: self.cluster_normal_storage,
            },
        }))
    }
}
