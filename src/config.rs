//! Command-line flags, environment variables and the config file. Every flag of
//! `chanlayer serve` can also be set as `CHANLAYER_<FLAG>` (for example
//! `CHANLAYER_LISTEN=0.0.0.0:50051`) and as a key of the TOML file named by `--config` (or
//! `CHANLAYER_CONFIG`), spelled like the flag without its dashes (`listen = "0.0.0.0:50051"`).
//! A flag on the command line wins over the environment, which wins over the file, which
//! wins over the defaults. An unknown key or a bad value in the file stops the start-up
//! with a message that names it.

use std::{
    ffi::OsString,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use clap::{
    ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum,
    error::ErrorKind, parser::ValueSource,
};

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

/// The subcommands: the server, and the operator's commands that talk to a running one.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// The operator's commands.
    #[command(flatten)]
    Operate(crate::cli::Operation),
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// An optional listening address: a socket address, or `off` (or nothing) for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalAddr(pub Option<SocketAddr>);

impl FromStr for OptionalAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "off" | "none" => Ok(Self(None)),
            addr => addr.parse().map(|a| Self(Some(a))).map_err(|_| {
                format!("{addr:?} is neither a socket address (such as 127.0.0.1:9464) nor \"off\"")
            }),
        }
    }
}

impl fmt::Display for OptionalAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// Where the gRPC API listens: a TCP socket address, or a Unix domain socket (`unix:PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address, such as `127.0.0.1:50051`.
    Tcp(SocketAddr),
    /// The path of a Unix domain socket, from `unix:/run/chanlayer/chanlayer.sock` (or
    /// `unix:///run/...`, or a path relative to the working directory, `unix:chanlayer.sock`).
    Unix(PathBuf),
}

