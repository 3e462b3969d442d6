// Original file: proto/chanlayer/v1/channel_layer.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { FlushRequest as _chanlayer_v1_FlushRequest, FlushRequest__Output as _chanlayer_v1_FlushRequest__Output } from '../../chanlayer/v1/FlushRequest.js';
import type { FlushResponse as _chanlayer_v1_FlushResponse, FlushResponse__Output as _chanlayer_v1_FlushResponse__Output } from '../../chanlayer/v1/FlushResponse.js';
import type { GetChannelRequest as _chanlayer_v1_GetChannelRequest, GetChannelRequest__Output as _chanlayer_v1_GetChannelRequest__Output } from '../../chanlayer/v1/GetChannelRequest.js';
import type { GetChannelResponse as _chanlayer_v1_GetChannelResponse, GetChannelResponse__Output as _chanlayer_v1_GetChannelResponse__Output } from '../../chanlayer/v1/GetChannelResponse.js';
import type { GetGroupRequest as _chanlayer_v1_GetGroupRequest, GetGroupRequest__Output as _chanlayer_v1_GetGroupRequest__Output } from '../../chanlayer/v1/GetGroupRequest.js';
import type { GetGroupResponse as _chanlayer_v1_GetGroupResponse, GetGroupResponse__Output as _chanlayer_v1_GetGroupResponse__Output } from '../../chanlayer/v1/GetGroupResponse.js';
import type { GetServerStatsRequest as _chanlayer_v1_GetServerStatsRequest, GetServerStatsRequest__Output as _chanlayer_v1_GetServerStatsRequest__Output } from '../../chanlayer/v1/GetServerStatsRequest.js';
import type { GetServerStatsResponse as _chanlayer_v1_GetServerStatsResponse, GetServerStatsResponse__Output as _chanlayer_v1_GetServerStatsResponse__Output } from '../../chanlayer/v1/GetServerStatsResponse.js';
import type { GroupAddRequest as _chanlayer_v1_GroupAddRequest, GroupAddRequest__Output as _chanlayer_v1_GroupAddRequest__Output } from '../../chanlayer/v1/GroupAddRequest.js';
import type { GroupAddResponse as _chanlayer_v1_GroupAddResponse, GroupAddResponse__Output as _chanlayer_v1_GroupAddResponse__Output } from '../../chanlayer/v1/GroupAddResponse.js';
import type { GroupDiscardRequest as _chanlayer_v1_GroupDiscardRequest, GroupDiscardRequest__Output as _chanlayer_v1_GroupDiscardRequest__Output } from '../../chanlayer/v1/GroupDiscardRequest.js';
import type { GroupDiscardResponse as _chanlayer_v1_GroupDiscardResponse, GroupDiscardResponse__Output as _chanlayer_v1_GroupDiscardResponse__Output } from '../../chanlayer/v1/GroupDiscardResponse.js';
import type { GroupSendRequest as _chanlayer_v1_GroupSendRequest, GroupSendRequest__Output as _chanlayer_v1_GroupSendRequest__Output } from '../../chanlayer/v1/GroupSendRequest.js';
import type { GroupSendResponse as _chanlayer_v1_GroupSendResponse, GroupSendResponse__Output as _chanlayer_v1_GroupSendResponse__Output } from '../../chanlayer/v1/GroupSendResponse.js';
import type { ListGroupMembersRequest as _chanlayer_v1_ListGroupMembersRequest, ListGroupMembersRequest__Output as _chanlayer_v1_ListGroupMembersRequest__Output } from '../../chanlayer/v1/ListGroupMembersRequest.js';
import type { ListGroupMembersResponse as _chanlayer_v1_ListGroupMembersResponse, ListGroupMembersResponse__Output as _chanlayer_v1_ListGroupMembersResponse__Output } from '../../chanlayer/v1/ListGroupMembersResponse.js';
import type { SendRequest as _chanlayer_v1_SendRequest, SendRequest__Output as _chanlayer_v1_SendRequest__Output } from '../../chanlayer/v1/SendRequest.js';
import type { SendResponse as _chanlayer_v1_SendResponse, SendResponse__Output as _chanlayer_v1_SendResponse__Output } from '../../chanlayer/v1/SendResponse.js';
import type { SessionRequest as _chanlayer_v1_SessionRequest, SessionRequest__Output as _chanlayer_v1_SessionRequest__Output } from '../../chanlayer/v1/SessionRequest.js';
import type { SessionResponse as _chanlayer_v1_SessionResponse, SessionResponse__Output as _chanlayer_v1_SessionResponse__Output } from '../../chanlayer/v1/SessionResponse.js';

