//! Assembly: the channel-layer service with health and reflection on one listener, the
//! sweeper, and the shutdown sequence.
//!
//! Shutdown, in order: health turns NOT_SERVING; after the drain delay the hub refuses new
//! sessions and tells every session stream that the server goes away (clients resume
//! elsewhere); the listener stops accepting and in-flight calls drain; after the shutdown
//! timeout the server returns whatever is still running.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::{
    config::ServeArgs,
    grpc::ChannelLayerGrpc,
    hub::Hub,
    proto::{FILE_DESCRIPTOR_SET, v1::channel_layer_service_server::ChannelLayerServiceServer},
};

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Binds the gRPC listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves on `listener` until `shutdown` resolves, then shuts down gracefully.
pub async fn run(
    listener: TcpListener,
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let hub = Hub::new(args.hub_config());
    let local_addr = listener.local_addr().ok();
    let sweeper = tokio::spawn(Arc::clone(&hub).run_sweeper());

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
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown.await;
        drain_health
            .set_not_serving::<ChannelLayerServiceServer<ChannelLayerGrpc>>()
            .await;
        drain_health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        tokio::time::sleep(drain_delay).await;
        drain_hub.shutdown();
        let _ = stop_tx.send(());
        let _ = drained_tx.send(());
    });

    let serve = Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .initial_stream_window_size(Some(4 * 1024 * 1024))
        .initial_connection_window_size(Some(16 * 1024 * 1024))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = stop_rx.await;
        });

    if let Some(addr) = local_addr {
        tracing::info!(%addr, "chanlayer listening");
    }
    let mut serve = std::pin::pin!(serve);
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
    tracing::info!("chanlayer stopped");
    Ok(result?)
}