/// The longest path a Unix socket address holds (`sun_path` less its terminating NUL;
/// 103 on macOS, 107 on Linux): a longer one is refused with a clear message at start-up.
#[cfg(target_os = "linux")]
pub const MAX_UNIX_PATH_BYTES: usize = 107;
/// The longest path a Unix socket address holds (`sun_path` less its terminating NUL).
#[cfg(not(target_os = "linux"))]
pub const MAX_UNIX_PATH_BYTES: usize = 103;

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("unix:") {
            // gRPC's naming: `unix:path` or `unix:///absolute/path`.
            let path = match rest.strip_prefix("//") {
                Some(absolute) if absolute.starts_with('/') => absolute,
                Some(_) => {
                    return Err(format!(
                        "{s:?}: a Unix socket is `unix:/absolute/path`, `unix:///absolute/path` \
                         or `unix:relative/path`"
                    ));
                }
                None => rest,
            };
            if path.is_empty() {
                return Err(format!(
                    "{s:?} names no socket path (use unix:/path/to/chanlayer.sock)"
                ));
            }
            if path.len() > MAX_UNIX_PATH_BYTES {
                return Err(format!(
                    "the Unix socket path {path:?} has {} bytes; a socket address holds at most \
                     {MAX_UNIX_PATH_BYTES}: use a shorter path",
                    path.len()
                ));
            }
            if path.contains('\0') {
                return Err(format!("the Unix socket path {path:?} contains a NUL byte"));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        s.parse().map(Self::Tcp).map_err(|_| {
            format!(
                "{s:?} is neither a socket address (such as 127.0.0.1:50051) nor a Unix socket \
                 (such as unix:/run/chanlayer/chanlayer.sock)"
            )
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Permission bits of a Unix socket file, written in octal (`0660`, `660` or `0o660`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl FromStr for FileMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.trim();
        let digits = digits.strip_prefix("0o").unwrap_or(digits);
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if !digits.is_empty() && mode <= 0o777 => Ok(Self(mode)),
            _ => Err(format!(
                "{s:?} is not a file mode: give octal permission bits such as 0660 (at most 0777)"
            )),
        }
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// Flags of `chanlayer serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file with the same settings as these flags, spelled without their dashes
    /// (`max-message-bytes = 1048576`). Flags and environment variables win over it.
    #[arg(long, env = "CHANLAYER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address the gRPC API listens on: HOST:PORT, or unix:PATH for a Unix domain socket
    /// (a sidecar sharing its pod's volume with the gateway). The default only accepts
    /// local clients, as a sidecar wants; use 0.0.0.0:50051 to serve other pods. A socket
    /// file left by a previous run is replaced only when nothing listens on it; the file
    /// is removed at a clean shutdown. TLS flags are refused with a Unix socket.
    #[arg(long, env = "CHANLAYER_LISTEN", default_value = "127.0.0.1:50051",
          value_name = "ADDR", value_parser = clap::value_parser!(ListenAddr))]
    pub listen: ListenAddr,

    /// Permissions of the Unix socket file of `--listen unix:PATH`, in octal: connecting
    /// needs write permission, so 0660 admits the server's user and group (in Kubernetes,
    /// the pod's fsGroup), 0600 the user alone, 0666 every local user. Set with chmod
    /// right after the socket is created (under the process's umask).
    #[arg(long, env = "CHANLAYER_LISTEN_MODE", default_value = "0660", value_name = "OCTAL",
          value_parser = clap::value_parser!(FileMode))]
    pub listen_mode: FileMode,

    /// Address of the HTTP endpoint with `/metrics` (Prometheus), `/healthz` and `/readyz`,
    /// or `off` to record no metrics at all.
    #[arg(long, env = "CHANLAYER_METRICS_LISTEN", default_value = "127.0.0.1:9464",
          value_parser = clap::value_parser!(OptionalAddr))]
    pub metrics_listen: OptionalAddr,

    /// A file holding the bearer token every call but health must present
    /// (`authorization: Bearer <token>`). Without a token, calls are not authenticated.
    #[arg(
        long,
        env = "CHANLAYER_AUTH_TOKEN_FILE",
        value_name = "FILE",
        conflicts_with = "auth_token"
    )]
    pub auth_token_file: Option<PathBuf>,

    /// The bearer token itself; prefer `--auth-token-file` or the environment, which other
    /// processes cannot read from the command line.
    #[arg(
        long,
        env = "CHANLAYER_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub auth_token: Option<String>,

    /// PEM certificate chain of the server: serves gRPC over TLS (with `--tls-key`).
    #[arg(
        long,
        env = "CHANLAYER_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(
        long,
        env = "CHANLAYER_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// PEM certificates of the CAs that sign client certificates: every client must then
    /// present a certificate signed by one of them (mutual TLS).
    #[arg(
        long,
        env = "CHANLAYER_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,

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

    /// Most sessions one namespace holds, attached or awaiting resume, so that one
    /// application cannot take every session of a shared server.
    #[arg(long, env = "CHANLAYER_MAX_SESSIONS_PER_NAMESPACE", default_value_t = 2_500,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_sessions_per_namespace: u64,

    /// Threads that run the server's work (tokio's worker threads). The default is one per
    /// CPU the process may use. A message handed from one thread to another costs a
    /// wakeup: with 1, a sidecar's round trips cost less server CPU (about 13 % less on 2
    /// cores, docs/benchmarks/ROUND_TRIP.md), while a server driven at full speed by many
    /// clients wants one per core.
    #[arg(long, env = "CHANLAYER_WORKER_THREADS", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,

    /// Most connections the gRPC listener keeps open; a connection past it is closed as
    /// soon as it is accepted.
    #[arg(long, env = "CHANLAYER_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_connections: u64,

    /// How long a new connection may take to send the start of HTTP/2 (its preface), in
    /// milliseconds, before it is closed; with TLS, also the limit on the TLS handshake.
    #[arg(long, env = "CHANLAYER_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub handshake_timeout_ms: u64,

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

    /// Largest capacity a send or a group send may give a channel (a larger one is refused
    /// with RESOURCE_EXHAUSTED, limit `capacity`). At least 100, Channels' default.
    #[arg(long, env = "CHANLAYER_MAX_CAPACITY", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(100..=u64::from(u32::MAX)))]
    pub max_capacity: u64,

    /// Longest message expiry a send or a group send may ask for, in milliseconds (a
    /// longer one is refused, limit `expiry_ms`). At least 60000, Channels' default.
    #[arg(long, env = "CHANLAYER_MAX_EXPIRY_MS", default_value_t = 86_400_000,
          value_parser = clap::value_parser!(u64).range(60_000..=100 * 365 * 86_400_000))]
    pub max_expiry_ms: u64,

    /// Longest group expiry a group_add may ask for, in seconds (a longer one is refused,
    /// limit `group_expiry_seconds`). At least 86400, Channels' default.
    #[arg(long, env = "CHANLAYER_MAX_GROUP_EXPIRY_SECONDS", default_value_t = 30 * 86_400,
          value_parser = clap::value_parser!(u64).range(86_400..=100 * 365 * 86_400))]
    pub max_group_expiry_seconds: u64,

    /// Most payload bytes queued in one namespace; a send past it is refused (limit
    /// `queued_bytes_per_namespace`) and a group send drops the copy.
    #[arg(long, env = "CHANLAYER_MAX_QUEUED_BYTES_PER_NAMESPACE", default_value_t = 256 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024 * 1024..))]
    pub max_queued_bytes_per_namespace: u64,

    /// Most payload bytes queued in the whole server, over every namespace; a send past it
    /// is refused (limit `queued_bytes`) and a group send drops the copy. Keep it well
    /// below the memory the process may use.
    #[arg(long, env = "CHANLAYER_MAX_QUEUED_BYTES", default_value_t = 1024 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024 * 1024..))]
    pub max_queued_bytes: u64,

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

    /// Cluster mode.
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

