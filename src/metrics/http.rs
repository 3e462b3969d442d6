//! The HTTP endpoint: `/metrics` (the recorder's output, refreshed from the hub, with the
//! atomic histograms), `/healthz` and `/readyz`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::{
    cluster::Cluster,
    hub::Hub,
    metrics::{
        observer::HubMetrics,
        recorder::{refresh, refresh_cluster},
    },
};

/// Whether the server accepts calls; `/readyz` and `chanlayer_ready` report it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Sets it.
    pub(crate) fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Reads it.
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct HttpState {
    hub: Arc<Hub>,
    hub_metrics: Arc<HubMetrics>,
    handle: PrometheusHandle,
    ready: Readiness,
    cluster: Option<Arc<Cluster>>,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the process ends, and
/// keeps the recorder's histograms drained between scrapes.
pub(crate) fn spawn_http(
    listener: TcpListener,
    hub: Arc<Hub>,
    hub_metrics: Arc<HubMetrics>,
    handle: PrometheusHandle,
    ready: Readiness,
    cluster: Option<Arc<Cluster>>,
) -> tokio::task::JoinHandle<()> {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(HttpState {
            hub,
            hub_metrics,
            handle,
            ready,
            cluster,
        });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics endpoint failed");
        }
    })
}

/// Binds the metrics listener; logs and returns `None` when the address is taken, so that
/// the channel layer runs even when its metrics cannot.
pub(crate) async fn bind(addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "metrics listening");
            }
            Some(listener)
        }
        Err(error) => {
            tracing::error!(%addr, %error, "cannot serve metrics; continuing without them");
            None
        }
    }
}

async fn render(State(state): State<HttpState>) -> impl IntoResponse {
    refresh(&state.hub, state.ready.get());
    if let Some(cluster) = &state.cluster {
        refresh_cluster(cluster);
    }
    let mut text = state.handle.render();
    state.hub_metrics.render(&mut text);
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.ready.get() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    }
}
