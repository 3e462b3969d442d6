//! The service's calls: each unary call converts its request, asks the hub, and answers;
//! the Session stream is opened in `session`.

use tonic::{Request, Response, Status, Streaming, metadata::MetadataValue};

use crate::{
    grpc::{
        ChannelLayerGrpc, MAX_PAGE_SIZE, SessionStream, VERSION_HEADER, convert, guard::guarded,
        ms, status::invalid_argument,
    },
    proto::v1::{self as pb, channel_layer_service_server::ChannelLayerService},
};

#[tonic::async_trait]
impl ChannelLayerService for ChannelLayerGrpc {
    async fn send(
        &self,
        request: Request<pb::SendRequest>,
    ) -> Result<Response<pb::SendResponse>, Status> {
        guarded("serving Send", async move {
            let r = request.into_inner();
            let delivered = self
                .hub
                .send(
                    &r.namespace,
                    &r.channel,
                    r.message,
                    convert::capacity(r.capacity),
                    convert::expiry(r.expiry_ms),
                )
                .await?;
            Ok(Response::new(pb::SendResponse { delivered }))
        })
        .await
    }

    async fn group_add(
        &self,
        request: Request<pb::GroupAddRequest>,
    ) -> Result<Response<pb::GroupAddResponse>, Status> {
        guarded("serving GroupAdd", async move {
            let r = request.into_inner();
            let added = self
                .hub
                .group_add(
                    &r.namespace,
                    &r.group,
                    &r.channel,
                    convert::group_expiry(r.group_expiry_seconds),
                )
                .await?;
            Ok(Response::new(pb::GroupAddResponse { added }))
        })
        .await
    }

    async fn group_discard(
        &self,
        request: Request<pb::GroupDiscardRequest>,
    ) -> Result<Response<pb::GroupDiscardResponse>, Status> {
        guarded("serving GroupDiscard", async move {
            let r = request.into_inner();
            let removed = self
                .hub
                .group_discard(&r.namespace, &r.group, &r.channel)
                .await?;
            Ok(Response::new(pb::GroupDiscardResponse { removed }))
        })
        .await
    }

    async fn group_send(
        &self,
        request: Request<pb::GroupSendRequest>,
    ) -> Result<Response<pb::GroupSendResponse>, Status> {
        guarded("serving GroupSend", async move {
            let r = request.into_inner();
            let rules = self.capacities.rules(r.capacity, &r.channel_capacity)?;
            let (delivered, dropped) = self.hub.group_send(
                &r.namespace,
                &r.group,
                r.message,
                &rules,
                convert::expiry(r.expiry_ms),
            )?;
            Ok(Response::new(pb::GroupSendResponse {
                delivered: delivered as u32,
                dropped: dropped as u32,
            }))
        })
        .await
    }

