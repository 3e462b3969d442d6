//! `chanlayer group NAME`: a group's size and members (`ListGroupMembers`, page by page),
//! with how long each membership has left; in cluster mode, how many nodes did not answer.

use clap::Args;
use serde_json::json;

use super::{
    ConnectArgs,
    output::{Failure, Lines, Report, count, millis},
};
use crate::proto::v1::ListGroupMembersRequest;

/// Flags of `chanlayer group`.
#[derive(Debug, Clone, Args)]
pub struct GroupArgs {
    /// The group name.
    pub name: String,

    /// List at most this many members (the size still counts them all); 0 lists every one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub limit: usize,

    /// Where the server is, and how to print.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Lists the group.
pub async fn run(args: GroupArgs) -> Result<Report, Failure> {
    let url = args.connect.url();
    let client = args.connect.client().await?;
    let mut members = Vec::new();
    let mut page_token = String::new();
    let (total, missing_nodes) = loop {
        let page = client
            .grpc()
            .list_group_members(ListGroupMembersRequest {
                namespace: args.connect.namespace.clone(),
                group: args.name.clone(),
                page_size: 0,
                page_token,
            })
            .await
            .map_err(|status| Failure::status(&status, &url))?
            .into_inner();
        members.extend(page.members);
        let full = args.limit > 0 && members.len() >= args.limit;
        if page.next_page_token.is_empty() || full {
            break (page.total_size, page.missing_nodes);
        }
        page_token = page.next_page_token;
    };
    if args.limit > 0 {
        members.truncate(args.limit);
    }

    let mut lines = Lines::default();
    lines
        .add("group", &args.name)
        .add("namespace", &args.connect.namespace)
        .add("size", count(total.into(), "member"));
    if missing_nodes > 0 {
        lines.add(
            "missing",
            format!(
                "{} did not answer: their members are not counted",
                count(missing_nodes.into(), "node")
            ),
        );
    }
    let mut human = lines.render();
    if !members.is_empty() {
        human.push('\n');
        let width = members.iter().map(|m| m.channel.len()).max().unwrap_or(0);
        for m in &members {
            human.push_str(&format!(
                "{:<width$}  expires in {}\n",
                m.channel,
                millis(m.expires_in_ms)
            ));
        }
        if (members.len() as u64) < u64::from(total) {
            human.push_str(&format!(
                "... {} more\n",
                u64::from(total) - members.len() as u64
            ));
        }
    }
    let json = json!({
        "namespace": args.connect.namespace,
        "group": args.name,
        "size": total,
        "missing_nodes": missing_nodes,
        "members": members
            .iter()
            .map(|m| json!({ "channel": m.channel, "expires_in_ms": m.expires_in_ms }))
            .collect::<Vec<_>>(),
    });
    Ok(Report::new(human, json))
}
