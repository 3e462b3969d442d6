//! `chanlayer flush --yes`: removes every channel, message and group of one namespace, as
//! the Django layer's `flush()` does. Without `--yes` it refuses and sends nothing.

use clap::Args;
use serde_json::json;

use super::{
    ConnectArgs,
    output::{Failure, Lines, Report, count},
};

/// Flags of `chanlayer flush`.
#[derive(Debug, Clone, Args)]
pub struct FlushArgs {
    /// Really flush: every channel, queued message and group of the namespace is removed.
    #[arg(long)]
    pub yes: bool,

    /// Where the server is, and how to print.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Flushes the namespace, once confirmed.
pub async fn run(args: FlushArgs) -> Result<Report, Failure> {
    let url = args.connect.url();
    if !args.yes {
        return Err(Failure::usage(format!(
            "flush removes every channel, message and group of namespace {:?} on {url}; \
             run it again with --yes to do so",
            args.connect.namespace
        )));
    }
    let client = args.connect.client().await?;
    let flushed = client.flush().await.map_err(|e| Failure::client(e, &url))?;
    let mut lines = Lines::default();
    lines
        .add("flushed", format!("namespace {:?}", args.connect.namespace))
        .add("dropped", count(flushed.dropped_messages, "message"))
        .add("removed", count(flushed.removed_groups, "group"));
    let json = json!({
        "namespace": args.connect.namespace,
        "dropped_messages": flushed.dropped_messages,
        "removed_groups": flushed.removed_groups,
    });
    Ok(Report::new(lines.render(), json))
}