/**
 * ChannelLayerService is the channel layer.
 * 
 * The unary calls are simple for any language and for grpcurl. A gateway process opens
 * one `Session` stream on which it receives (multiplexing every pending receive of the
 * process) and, optionally, sends and manages groups with less per-call overhead.
 */
export interface ChannelLayerServiceClient extends grpc.Client {
  /**
   * Flush removes every channel, message and group of one namespace. Pending receives
   * stay registered and receive messages sent after the flush.
   */
  Flush(argument: _chanlayer_v1_FlushRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_FlushResponse__Output>): grpc.ClientUnaryCall;
  Flush(argument: _chanlayer_v1_FlushRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_FlushResponse__Output>): grpc.ClientUnaryCall;
  Flush(argument: _chanlayer_v1_FlushRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_FlushResponse__Output>): grpc.ClientUnaryCall;
  Flush(argument: _chanlayer_v1_FlushRequest, callback: grpc.requestCallback<_chanlayer_v1_FlushResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Flush removes every channel, message and group of one namespace. Pending receives
   * stay registered and receive messages sent after the flush.
   */
  flush(argument: _chanlayer_v1_FlushRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_FlushResponse__Output>): grpc.ClientUnaryCall;
  flush(argument: _chanlayer_v1_FlushRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_FlushResponse__Output>): grpc.ClientUnaryCall;
  flush(argument: _chanlayer_v1_FlushRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_FlushResponse__Output>): grpc.ClientUnaryCall;
  flush(argument: _chanlayer_v1_FlushRequest, callback: grpc.requestCallback<_chanlayer_v1_FlushResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * GetChannel returns the depth of a channel: its queued messages and waiting receives.
   */
  GetChannel(argument: _chanlayer_v1_GetChannelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetChannelResponse__Output>): grpc.ClientUnaryCall;
  GetChannel(argument: _chanlayer_v1_GetChannelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GetChannelResponse__Output>): grpc.ClientUnaryCall;
  GetChannel(argument: _chanlayer_v1_GetChannelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetChannelResponse__Output>): grpc.ClientUnaryCall;
  GetChannel(argument: _chanlayer_v1_GetChannelRequest, callback: grpc.requestCallback<_chanlayer_v1_GetChannelResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * GetGroup returns the size of a group. A group that does not exist has no members.
   */
  GetGroup(argument: _chanlayer_v1_GetGroupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetGroupResponse__Output>): grpc.ClientUnaryCall;
  GetGroup(argument: _chanlayer_v1_GetGroupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GetGroupResponse__Output>): grpc.ClientUnaryCall;
  GetGroup(argument: _chanlayer_v1_GetGroupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetGroupResponse__Output>): grpc.ClientUnaryCall;
  GetGroup(argument: _chanlayer_v1_GetGroupRequest, callback: grpc.requestCallback<_chanlayer_v1_GetGroupResponse__Output>): grpc.ClientUnaryCall;
  /**
   * GetGroup returns the size of a group. A group that does not exist has no members.
   */
  getGroup(argument: _chanlayer_v1_GetGroupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetGroupResponse__Output>): grpc.ClientUnaryCall;
  getGroup(argument: _chanlayer_v1_GetGroupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GetGroupResponse__Output>): grpc.ClientUnaryCall;
  getGroup(argument: _chanlayer_v1_GetGroupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetGroupResponse__Output>): grpc.ClientUnaryCall;
  getGroup(argument: _chanlayer_v1_GetGroupRequest, callback: grpc.requestCallback<_chanlayer_v1_GetGroupResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * GetServerStats returns counters and gauges of the whole server (in cluster mode, summed
   * over every node that answers in time).
   */
  GetServerStats(argument: _chanlayer_v1_GetServerStatsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetServerStatsResponse__Output>): grpc.ClientUnaryCall;
  GetServerStats(argument: _chanlayer_v1_GetServerStatsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GetServerStatsResponse__Output>): grpc.ClientUnaryCall;
  GetServerStats(argument: _chanlayer_v1_GetServerStatsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetServerStatsResponse__Output>): grpc.ClientUnaryCall;
  GetServerStats(argument: _chanlayer_v1_GetServerStatsRequest, callback: grpc.requestCallback<_chanlayer_v1_GetServerStatsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * GetServerStats returns counters and gauges of the whole server (in cluster mode, summed
   * over every node that answers in time).
   */
  getServerStats(argument: _chanlayer_v1_GetServerStatsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetServerStatsResponse__Output>): grpc.ClientUnaryCall;
  getServerStats(argument: _chanlayer_v1_GetServerStatsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GetServerStatsResponse__Output>): grpc.ClientUnaryCall;
  getServerStats(argument: _chanlayer_v1_GetServerStatsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GetServerStatsResponse__Output>): grpc.ClientUnaryCall;
  getServerStats(argument: _chanlayer_v1_GetServerStatsRequest, callback: grpc.requestCallback<_chanlayer_v1_GetServerStatsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * GroupAdd adds a channel to a group, or refreshes its membership if it is already a
   * member. The membership expires `group_expiry_seconds` after the last GroupAdd.
   */
  GroupAdd(argument: _chanlayer_v1_GroupAddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupAddResponse__Output>): grpc.ClientUnaryCall;
  GroupAdd(argument: _chanlayer_v1_GroupAddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GroupAddResponse__Output>): grpc.ClientUnaryCall;
  GroupAdd(argument: _chanlayer_v1_GroupAddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupAddResponse__Output>): grpc.ClientUnaryCall;
  GroupAdd(argument: _chanlayer_v1_GroupAddRequest, callback: grpc.requestCallback<_chanlayer_v1_GroupAddResponse__Output>): grpc.ClientUnaryCall;
  /**
   * GroupAdd adds a channel to a group, or refreshes its membership if it is already a
   * member. The membership expires `group_expiry_seconds` after the last GroupAdd.
   */
  groupAdd(argument: _chanlayer_v1_GroupAddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupAddResponse__Output>): grpc.ClientUnaryCall;
  groupAdd(argument: _chanlayer_v1_GroupAddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GroupAddResponse__Output>): grpc.ClientUnaryCall;
  groupAdd(argument: _chanlayer_v1_GroupAddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupAddResponse__Output>): grpc.ClientUnaryCall;
  groupAdd(argument: _chanlayer_v1_GroupAddRequest, callback: grpc.requestCallback<_chanlayer_v1_GroupAddResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * GroupDiscard removes a channel from a group. It succeeds if the channel is not a
   * member.
   */
  GroupDiscard(argument: _chanlayer_v1_GroupDiscardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupDiscardResponse__Output>): grpc.ClientUnaryCall;
  GroupDiscard(argument: _chanlayer_v1_GroupDiscardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GroupDiscardResponse__Output>): grpc.ClientUnaryCall;
  GroupDiscard(argument: _chanlayer_v1_GroupDiscardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupDiscardResponse__Output>): grpc.ClientUnaryCall;
  GroupDiscard(argument: _chanlayer_v1_GroupDiscardRequest, callback: grpc.requestCallback<_chanlayer_v1_GroupDiscardResponse__Output>): grpc.ClientUnaryCall;
  /**
   * GroupDiscard removes a channel from a group. It succeeds if the channel is not a
   * member.
   */
  groupDiscard(argument: _chanlayer_v1_GroupDiscardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupDiscardResponse__Output>): grpc.ClientUnaryCall;
  groupDiscard(argument: _chanlayer_v1_GroupDiscardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GroupDiscardResponse__Output>): grpc.ClientUnaryCall;
  groupDiscard(argument: _chanlayer_v1_GroupDiscardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupDiscardResponse__Output>): grpc.ClientUnaryCall;
  groupDiscard(argument: _chanlayer_v1_GroupDiscardRequest, callback: grpc.requestCallback<_chanlayer_v1_GroupDiscardResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * GroupSend sends one message to every member of a group. A member whose channel is
   * full does not get the message; the response counts such drops. It never fails
   * because a member is full.
   */
  GroupSend(argument: _chanlayer_v1_GroupSendRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupSendResponse__Output>): grpc.ClientUnaryCall;
  GroupSend(argument: _chanlayer_v1_GroupSendRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GroupSendResponse__Output>): grpc.ClientUnaryCall;
  GroupSend(argument: _chanlayer_v1_GroupSendRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupSendResponse__Output>): grpc.ClientUnaryCall;
  GroupSend(argument: _chanlayer_v1_GroupSendRequest, callback: grpc.requestCallback<_chanlayer_v1_GroupSendResponse__Output>): grpc.ClientUnaryCall;
  /**
   * GroupSend sends one message to every member of a group. A member whose channel is
   * full does not get the message; the response counts such drops. It never fails
   * because a member is full.
   */
  groupSend(argument: _chanlayer_v1_GroupSendRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupSendResponse__Output>): grpc.ClientUnaryCall;
  groupSend(argument: _chanlayer_v1_GroupSendRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_GroupSendResponse__Output>): grpc.ClientUnaryCall;
  groupSend(argument: _chanlayer_v1_GroupSendRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_GroupSendResponse__Output>): grpc.ClientUnaryCall;
  groupSend(argument: _chanlayer_v1_GroupSendRequest, callback: grpc.requestCallback<_chanlayer_v1_GroupSendResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * ListGroupMembers lists the members of a group in name order, one page at a time.
   */
  ListGroupMembers(argument: _chanlayer_v1_ListGroupMembersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_ListGroupMembersResponse__Output>): grpc.ClientUnaryCall;
  ListGroupMembers(argument: _chanlayer_v1_ListGroupMembersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_ListGroupMembersResponse__Output>): grpc.ClientUnaryCall;
  ListGroupMembers(argument: _chanlayer_v1_ListGroupMembersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_ListGroupMembersResponse__Output>): grpc.ClientUnaryCall;
  ListGroupMembers(argument: _chanlayer_v1_ListGroupMembersRequest, callback: grpc.requestCallback<_chanlayer_v1_ListGroupMembersResponse__Output>): grpc.ClientUnaryCall;
  /**
   * ListGroupMembers lists the members of a group in name order, one page at a time.
   */
  listGroupMembers(argument: _chanlayer_v1_ListGroupMembersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_ListGroupMembersResponse__Output>): grpc.ClientUnaryCall;
  listGroupMembers(argument: _chanlayer_v1_ListGroupMembersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_ListGroupMembersResponse__Output>): grpc.ClientUnaryCall;
  listGroupMembers(argument: _chanlayer_v1_ListGroupMembersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_ListGroupMembersResponse__Output>): grpc.ClientUnaryCall;
  listGroupMembers(argument: _chanlayer_v1_ListGroupMembersRequest, callback: grpc.requestCallback<_chanlayer_v1_ListGroupMembersResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Send appends one message to a channel.
   * 
   * Fails with RESOURCE_EXHAUSTED / `CHANNEL_FULL` when the channel already holds
   * `capacity` unexpired messages. It never waits for a receiver.
   */
  Send(argument: _chanlayer_v1_SendRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  Send(argument: _chanlayer_v1_SendRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  Send(argument: _chanlayer_v1_SendRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  Send(argument: _chanlayer_v1_SendRequest, callback: grpc.requestCallback<_chanlayer_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Send appends one message to a channel.
   * 
   * Fails with RESOURCE_EXHAUSTED / `CHANNEL_FULL` when the channel already holds
   * `capacity` unexpired messages. It never waits for a receiver.
   */
  send(argument: _chanlayer_v1_SendRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  send(argument: _chanlayer_v1_SendRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_chanlayer_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  send(argument: _chanlayer_v1_SendRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_chanlayer_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  send(argument: _chanlayer_v1_SendRequest, callback: grpc.requestCallback<_chanlayer_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Session is the stream a gateway process keeps open for its whole life.
   * 
   * The first operation of the first frame must be `open`. The server answers with
   * `opened`, then serves the operations of every later frame in order. Receives are
   * demand-driven: a message leaves the server only for a receive that asked for it.
   * Send and group operations are acknowledged in the order they were sent.
   * 
   * Specific channels whose client prefix is the session's, and their group memberships,
   * are leased to the session: when the stream ends and is not resumed within the lease
   * grace period, they are removed and their queued messages are dropped.
   */
  Session(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_chanlayer_v1_SessionRequest, _chanlayer_v1_SessionResponse__Output>;
  Session(options?: grpc.CallOptions): grpc.ClientDuplexStream<_chanlayer_v1_SessionRequest, _chanlayer_v1_SessionResponse__Output>;
  /**
   * Session is the stream a gateway process keeps open for its whole life.
   * 
   * The first operation of the first frame must be `open`. The server answers with
   * `opened`, then serves the operations of every later frame in order. Receives are
   * demand-driven: a message leaves the server only for a receive that asked for it.
   * Send and group operations are acknowledged in the order they were sent.
   * 
   * Specific channels whose client prefix is the session's, and their group memberships,
   * are leased to the session: when the stream ends and is not resumed within the lease
   * grace period, they are removed and their queued messages are dropped.
   */
  session(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_chanlayer_v1_SessionRequest, _chanlayer_v1_SessionResponse__Output>;
  session(options?: grpc.CallOptions): grpc.ClientDuplexStream<_chanlayer_v1_SessionRequest, _chanlayer_v1_SessionResponse__Output>;
  
}

/**
 * ChannelLayerService is the channel layer.
 * 
 * The unary calls are simple for any language and for grpcurl. A gateway process opens
 * one `Session` stream on which it receives (multiplexing every pending receive of the
 * process) and, optionally, sends and manages groups with less per-call overhead.
 */
export interface ChannelLayerServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Flush removes every channel, message and group of one namespace. Pending receives
   * stay registered and receive messages sent after the flush.
   */
  Flush: grpc.handleUnaryCall<_chanlayer_v1_FlushRequest__Output, _chanlayer_v1_FlushResponse>;
  
  /**
   * GetChannel returns the depth of a channel: its queued messages and waiting receives.
   */
  GetChannel: grpc.handleUnaryCall<_chanlayer_v1_GetChannelRequest__Output, _chanlayer_v1_GetChannelResponse>;
  
  /**
   * GetGroup returns the size of a group. A group that does not exist has no members.
   */
  GetGroup: grpc.handleUnaryCall<_chanlayer_v1_GetGroupRequest__Output, _chanlayer_v1_GetGroupResponse>;
  
  /**
   * GetServerStats returns counters and gauges of the whole server (in cluster mode, summed
   * over every node that answers in time).
   */
  GetServerStats: grpc.handleUnaryCall<_chanlayer_v1_GetServerStatsRequest__Output, _chanlayer_v1_GetServerStatsResponse>;
  
  /**
   * GroupAdd adds a channel to a group, or refreshes its membership if it is already a
   * member. The membership expires `group_expiry_seconds` after the last GroupAdd.
   */
  GroupAdd: grpc.handleUnaryCall<_chanlayer_v1_GroupAddRequest__Output, _chanlayer_v1_GroupAddResponse>;
  
  /**
   * GroupDiscard removes a channel from a group. It succeeds if the channel is not a
   * member.
   */
  GroupDiscard: grpc.handleUnaryCall<_chanlayer_v1_GroupDiscardRequest__Output, _chanlayer_v1_GroupDiscardResponse>;
  
  /**
   * GroupSend sends one message to every member of a group. A member whose channel is
   * full does not get the message; the response counts such drops. It never fails
   * because a member is full.
   */
  GroupSend: grpc.handleUnaryCall<_chanlayer_v1_GroupSendRequest__Output, _chanlayer_v1_GroupSendResponse>;
  
  /**
   * ListGroupMembers lists the members of a group in name order, one page at a time.
   */
  ListGroupMembers: grpc.handleUnaryCall<_chanlayer_v1_ListGroupMembersRequest__Output, _chanlayer_v1_ListGroupMembersResponse>;
  
  /**
   * Send appends one message to a channel.
   * 
   * Fails with RESOURCE_EXHAUSTED / `CHANNEL_FULL` when the channel already holds
   * `capacity` unexpired messages. It never waits for a receiver.
   */
  Send: grpc.handleUnaryCall<_chanlayer_v1_SendRequest__Output, _chanlayer_v1_SendResponse>;
  
  /**
   * Session is the stream a gateway process keeps open for its whole life.
   * 
   * The first operation of the first frame must be `open`. The server answers with
   * `opened`, then serves the operations of every later frame in order. Receives are
   * demand-driven: a message leaves the server only for a receive that asked for it.
   * Send and group operations are acknowledged in the order they were sent.
   * 
   * Specific channels whose client prefix is the session's, and their group memberships,
   * are leased to the session: when the stream ends and is not resumed within the lease
   * grace period, they are removed and their queued messages are dropped.
   */
  Session: grpc.handleBidiStreamingCall<_chanlayer_v1_SessionRequest__Output, _chanlayer_v1_SessionResponse>;
  
}

export interface ChannelLayerServiceDefinition extends grpc.ServiceDefinition {
  Flush: MethodDefinition<_chanlayer_v1_FlushRequest, _chanlayer_v1_FlushResponse, _chanlayer_v1_FlushRequest__Output, _chanlayer_v1_FlushResponse__Output>
  GetChannel: MethodDefinition<_chanlayer_v1_GetChannelRequest, _chanlayer_v1_GetChannelResponse, _chanlayer_v1_GetChannelRequest__Output, _chanlayer_v1_GetChannelResponse__Output>
  GetGroup: MethodDefinition<_chanlayer_v1_GetGroupRequest, _chanlayer_v1_GetGroupResponse, _chanlayer_v1_GetGroupRequest__Output, _chanlayer_v1_GetGroupResponse__Output>
  GetServerStats: MethodDefinition<_chanlayer_v1_GetServerStatsRequest, _chanlayer_v1_GetServerStatsResponse, _chanlayer_v1_GetServerStatsRequest__Output, _chanlayer_v1_GetServerStatsResponse__Output>
  GroupAdd: MethodDefinition<_chanlayer_v1_GroupAddRequest, _chanlayer_v1_GroupAddResponse, _chanlayer_v1_GroupAddRequest__Output, _chanlayer_v1_GroupAddResponse__Output>
  GroupDiscard: MethodDefinition<_chanlayer_v1_GroupDiscardRequest, _chanlayer_v1_GroupDiscardResponse, _chanlayer_v1_GroupDiscardRequest__Output, _chanlayer_v1_GroupDiscardResponse__Output>
  GroupSend: MethodDefinition<_chanlayer_v1_GroupSendRequest, _chanlayer_v1_GroupSendResponse, _chanlayer_v1_GroupSendRequest__Output, _chanlayer_v1_GroupSendResponse__Output>
  ListGroupMembers: MethodDefinition<_chanlayer_v1_ListGroupMembersRequest, _chanlayer_v1_ListGroupMembersResponse, _chanlayer_v1_ListGroupMembersRequest__Output, _chanlayer_v1_ListGroupMembersResponse__Output>
  Send: MethodDefinition<_chanlayer_v1_SendRequest, _chanlayer_v1_SendResponse, _chanlayer_v1_SendRequest__Output, _chanlayer_v1_SendResponse__Output>
  Session: MethodDefinition<_chanlayer_v1_SessionRequest, _chanlayer_v1_SessionResponse, _chanlayer_v1_SessionRequest__Output, _chanlayer_v1_SessionResponse__Output>
}