impl ServeArgs {
    /// The hub's settings.
    pub(crate) fn hub_config(&self) -> HubConfig {
        HubConfig {
            limits: Limits {
                max_message_bytes: self.max_message_bytes as usize,
                max_channels_per_namespace: self.max_channels_per_namespace as usize,
                max_groups_per_namespace: self.max_groups_per_namespace as usize,
                max_members_per_group: self.max_members_per_group as usize,
                max_namespaces: self.max_namespaces as usize,
                max_capacity: self.max_capacity as usize,
                max_expiry: Duration::from_millis(self.max_expiry_ms),
                max_group_expiry: Duration::from_secs(self.max_group_expiry_seconds),
                max_queued_bytes_per_namespace: self.max_queued_bytes_per_namespace as usize,
                max_queued_bytes: self.max_queued_bytes as usize,
            },
            shards: self.shards as usize,
            lease_grace: Duration::from_millis(self.lease_grace_ms),
            max_pending_receives: self.max_pending_receives as usize,
            max_sessions: self.max_sessions as usize,
            max_sessions_per_namespace: self.max_sessions_per_namespace as usize,
            sweep_interval: Duration::from_millis(self.sweep_interval_ms),
        }
    }

    /// The largest gRPC frame accepted: one message at the limit plus room for its
    /// envelope and a few small operations.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_message_bytes as usize + 1024 * 1024
    }

    /// The bearer token, from `--auth-token-file` or `--auth-token`, if any.
    pub fn auth_token(&self) -> Result<Option<String>, String> {
        if let Some(path) = &self.auth_token_file {
            let token = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
            let token = token.trim();
            if token.is_empty() {
                return Err(format!("the token file {} is empty", path.display()));
            }
            return Ok(Some(token.to_owned()));
        }
        match self.auth_token.as_deref().map(str::trim) {
            Some("") => Err("the auth token is empty".to_owned()),
            Some(token) => Ok(Some(token.to_owned())),
            None => Ok(None),
        }
    }
}

