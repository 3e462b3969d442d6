//! Assembly: the channel-layer service with health and reflection on one listener (over
//! TLS when configured, behind the per-RPC metrics and the bearer-token check), the
//! metrics endpoint, the sweeper, and the shutdown sequence.
//!
//! Shutdown, in order: health turns NOT_SERVING and `/readyz` fails; after the drain delay the hub refuses new
//! sessions and tells every session stream that the server goes away (clients resume
//! elsewhere); the listener stops accepting and in-flight calls drain; after the shutdown
//! timeout the server returns whatever is still running.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::{
    auth::AuthLayer,
    cluster::{Cluster, ClusterError},
    config::{ListenAddr, ServeArgs},
    grpc::{ChannelLayerGrpc, FrameLimitLayer},
    hub::{Backplane, Hub, NoObserver, Observer},
    listener::Connections,
    metrics::{self, HubMetrics, Readiness, RpcMetricsLayer},
    proto::{FILE_DESCRIPTOR_SET, v1::channel_layer_service_server::ChannelLayerServiceServer},
    unix_socket::{self, SocketFile},
};

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: ListenAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The token, a certificate or a key could not be loaded.
    #[error("{0}")]
    Security(String),
    /// Cluster mode could not start.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

fn read_pem(what: &str, path: &std::path::Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path)
        .map_err(|e| ServeError::Security(format!("cannot read {what} {}: {e}", path.display())))
}

/// The TLS settings, when a certificate is configured.
fn tls_config(args: &ServeArgs) -> Result<Option<ServerTlsConfig>, ServeError> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let identity = Identity::from_pem(
        read_pem("the TLS certificate", cert)?,
        read_pem("the TLS key", key)?,
    );
    let mut config = ServerTlsConfig::new()
        .identity(identity)
        .timeout(Duration::from_millis(args.handshake_timeout_ms));
    if let Some(ca) = &args.tls_client_ca {
        config = config.client_ca_root(Certificate::from_pem(read_pem("the client CA", ca)?));
    }
    Ok(Some(config))
}

/// The bound gRPC listener: a TCP port, or a Unix domain socket whose file is removed
/// when the listener is dropped (at the end of [`run`]).
#[derive(Debug)]
pub enum Listener {
    /// `--listen HOST:PORT`.
    Tcp(TcpListener),
    /// `--listen unix:PATH`.
    Unix(UnixListener, UnixSocketFile),
}

/// The socket file of a Unix listener, removed when dropped if it is still the file this
/// process created.
#[derive(Debug)]
pub struct UnixSocketFile(#[allow(dead_code)] SocketFile);

impl Listener {
    /// The address it listens on, as `--listen` spells it.
    pub fn local_addr(&self) -> Option<ListenAddr> {
        match self {
            Self::Tcp(listener) => listener.local_addr().ok().map(ListenAddr::Tcp),
            Self::Unix(listener, _) => listener
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| ListenAddr::Unix(p.to_owned()))),
        }
    }
}

/// Binds the gRPC listener of `args.listen`. A Unix socket is refused with the TLS flags
/// (see README, "Unix domain sockets"), replaces only a stale socket file, and gets
/// `--listen-mode`.
pub async fn bind(args: &ServeArgs) -> Result<Listener, ServeError> {
    let addr = args.listen.clone();
    match &addr {
        ListenAddr::Tcp(socket) => TcpListener::bind(*socket)
            .await
            .map(Listener::Tcp)
            .map_err(|source| ServeError::Bind { addr, source }),
        ListenAddr::Unix(path) => {
            if args.tls_cert.is_some() {
                return Err(ServeError::Security(format!(
                    "TLS is not served on a Unix socket ({addr}): the socket file's \
                     permissions (--listen-mode) decide who connects; remove --tls-cert, \
                     --tls-key and --tls-client-ca, or listen on HOST:PORT for TLS"
                )));
            }
            unix_socket::bind(path, args.listen_mode.0)
                .map(|(listener, file)| Listener::Unix(listener, UnixSocketFile(file)))
                .map_err(|source| ServeError::Bind { addr, source })
        }
    }
}

type ServeFuture =
    Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send + 'static>>;

