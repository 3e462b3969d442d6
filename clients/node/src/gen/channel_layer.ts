import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { CancelOperation as _chanlayer_v1_CancelOperation, CancelOperation__Output as _chanlayer_v1_CancelOperation__Output } from './chanlayer/v1/CancelOperation.js';
import type { CapacityRule as _chanlayer_v1_CapacityRule, CapacityRule__Output as _chanlayer_v1_CapacityRule__Output } from './chanlayer/v1/CapacityRule.js';
import type { ChannelLayerServiceClient as _chanlayer_v1_ChannelLayerServiceClient, ChannelLayerServiceDefinition as _chanlayer_v1_ChannelLayerServiceDefinition } from './chanlayer/v1/ChannelLayerService.js';
import type { CloseOperation as _chanlayer_v1_CloseOperation, CloseOperation__Output as _chanlayer_v1_CloseOperation__Output } from './chanlayer/v1/CloseOperation.js';
import type { DeliveredMessage as _chanlayer_v1_DeliveredMessage, DeliveredMessage__Output as _chanlayer_v1_DeliveredMessage__Output } from './chanlayer/v1/DeliveredMessage.js';
import type { Delivery as _chanlayer_v1_Delivery, Delivery__Output as _chanlayer_v1_Delivery__Output } from './chanlayer/v1/Delivery.js';
import type { ErrorDetail as _chanlayer_v1_ErrorDetail, ErrorDetail__Output as _chanlayer_v1_ErrorDetail__Output } from './chanlayer/v1/ErrorDetail.js';
import type { FlushRequest as _chanlayer_v1_FlushRequest, FlushRequest__Output as _chanlayer_v1_FlushRequest__Output } from './chanlayer/v1/FlushRequest.js';
import type { FlushResponse as _chanlayer_v1_FlushResponse, FlushResponse__Output as _chanlayer_v1_FlushResponse__Output } from './chanlayer/v1/FlushResponse.js';
import type { GetChannelRequest as _chanlayer_v1_GetChannelRequest, GetChannelRequest__Output as _chanlayer_v1_GetChannelRequest__Output } from './chanlayer/v1/GetChannelRequest.js';
import type { GetChannelResponse as _chanlayer_v1_GetChannelResponse, GetChannelResponse__Output as _chanlayer_v1_GetChannelResponse__Output } from './chanlayer/v1/GetChannelResponse.js';
import type { GetGroupRequest as _chanlayer_v1_GetGroupRequest, GetGroupRequest__Output as _chanlayer_v1_GetGroupRequest__Output } from './chanlayer/v1/GetGroupRequest.js';
import type { GetGroupResponse as _chanlayer_v1_GetGroupResponse, GetGroupResponse__Output as _chanlayer_v1_GetGroupResponse__Output } from './chanlayer/v1/GetGroupResponse.js';
import type { GetServerStatsRequest as _chanlayer_v1_GetServerStatsRequest, GetServerStatsRequest__Output as _chanlayer_v1_GetServerStatsRequest__Output } from './chanlayer/v1/GetServerStatsRequest.js';
import type { GetServerStatsResponse as _chanlayer_v1_GetServerStatsResponse, GetServerStatsResponse__Output as _chanlayer_v1_GetServerStatsResponse__Output } from './chanlayer/v1/GetServerStatsResponse.js';
import type { GroupAddOperation as _chanlayer_v1_GroupAddOperation, GroupAddOperation__Output as _chanlayer_v1_GroupAddOperation__Output } from './chanlayer/v1/GroupAddOperation.js';
import type { GroupAddRequest as _chanlayer_v1_GroupAddRequest, GroupAddRequest__Output as _chanlayer_v1_GroupAddRequest__Output } from './chanlayer/v1/GroupAddRequest.js';
import type { GroupAddResponse as _chanlayer_v1_GroupAddResponse, GroupAddResponse__Output as _chanlayer_v1_GroupAddResponse__Output } from './chanlayer/v1/GroupAddResponse.js';
import type { GroupDiscardOperation as _chanlayer_v1_GroupDiscardOperation, GroupDiscardOperation__Output as _chanlayer_v1_GroupDiscardOperation__Output } from './chanlayer/v1/GroupDiscardOperation.js';
import type { GroupDiscardRequest as _chanlayer_v1_GroupDiscardRequest, GroupDiscardRequest__Output as _chanlayer_v1_GroupDiscardRequest__Output } from './chanlayer/v1/GroupDiscardRequest.js';
import type { GroupDiscardResponse as _chanlayer_v1_GroupDiscardResponse, GroupDiscardResponse__Output as _chanlayer_v1_GroupDiscardResponse__Output } from './chanlayer/v1/GroupDiscardResponse.js';
import type { GroupMember as _chanlayer_v1_GroupMember, GroupMember__Output as _chanlayer_v1_GroupMember__Output } from './chanlayer/v1/GroupMember.js';
import type { GroupSendOperation as _chanlayer_v1_GroupSendOperation, GroupSendOperation__Output as _chanlayer_v1_GroupSendOperation__Output } from './chanlayer/v1/GroupSendOperation.js';
import type { GroupSendRequest as _chanlayer_v1_GroupSendRequest, GroupSendRequest__Output as _chanlayer_v1_GroupSendRequest__Output } from './chanlayer/v1/GroupSendRequest.js';
import type { GroupSendResponse as _chanlayer_v1_GroupSendResponse, GroupSendResponse__Output as _chanlayer_v1_GroupSendResponse__Output } from './chanlayer/v1/GroupSendResponse.js';
import type { ListGroupMembersRequest as _chanlayer_v1_ListGroupMembersRequest, ListGroupMembersRequest__Output as _chanlayer_v1_ListGroupMembersRequest__Output } from './chanlayer/v1/ListGroupMembersRequest.js';
import type { ListGroupMembersResponse as _chanlayer_v1_ListGroupMembersResponse, ListGroupMembersResponse__Output as _chanlayer_v1_ListGroupMembersResponse__Output } from './chanlayer/v1/ListGroupMembersResponse.js';
import type { OpenOperation as _chanlayer_v1_OpenOperation, OpenOperation__Output as _chanlayer_v1_OpenOperation__Output } from './chanlayer/v1/OpenOperation.js';
import type { OperationResult as _chanlayer_v1_OperationResult, OperationResult__Output as _chanlayer_v1_OperationResult__Output } from './chanlayer/v1/OperationResult.js';
import type { ReceiveCancelled as _chanlayer_v1_ReceiveCancelled, ReceiveCancelled__Output as _chanlayer_v1_ReceiveCancelled__Output } from './chanlayer/v1/ReceiveCancelled.js';
import type { ReceiveFailed as _chanlayer_v1_ReceiveFailed, ReceiveFailed__Output as _chanlayer_v1_ReceiveFailed__Output } from './chanlayer/v1/ReceiveFailed.js';
import type { ReceiveOperation as _chanlayer_v1_ReceiveOperation, ReceiveOperation__Output as _chanlayer_v1_ReceiveOperation__Output } from './chanlayer/v1/ReceiveOperation.js';
import type { SendOperation as _chanlayer_v1_SendOperation, SendOperation__Output as _chanlayer_v1_SendOperation__Output } from './chanlayer/v1/SendOperation.js';
import type { SendRequest as _chanlayer_v1_SendRequest, SendRequest__Output as _chanlayer_v1_SendRequest__Output } from './chanlayer/v1/SendRequest.js';
import type { SendResponse as _chanlayer_v1_SendResponse, SendResponse__Output as _chanlayer_v1_SendResponse__Output } from './chanlayer/v1/SendResponse.js';
import type { SessionClosing as _chanlayer_v1_SessionClosing, SessionClosing__Output as _chanlayer_v1_SessionClosing__Output } from './chanlayer/v1/SessionClosing.js';
import type { SessionEvent as _chanlayer_v1_SessionEvent, SessionEvent__Output as _chanlayer_v1_SessionEvent__Output } from './chanlayer/v1/SessionEvent.js';
import type { SessionOpened as _chanlayer_v1_SessionOpened, SessionOpened__Output as _chanlayer_v1_SessionOpened__Output } from './chanlayer/v1/SessionOpened.js';
import type { SessionOperation as _chanlayer_v1_SessionOperation, SessionOperation__Output as _chanlayer_v1_SessionOperation__Output } from './chanlayer/v1/SessionOperation.js';
import type { SessionRequest as _chanlayer_v1_SessionRequest, SessionRequest__Output as _chanlayer_v1_SessionRequest__Output } from './chanlayer/v1/SessionRequest.js';
import type { SessionResponse as _chanlayer_v1_SessionResponse, SessionResponse__Output as _chanlayer_v1_SessionResponse__Output } from './chanlayer/v1/SessionResponse.js';
import type { SharedDelivery as _chanlayer_v1_SharedDelivery, SharedDelivery__Output as _chanlayer_v1_SharedDelivery__Output } from './chanlayer/v1/SharedDelivery.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  chanlayer: {
    v1: {
      CancelOperation: MessageTypeDefinition<_chanlayer_v1_CancelOperation, _chanlayer_v1_CancelOperation__Output>
      CapacityRule: MessageTypeDefinition<_chanlayer_v1_CapacityRule, _chanlayer_v1_CapacityRule__Output>
      /**
       * ChannelLayerService is the channel layer.
       * 
       * The unary calls are simple for any language and for grpcurl. A gateway process opens
       * one `Session` stream on which it receives (multiplexing every pending receive of the
       * process) and, optionally, sends and manages groups with less per-call overhead.
       */
      ChannelLayerService: SubtypeConstructor<typeof grpc.Client, _chanlayer_v1_ChannelLayerServiceClient> & { service: _chanlayer_v1_ChannelLayerServiceDefinition }
      CloseOperation: MessageTypeDefinition<_chanlayer_v1_CloseOperation, _chanlayer_v1_CloseOperation__Output>
      DeliveredMessage: MessageTypeDefinition<_chanlayer_v1_DeliveredMessage, _chanlayer_v1_DeliveredMessage__Output>
      Delivery: MessageTypeDefinition<_chanlayer_v1_Delivery, _chanlayer_v1_Delivery__Output>
      ErrorDetail: MessageTypeDefinition<_chanlayer_v1_ErrorDetail, _chanlayer_v1_ErrorDetail__Output>
      FlushRequest: MessageTypeDefinition<_chanlayer_v1_FlushRequest, _chanlayer_v1_FlushRequest__Output>
      FlushResponse: MessageTypeDefinition<_chanlayer_v1_FlushResponse, _chanlayer_v1_FlushResponse__Output>
      GetChannelRequest: MessageTypeDefinition<_chanlayer_v1_GetChannelRequest, _chanlayer_v1_GetChannelRequest__Output>
      GetChannelResponse: MessageTypeDefinition<_chanlayer_v1_GetChannelResponse, _chanlayer_v1_GetChannelResponse__Output>
      GetGroupRequest: MessageTypeDefinition<_chanlayer_v1_GetGroupRequest, _chanlayer_v1_GetGroupRequest__Output>
      GetGroupResponse: MessageTypeDefinition<_chanlayer_v1_GetGroupResponse, _chanlayer_v1_GetGroupResponse__Output>
      GetServerStatsRequest: MessageTypeDefinition<_chanlayer_v1_GetServerStatsRequest, _chanlayer_v1_GetServerStatsRequest__Output>
      GetServerStatsResponse: MessageTypeDefinition<_chanlayer_v1_GetServerStatsResponse, _chanlayer_v1_GetServerStatsResponse__Output>
      GroupAddOperation: MessageTypeDefinition<_chanlayer_v1_GroupAddOperation, _chanlayer_v1_GroupAddOperation__Output>
      GroupAddRequest: MessageTypeDefinition<_chanlayer_v1_GroupAddRequest, _chanlayer_v1_GroupAddRequest__Output>
      GroupAddResponse: MessageTypeDefinition<_chanlayer_v1_GroupAddResponse, _chanlayer_v1_GroupAddResponse__Output>
      GroupDiscardOperation: MessageTypeDefinition<_chanlayer_v1_GroupDiscardOperation, _chanlayer_v1_GroupDiscardOperation__Output>
      GroupDiscardRequest: MessageTypeDefinition<_chanlayer_v1_GroupDiscardRequest, _chanlayer_v1_GroupDiscardRequest__Output>
      GroupDiscardResponse: MessageTypeDefinition<_chanlayer_v1_GroupDiscardResponse, _chanlayer_v1_GroupDiscardResponse__Output>
      GroupMember: MessageTypeDefinition<_chanlayer_v1_GroupMember, _chanlayer_v1_GroupMember__Output>
      GroupSendOperation: MessageTypeDefinition<_chanlayer_v1_GroupSendOperation, _chanlayer_v1_GroupSendOperation__Output>
      GroupSendRequest: MessageTypeDefinition<_chanlayer_v1_GroupSendRequest, _chanlayer_v1_GroupSendRequest__Output>
      GroupSendResponse: MessageTypeDefinition<_chanlayer_v1_GroupSendResponse, _chanlayer_v1_GroupSendResponse__Output>
      ListGroupMembersRequest: MessageTypeDefinition<_chanlayer_v1_ListGroupMembersRequest, _chanlayer_v1_ListGroupMembersRequest__Output>
      ListGroupMembersResponse: MessageTypeDefinition<_chanlayer_v1_ListGroupMembersResponse, _chanlayer_v1_ListGroupMembersResponse__Output>
      OpenOperation: MessageTypeDefinition<_chanlayer_v1_OpenOperation, _chanlayer_v1_OpenOperation__Output>
      OperationResult: MessageTypeDefinition<_chanlayer_v1_OperationResult, _chanlayer_v1_OperationResult__Output>
      ReceiveCancelled: MessageTypeDefinition<_chanlayer_v1_ReceiveCancelled, _chanlayer_v1_ReceiveCancelled__Output>
      ReceiveFailed: MessageTypeDefinition<_chanlayer_v1_ReceiveFailed, _chanlayer_v1_ReceiveFailed__Output>
      ReceiveOperation: MessageTypeDefinition<_chanlayer_v1_ReceiveOperation, _chanlayer_v1_ReceiveOperation__Output>
      SendOperation: MessageTypeDefinition<_chanlayer_v1_SendOperation, _chanlayer_v1_SendOperation__Output>
      SendRequest: MessageTypeDefinition<_chanlayer_v1_SendRequest, _chanlayer_v1_SendRequest__Output>
      SendResponse: MessageTypeDefinition<_chanlayer_v1_SendResponse, _chanlayer_v1_SendResponse__Output>
      SessionCloseReason: EnumTypeDefinition
      SessionClosing: MessageTypeDefinition<_chanlayer_v1_SessionClosing, _chanlayer_v1_SessionClosing__Output>
      SessionEvent: MessageTypeDefinition<_chanlayer_v1_SessionEvent, _chanlayer_v1_SessionEvent__Output>
      SessionOpened: MessageTypeDefinition<_chanlayer_v1_SessionOpened, _chanlayer_v1_SessionOpened__Output>
      SessionOperation: MessageTypeDefinition<_chanlayer_v1_SessionOperation, _chanlayer_v1_SessionOperation__Output>
      SessionRequest: MessageTypeDefinition<_chanlayer_v1_SessionRequest, _chanlayer_v1_SessionRequest__Output>
      SessionResponse: MessageTypeDefinition<_chanlayer_v1_SessionResponse, _chanlayer_v1_SessionResponse__Output>
      SharedDelivery: MessageTypeDefinition<_chanlayer_v1_SharedDelivery, _chanlayer_v1_SharedDelivery__Output>
    }
  }
}