    async fn flush(
        &self,
        request: Request<pb::FlushRequest>,
    ) -> Result<Response<pb::FlushResponse>, Status> {
        guarded("serving Flush", async move {
            let r = request.into_inner();
            let report = self.hub.flush(&r.namespace).await?;
            Ok(Response::new(pb::FlushResponse {
                dropped_messages: report.dropped_messages,
                removed_groups: report.removed_groups,
            }))
        })
        .await
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::GetGroupResponse>, Status> {
        guarded("serving GetGroup", async move {
            let r = request.into_inner();
            let (size, missing) = self.hub.group_size(&r.namespace, &r.group).await?;
            warn_partial("GetGroup", missing);
            Ok(Response::new(pb::GetGroupResponse {
                group: r.group,
                member_count: size as u32,
                missing_nodes: missing as u32,
            }))
        })
        .await
    }

    async fn list_group_members(
        &self,
        request: Request<pb::ListGroupMembersRequest>,
    ) -> Result<Response<pb::ListGroupMembersResponse>, Status> {
        guarded("serving ListGroupMembers", async move {
            let r = request.into_inner();
            let page_size = match r.page_size as usize {
                0 => 1_000,
                n if n > MAX_PAGE_SIZE => {
                    return Err(invalid_argument(
                        "INVALID_PAGE_SIZE",
                        format!("page_size {n} is larger than the maximum of {MAX_PAGE_SIZE}"),
                    ));
                }
                n => n,
            };
            // The page token is the name of the last member of the previous page: member
            // names are ASCII, so it is printable and needs no encoding.
            if r.page_token.len() >= crate::core::names::MAX_NAME_LENGTH {
                return Err(invalid_argument(
                    "INVALID_PAGE_TOKEN",
                    "page_token is not one this server issued",
                ));
            }
            let (page, missing) = self
                .hub
                .group_members(&r.namespace, &r.group, &r.page_token, page_size)
                .await?;
            warn_partial("ListGroupMembers", missing);
            let next_page_token = match (page.more, page.members.last()) {
                (true, Some((name, _))) => name.clone(),
                _ => String::new(),
            };
            Ok(Response::new(pb::ListGroupMembersResponse {
                members: page
                    .members
                    .into_iter()
                    .map(|(channel, left)| pb::GroupMember {
                        channel,
                        expires_in_ms: ms(left),
                    })
                    .collect(),
                next_page_token,
                total_size: page.total as u32,
                missing_nodes: missing as u32,
            }))
        })
        .await
    }

    async fn get_channel(
        &self,
        request: Request<pb::GetChannelRequest>,
    ) -> Result<Response<pb::GetChannelResponse>, Status> {
        guarded("serving GetChannel", async move {
            let r = request.into_inner();
            let info = self.hub.channel_info(&r.namespace, &r.channel)?;
            Ok(Response::new(pb::GetChannelResponse {
                channel: r.channel,
                queued_messages: info.queued_messages as u32,
                queued_bytes: info.queued_bytes as u64,
                waiting_receives: info.waiting_receives as u32,
                oldest_message_age_ms: ms(info.oldest_message_age),
            }))
        })
        .await
    }

    async fn get_server_stats(
        &self,
        request: Request<pb::GetServerStatsRequest>,
    ) -> Result<Response<pb::GetServerStatsResponse>, Status> {
        guarded("serving GetServerStats", async move {
            let (s, nodes, missing) = if request.get_ref().this_node_only {
                (self.hub.stats(), 1, 0)
            } else {
                self.hub.cluster_stats().await?
            };
            warn_partial("GetServerStats", missing);
            let mut response = Response::new(pb::GetServerStatsResponse {
                nodes: nodes as u32,
                missing_nodes: missing as u32,
                uptime_seconds: s.uptime.as_secs(),
                sessions_open: s.sessions_open,
                sessions_detached: s.sessions_detached,
                pending_receives: s.core.waiting_receives,
                channels: s.core.channels,
                groups: s.core.groups,
                memberships: s.core.memberships,
                queued_messages: s.core.queued_messages,
                queued_bytes: s.core.queued_bytes,
                messages_sent_total: s.core.sent_total,
                messages_delivered_total: s.delivered_total,
                dropped_channel_full_total: s.core.dropped_channel_full_total,
                dropped_expired_total: s.core.dropped_expired_total,
                dropped_session_gone_total: s.core.dropped_session_gone_total,
                dropped_flushed_total: s.core.dropped_flushed_total,
                memberships_expired_total: s.core.memberships_expired_total,
                memberships_released_total: s.core.memberships_released_total,
            });
            // The server's version, for `chanlayer status`; only to callers with the token.
            response.metadata_mut().insert(
                VERSION_HEADER,
                MetadataValue::from_static(env!("CARGO_PKG_VERSION")),
            );
            Ok(response)
        })
        .await
    }

    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        guarded("opening a Session stream", async move {
            self.open_session(request.into_inner()).await
        })
        .await
    }
}

/// Logs an answer for the whole cluster that lacks some nodes' part.
fn warn_partial(call: &str, missing: usize) {
    if missing > 0 {
        tracing::warn!(
            call,
            missing_nodes = missing,
            "answered without the nodes that did not reply in time"
        );
    }
}
