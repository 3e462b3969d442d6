//! `chanlayer status`: the server's health (`grpc.health.v1.Health`, which needs no
//! token), then its version, uptime and counters (`GetServerStats`: in cluster mode summed
//! over the nodes that answer, unless `--this-node`). Exits 1 when the server does not
//! report SERVING.

use clap::Args;
use serde_json::json;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{
    ConnectArgs,
    output::{Failure, Lines, Report, bytes, count, seconds},
};
use crate::{grpc::VERSION_HEADER, proto::v1::GetServerStatsRequest};

/// The service name the channel layer's health is reported under.
const SERVICE: &str = "chanlayer.v1.ChannelLayerService";

/// Flags of `chanlayer status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Where the server is, and how to print.
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// In cluster mode, the counters of the node at `--target` alone (by default they are
    /// summed over every node that answers in time).
    #[arg(long)]
    pub this_node: bool,
}

/// The health of `service` (`""` for the whole server), as its name (`SERVING`, ...).
async fn check(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
    url: &str,
) -> Result<String, Failure> {
    health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map(|r| r.into_inner().status().as_str_name().to_owned())
        .map_err(|status| Failure::status(&status, url))
}

/// Checks health, then reads the stats.
pub async fn run(args: StatusArgs) -> Result<Report, Failure> {
    let connect = &args.connect;
    let url = connect.url();
    let channel = connect.channel().await?;
    let client = connect.client_over(channel.clone())?;
    let mut health = HealthClient::new(channel);
    let server_health = check(&mut health, "", &url).await?;
    let service_health = check(&mut health, SERVICE, &url).await?;
    let response = client
        .grpc()
        .get_server_stats(GetServerStatsRequest {
            this_node_only: args.this_node,
        })
        .await
        .map_err(|status| Failure::status(&status, &url))?;
    let version = response
        .metadata()
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_owned();
    let s = response.into_inner();
    let serving = server_health == "SERVING" && service_health == "SERVING";

    let mut lines = Lines::default();
    lines
        .add("target", &url)
        .add(
            "health",
            if server_health == service_health {
                server_health.clone()
            } else {
                format!("{server_health} (channel layer: {service_health})")
            },
        )
        .add("version", &version)
        .add("uptime", seconds(s.uptime_seconds))
        .add(
            "nodes",
            if s.missing_nodes == 0 {
                s.nodes.to_string()
            } else {
                format!("{} ({} did not answer in time)", s.nodes, s.missing_nodes)
            },
        )
        .add(
            "sessions",
            format!("{} open, {} detached", s.sessions_open, s.sessions_detached),
        )
        .add("receives", format!("{} pending", s.pending_receives))
        .add("channels", s.channels)
        .add(
            "groups",
            format!("{} ({})", s.groups, count(s.memberships, "membership")),
        )
        .add(
            "queued",
            format!(
                "{} ({})",
                count(s.queued_messages, "message"),
                bytes(s.queued_bytes)
            ),
        )
        .add(
            "messages",
            format!(
                "{} sent, {} delivered",
                s.messages_sent_total, s.messages_delivered_total
            ),
        )
        .add(
            "dropped",
            format!(
                "{} channel full, {} expired, {} session gone, {} flushed",
                s.dropped_channel_full_total,
                s.dropped_expired_total,
                s.dropped_session_gone_total,
                s.dropped_flushed_total
            ),
        )
        .add(
            "memberships",
            format!(
                "{} expired, {} released",
                s.memberships_expired_total, s.memberships_released_total
            ),
        );
    let json = json!({
        "target": url,
        "serving": serving,
        "health": server_health,
        "service_health": service_health,
        "version": version,
        "cli_version": env!("CARGO_PKG_VERSION"),
        "stats": {
            "nodes": s.nodes,
            "missing_nodes": s.missing_nodes,
            "uptime_seconds": s.uptime_seconds,
            "sessions_open": s.sessions_open,
            "sessions_detached": s.sessions_detached,
            "pending_receives": s.pending_receives,
            "channels": s.channels,
            "groups": s.groups,
            "memberships": s.memberships,
            "queued_messages": s.queued_messages,
            "queued_bytes": s.queued_bytes,
            "messages_sent_total": s.messages_sent_total,
            "messages_delivered_total": s.messages_delivered_total,
            "dropped_channel_full_total": s.dropped_channel_full_total,
            "dropped_expired_total": s.dropped_expired_total,
            "dropped_session_gone_total": s.dropped_session_gone_total,
            "dropped_flushed_total": s.dropped_flushed_total,
            "memberships_expired_total": s.memberships_expired_total,
            "memberships_released_total": s.memberships_released_total,
        },
    });
    let mut report = Report::new(lines.render(), json);
    report.ok = serving;
    Ok(report)
}
