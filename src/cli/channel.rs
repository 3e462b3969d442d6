//! `chanlayer channel NAME`: a channel's depth (`GetChannel`): queued messages and their
//! bytes, waiting receives, and how long the oldest message has waited.

use clap::Args;
use serde_json::json;

use super::{
    ConnectArgs,
    output::{Failure, Lines, Report, bytes, count, millis},
};

/// Flags of `chanlayer channel`.
#[derive(Debug, Clone, Args)]
pub struct ChannelArgs {
    /// The channel name, such as `chat` or `specific.<client_prefix>!<id>`.
    pub name: String,

    /// Where the server is, and how to print.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Reads the channel's depth.
pub async fn run(args: ChannelArgs) -> Result<Report, Failure> {
    let url = args.connect.url();
    let client = args.connect.client().await?;
    let info = client
        .channel_info(&args.name)
        .await
        .map_err(|e| Failure::client(e, &url))?;
    let mut lines = Lines::default();
    lines
        .add("channel", &args.name)
        .add("namespace", &args.connect.namespace)
        .add(
            "queued",
            format!(
                "{} ({})",
                count(info.queued_messages.into(), "message"),
                bytes(info.queued_bytes)
            ),
        )
        .add("waiting", count(info.waiting_receives.into(), "receive"))
        .add(
            "oldest",
            if info.queued_messages == 0 {
                "-".to_owned()
            } else {
                format!("waited {}", millis(info.oldest_message_age_ms))
            },
        );
    let json = json!({
        "namespace": args.connect.namespace,
        "channel": args.name,
        "queued_messages": info.queued_messages,
        "queued_bytes": info.queued_bytes,
        "waiting_receives": info.waiting_receives,
        "oldest_message_age_ms": info.oldest_message_age_ms,
    });
    Ok(Report::new(lines.render(), json))
}
