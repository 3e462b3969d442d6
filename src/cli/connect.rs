//! The flags every command shares (where the server is, the namespace, the token, TLS,
//! the output format) and the connection they describe.

use std::{path::PathBuf, time::Duration};

use chanlayer_client::{BearerToken, Client};
use clap::Args;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::output::Failure;

/// How to reach the server, and how to print.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// The server's gRPC address: `http://HOST:PORT`, `https://HOST:PORT`, `HOST:PORT`
    /// (https when a TLS flag is given), or `unix:PATH` for a server listening on a Unix
    /// domain socket (`unix:/run/chanlayer/chanlayer.sock`; no TLS).
    #[arg(
        long,
        env = "CHANLAYER_TARGET",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL"
    )]
    pub target: String,

    /// The namespace: the Django layer's `prefix` (the Python layer's default is `asgi`).
    #[arg(
        short,
        long,
        env = "CHANLAYER_NAMESPACE",
        default_value = "asgi",
        value_name = "NAME"
    )]
    pub namespace: String,

    /// The server's bearer token. The same environment variable as the server's, so the
    /// commands work with no flag where the server runs.
    #[arg(
        long,
        env = "CHANLAYER_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// A file holding the bearer token (the server's own `--auth-token-file` works);
    /// `--token` wins over it.
    #[arg(long, env = "CHANLAYER_AUTH_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// PEM certificates of the CA that signed the server's certificate (TLS).
    #[arg(long, env = "CHANLAYER_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// PEM client certificate, for a server that requires one (mutual TLS).
    #[arg(
        long,
        env = "CHANLAYER_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of `--client-cert`.
    #[arg(
        long,
        env = "CHANLAYER_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,

    /// The name the server's certificate is checked against, when it is not the target's
    /// host.
    #[arg(long, env = "CHANLAYER_TLS_DOMAIN", value_name = "NAME")]
    pub tls_domain: Option<String>,

    /// How long connecting, and then each call, may take, in milliseconds.
    #[arg(long, env = "CHANLAYER_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,

    /// Print one JSON object (machine output) instead of text.
    #[arg(long)]
    pub json: bool,
}

impl ConnectArgs {
    fn uses_tls(&self) -> bool {
        self.ca_cert.is_some() || self.client_cert.is_some() || self.tls_domain.is_some()
    }

    /// The Unix socket path of a `unix:PATH` (or `unix:///PATH`) target.
    fn unix_path(&self) -> Option<&str> {
        let rest = self.target.trim().strip_prefix("unix:")?;
        Some(rest.strip_prefix("//").unwrap_or(rest))
    }

    /// The target as a URL, with the scheme the TLS flags imply when it has none; a
    /// Unix socket target as `unix:PATH`.
    pub fn url(&self) -> String {
        let target = self.target.trim();
        if let Some(path) = self.unix_path() {
            format!("unix:{path}")
        } else if target.contains("://") {
            target.to_owned()
        } else if self.uses_tls() {
            format!("https://{target}")
        } else {
            format!("http://{target}")
        }
    }

    /// The token, from `--token` or `--token-file`, if any.
    fn token(&self) -> Result<BearerToken, Failure> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => token.trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    Failure::usage(format!(
                        "cannot read the token file {}: {e}",
                        path.display()
                    ))
                })?
                .trim()
                .to_owned(),
            (None, None) => return Ok(BearerToken::default()),
        };
        if token.is_empty() {
            return Err(Failure::usage("the token is empty"));
        }
        BearerToken::new(&token).map_err(|_| {
            Failure::usage("the token is not a valid header value (visible ASCII only)")
        })
    }

    fn tls(&self) -> Result<ClientTlsConfig, Failure> {
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path).map_err(|e| {
                Failure::usage(format!("cannot read the {what} {}: {e}", path.display()))
            })
        };
        let mut tls = ClientTlsConfig::new();
        match &self.ca_cert {
            Some(path) => tls = tls.ca_certificate(Certificate::from_pem(read(path, "CA")?)),
            None => {
                return Err(Failure::usage(
                    "an https target needs --ca-cert: the CA that signed the server's certificate",
                ));
            }
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            tls = tls.identity(Identity::from_pem(
                read(cert, "client certificate")?,
                read(key, "client key")?,
            ));
        }
        if let Some(domain) = &self.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        Ok(tls)
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// A connected transport channel; fails fast (within the timeout) when the server
    /// cannot be reached.
    pub async fn channel(&self) -> Result<Channel, Failure> {
        let url = self.url();
        if let Some(path) = self.unix_path() {
            if path.is_empty() {
                return Err(Failure::usage(
                    "a unix: target needs the socket's path (unix:/run/chanlayer/chanlayer.sock)",
                ));
            }
            if self.uses_tls() {
                return Err(Failure::usage(
                    "a unix: target takes no TLS flags (--ca-cert, --client-cert, --tls-domain): \
                     the server serves no TLS on a Unix socket",
                ));
            }
        }
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|_| Failure::usage(format!("{url:?} is not a valid target URL")))?
            .connect_timeout(self.timeout())
            .timeout(self.timeout());
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls()?)
                .map_err(|e| Failure::usage(format!("bad TLS settings: {}", cause(&e))))?;
        }
        match tokio::time::timeout(self.timeout(), endpoint.connect()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(error)) => Err(Failure::unreachable(&url, &cause(&error))),
            Err(_) => Err(Failure::unreachable(
                &url,
                &format!("no answer within {} ms", self.timeout_ms),
            )),
        }
    }

    /// A connected client of the namespace, with the token.
    pub async fn client(&self) -> Result<Client, Failure> {
        let token = self.token()?;
        let channel = self.channel().await?;
        Ok(Client::with_token(channel, self.namespace.clone(), token))
    }

    /// A client of the namespace, with the token, over a connected `channel`.
    pub fn client_over(&self, channel: Channel) -> Result<Client, Failure> {
        Ok(Client::with_token(
            channel,
            self.namespace.clone(),
            self.token()?,
        ))
    }
}

/// The innermost cause of an error, which says what happened ("Connection refused")
/// where the outer ones only say where ("transport error").
pub fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}