/// Serves on `listener` until `shutdown` resolves, then shuts down gracefully.
pub async fn run(
    listener: Listener,
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let token = args.auth_token().map_err(ServeError::Security)?;
    let tls = tls_config(&args)?;
    if tls.is_some() && matches!(listener, Listener::Unix(..)) {
        return Err(ServeError::Security(
            "TLS is not served on a Unix socket; listen on HOST:PORT for TLS".to_owned(),
        ));
    }
    let metrics_on = args.metrics_listen.0.is_some();
    let handle = metrics_on.then(metrics::install);
    let hub_metrics = metrics_on.then(|| {
        metrics::record_limits(&args);
        Arc::new(HubMetrics::new())
    });
    let observer: Arc<dyn Observer> = match &hub_metrics {
        Some(m) => Arc::clone(m) as Arc<dyn Observer>,
        None => Arc::new(NoObserver),
    };
    let cluster = match args.cluster.config().map_err(ClusterError::Config)? {
        Some(config) => Some(Cluster::connect(config).await?),
        None => None,
    };
    let backplane = cluster
        .as_ref()
        .map(|c| Arc::clone(c) as Arc<dyn Backplane>);
    let hub = Hub::with_backplane(args.hub_config(), observer, backplane);
    if let Some(cluster) = &cluster {
        cluster.start(&hub).await?;
    }
    let local_addr = listener.local_addr();
    let sweeper = tokio::spawn(Arc::clone(&hub).run_sweeper());
    let ready = Readiness::default();
    let metrics_http = match (args.metrics_listen.0, handle, hub_metrics) {
        (Some(addr), Some(handle), Some(hub_metrics)) => {
            metrics::bind(addr).await.map(|listener| {
                metrics::spawn_http(
                    listener,
                    Arc::clone(&hub),
                    hub_metrics,
                    handle,
                    ready.clone(),
                    cluster.clone(),
                )
            })
        }
        _ => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ChannelLayerServiceServer<ChannelLayerGrpc>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let max_frame = args.max_frame_bytes();
    let service =
        ChannelLayerServiceServer::new(ChannelLayerGrpc::new(Arc::clone(&hub), max_frame))
            .max_decoding_message_size(max_frame)
            .max_encoding_message_size(usize::MAX);

    // The drain: a signal starts it; the server future ends when in-flight calls finish.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_delay = Duration::from_millis(args.drain_delay_ms);
    let shutdown_timeout = Duration::from_millis(args.shutdown_timeout_ms);
    let drain_hub = Arc::clone(&hub);
    let drain_health = health.clone();
    let drain_ready = ready.clone();
    let draining = Arc::new(AtomicBool::new(false));
    let drain_flag = Arc::clone(&draining);
    let drain_cluster = cluster.clone();
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown.await;
        drain_flag.store(true, Ordering::Relaxed);
        drain_ready.set(false);
        drain_health
            .set_not_serving::<ChannelLayerServiceServer<ChannelLayerGrpc>>()
            .await;
        drain_health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        tokio::time::sleep(drain_delay).await;
        drain_hub.shutdown();
        if let Some(cluster) = drain_cluster {
            cluster.leave().await;
        }
        let _ = stop_tx.send(());
        let _ = drained_tx.send(());
    });

    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let router = builder
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .initial_stream_window_size(Some(4 * 1024 * 1024))
        .initial_connection_window_size(Some(16 * 1024 * 1024))
        .max_frame_size(Some(1024 * 1024))
        .layer(RpcMetricsLayer::new(metrics_on))
        .layer(AuthLayer::new(token.clone()))
        .layer(FrameLimitLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(service);
    let stopped = async {
        let _ = stop_rx.await;
    };
    let max_connections = args.max_connections as usize;
    let handshake_timeout = Duration::from_millis(args.handshake_timeout_ms);
    // Held until the server stops: dropping it removes the socket file.
    let mut socket_file = None;
    let serve: ServeFuture = match listener {
        // `serve_with_incoming*` ignores the builder's `tcp_nodelay`, so the accepted sockets
        // get it from the incoming stream itself. Without it, Nagle's algorithm holds small
        // delivery frames back until the client's delayed ACK: tens of milliseconds on the
        // latency tail.
        Listener::Tcp(listener) => Box::pin(router.serve_with_incoming_shutdown(
            Connections::new(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                max_connections,
                handshake_timeout,
                metrics_on,
            ),
            stopped,
        )),
        Listener::Unix(listener, file) => {
            socket_file = Some(file);
            Box::pin(router.serve_with_incoming_shutdown(
                Connections::new(
                    UnixListenerStream::new(listener),
                    max_connections,
                    handshake_timeout,
                    metrics_on,
                ),
                stopped,
            ))
        }
    };

    match &cluster {
        // Ready while connected to NATS (and, where the cluster shares normal channels,
        // their stream is there): a node that cannot reach the others must not
        // take the traffic of a pod whose rooms span nodes.
        Some(cluster) => {
            let mut connected = cluster.ready();
            let ready = ready.clone();
            let health = health.clone();
            tokio::spawn(async move {
                loop {
                    let up = *connected.borrow_and_update() && !draining.load(Ordering::Relaxed);
                    ready.set(up);
                    if !draining.load(Ordering::Relaxed) {
                        if up {
                            health
                                .set_serving::<ChannelLayerServiceServer<ChannelLayerGrpc>>()
                                .await;
                        } else {
                            health
                                .set_not_serving::<ChannelLayerServiceServer<ChannelLayerGrpc>>()
                                .await;
                        }
                    }
                    if connected.changed().await.is_err() {
                        return;
                    }
                }
            });
        }
        None => ready.set(true),
    }
    if let Some(addr) = local_addr {
        let mode = matches!(addr, ListenAddr::Unix(_)).then(|| args.listen_mode.to_string());
        tracing::info!(
            %addr,
            socket_mode = mode.as_deref(),
            tls = args.tls_cert.is_some(),
            client_certificates = args.tls_client_ca.is_some(),
            auth = token.is_some(),
            metrics = metrics_on,
            worker_threads = tokio::runtime::Handle::try_current()
                .map(|handle| handle.metrics().num_workers())
                .ok(),
            "chanlayer listening"
        );
    }
    let mut serve = serve;
    let result = tokio::select! {
        result = &mut serve => result,
        _ = async {
            let _ = drained_rx.await;
            tokio::time::sleep(shutdown_timeout).await;
        } => {
            tracing::warn!(timeout_ms = args.shutdown_timeout_ms, "calls still running after the shutdown timeout; exiting anyway");
            Ok(())
        }
    };
    sweeper.abort();
    if let Some(task) = metrics_http {
        task.abort();
    }
    // The listener went with the server future; its socket file goes now.
    drop(serve);
    drop(socket_file);
    tracing::info!("chanlayer stopped");
    Ok(result?)
}