impl Cli {
    /// Parses the command line, the environment and the config file; prints the error and
    /// exits on a bad flag, key or value.
    pub fn load() -> Self {
        Self::try_load_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// [`Cli::load`] over explicit arguments.
    pub fn try_load_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let command = Cli::command();
        let matches = command.clone().try_get_matches_from(&args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let (serve_command, serve_matches, serve) = match (&cli.command, matches.subcommand()) {
            (Some(Command::Serve(serve)), Some(("serve", sub))) => (
                command
                    .find_subcommand("serve")
                    .expect("serve exists")
                    .clone(),
                sub,
                serve,
            ),
            (None, _) => (command.clone(), &matches, &cli.serve),
            _ => return Ok(cli),
        };
        let Some(path) = serve.config.clone() else {
            return Ok(cli);
        };
        let extra = file_args(&path, &serve_command, serve_matches)?;
        if extra.is_empty() {
            return Ok(cli);
        }
        let mut all = args;
        all.extend(extra);
        Cli::try_parse_from(all)
    }

    /// The `serve` flags, whether given with or without the subcommand (the top-level
    /// defaults for another subcommand).
    pub fn serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            _ => self.serve,
        }
    }
}

/// The flags that set the keys of the config file that neither a flag nor an environment
/// variable set, each value checked by the flag's own parser.
fn file_args(
    path: &Path,
    command: &clap::Command,
    matches: &ArgMatches,
) -> Result<Vec<OsString>, clap::Error> {
    let fail = |kind, message: String| {
        clap::Error::raw(kind, format!("config file {}: {message}\n", path.display()))
            .with_cmd(command)
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(ErrorKind::Io, format!("cannot read it: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| fail(ErrorKind::InvalidValue, format!("not valid TOML: {e}")))?;
    let mut extra = Vec::new();
    for (key, value) in &table {
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && key != "config")
            .ok_or_else(|| {
                fail(
                    ErrorKind::UnknownArgument,
                    format!(
                        "unknown key `{key}`; the keys are the flags of `chanlayer serve` \
                         without their dashes, such as `listen` or `max-message-bytes`"
                    ),
                )
            })?;
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(fail(
                    ErrorKind::InvalidValue,
                    format!(
                        "key `{key}` takes a string or a number, not {}",
                        other.type_str()
                    ),
                ));
            }
        };
        let probe = clap::Command::new("chanlayer").no_binary_name(true).arg(
            clap::Arg::new("value")
                .long("value")
                .value_parser(arg.get_value_parser().clone()),
        );
        probe
            .try_get_matches_from(["--value", text.as_str()])
            .map_err(|e| {
                let message = e.to_string();
                let first = message.lines().next().unwrap_or_default();
                let cause = first.rsplit_once("': ").map_or(first, |(_, cause)| cause);
                fail(
                    ErrorKind::InvalidValue,
                    format!("bad value {text:?} for key `{key}`: {cause}"),
                )
            })?;
        let id = arg.get_id().as_str();
        match matches.value_source(id) {
            Some(ValueSource::CommandLine | ValueSource::EnvVariable) => {}
            _ => {
                extra.push(format!("--{key}").into());
                extra.push(text.into());
            }
        }
    }
    Ok(extra)
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
    fn metrics_can_be_turned_off() {
        let args = Cli::parse_from(["chanlayer"]).serve_args();
        assert_eq!(args.metrics_listen.to_string(), "127.0.0.1:9464");
        let args = Cli::parse_from(["chanlayer", "--metrics-listen", "off"]).serve_args();
        assert_eq!(args.metrics_listen, OptionalAddr(None));
        assert!(Cli::try_parse_from(["chanlayer", "--metrics-listen", "x"]).is_err());
        assert!(Cli::try_parse_from(["chanlayer", "--tls-cert", "c.pem"]).is_err());
    }

    #[test]
    fn the_config_file_sits_below_flags() {
        let dir = std::env::temp_dir().join(format!("chanlayer-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("good.toml");
        std::fs::write(&file, "max-sessions = 7\nlisten = \"127.0.0.1:1\"\n").expect("write");
        let file = file.to_str().expect("utf-8");
        let args = Cli::try_load_from(["chanlayer", "--config", file])
            .expect("loads")
            .serve_args();
        assert_eq!(args.max_sessions, 7);
        assert_eq!(args.listen.to_string(), "127.0.0.1:1");
        let args = Cli::try_load_from([
            "chanlayer",
            "serve",
            "--config",
            file,
            "--max-sessions",
            "9",
        ])
        .expect("loads")
        .serve_args();
        assert_eq!(args.max_sessions, 9);
        assert_eq!(args.listen.to_string(), "127.0.0.1:1");

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "max-sesions = 7\n").expect("write");
        let error = Cli::try_load_from(["chanlayer", "--config", bad.to_str().expect("utf-8")])
            .expect_err("unknown key");
        assert!(error.to_string().contains("`max-sesions`"), "{error}");
        std::fs::write(&bad, "max-message-bytes = 10\n").expect("write");
        let error = Cli::try_load_from(["chanlayer", "--config", bad.to_str().expect("utf-8")])
            .expect_err("bad value");
        assert!(error.to_string().contains("`max-message-bytes`"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unix_sockets_are_listen_addresses() {
        let parse = |s: &str| s.parse::<ListenAddr>();
        assert_eq!(
            parse("unix:/run/c.sock"),
            Ok(ListenAddr::Unix("/run/c.sock".into()))
        );
        assert_eq!(
            parse("unix:///run/c.sock"),
            Ok(ListenAddr::Unix("/run/c.sock".into()))
        );
        assert_eq!(parse("unix:c.sock"), Ok(ListenAddr::Unix("c.sock".into())));
        assert!(parse("unix:").is_err());
        assert!(parse("unix://host/c.sock").is_err());
        let long = format!("unix:/{}", "x".repeat(200));
        assert!(parse(&long).unwrap_err().contains("at most"));
        assert_eq!(
            parse("unix:/run/c.sock").unwrap().to_string(),
            "unix:/run/c.sock"
        );
        let args = Cli::parse_from(["chanlayer", "--listen", "unix:/tmp/c.sock"]).serve_args();
        assert_eq!(args.listen, ListenAddr::Unix("/tmp/c.sock".into()));
        assert_eq!(args.listen_mode, FileMode(0o660));
        let args = Cli::parse_from(["chanlayer", "--listen-mode", "600"]).serve_args();
        assert_eq!(args.listen_mode, FileMode(0o600));
        assert_eq!(args.listen_mode.to_string(), "0600");
        assert!(Cli::try_parse_from(["chanlayer", "--listen-mode", "0888"]).is_err());
        assert!(Cli::try_parse_from(["chanlayer", "--listen-mode", "01777"]).is_err());
        assert!(Cli::try_parse_from(["chanlayer", "--listen-mode", ""]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Cli::try_parse_from(["chanlayer", "--max-message-bytes", "10"]).is_err());
        assert!(Cli::try_parse_from(["chanlayer", "--listen", "nowhere"]).is_err());
        assert!(Cli::try_parse_from(["chanlayer", "--no-such-flag"]).is_err());
        assert!(Cli::try_parse_from(["chanlayer", "--worker-threads", "0"]).is_err());
    }

    #[test]
    fn worker_threads_default_to_the_runtime_s_choice() {
        assert_eq!(
            Cli::parse_from(["chanlayer"]).serve_args().worker_threads,
            None
        );
        let args = Cli::parse_from(["chanlayer", "serve", "--worker-threads", "1"]).serve_args();
        assert_eq!(args.worker_threads, Some(1));
    }
}
