//! Prometheus metrics: the one list of every metric the server exports, the recorder, the
//! hub observer, the per-RPC tower layer and the HTTP endpoint (`/metrics`, `/healthz`,
//! `/readyz`).
//!
//! Names follow Prometheus' conventions: `chanlayer_` first, a base unit (`_seconds`,
//! `_bytes`) where there is one, `_total` on counters only. Labels take values from small
//! fixed sets (`method`, `code`, `reason`, `limit`); channel and group names never appear.
//!
//! Most values cost nothing on the hot path: the gauges and most counters are read from
//! `Hub::stats` when Prometheus scrapes. Only what the hub cannot count itself is
//! recorded as it happens, through registered handles: the delivery latency and group
//! fan-out histograms (`HubMetrics`, the hub's observer) and the per-RPC counters
//! and latencies (`RpcMetricsLayer`).
//!
//! Files: `names` (the list), `recorder` (installing the exporter, the limits, the values
//! read from the hub at each scrape), `histogram` (the per-message histograms),
//! `observer` (the hub's `Observer`), `rpc` (the tower layer) and
//! `http` (the endpoint).

mod histogram;
mod http;
mod names;
mod observer;
mod recorder;
mod rpc;

pub use self::names::*;
pub(crate) use self::{
    http::{Readiness, bind, spawn_http},
    observer::HubMetrics,
    recorder::{install, record_limits},
    rpc::{RpcMetricsLayer, code_label},
};
