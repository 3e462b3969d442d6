// Original file: proto/chanlayer/v1/channel_layer.proto

import type { CapacityRule as _chanlayer_v1_CapacityRule, CapacityRule__Output as _chanlayer_v1_CapacityRule__Output } from '../../chanlayer/v1/CapacityRule.js';
import type { Long } from '@grpc/proto-loader';

/**
 * GroupSendOperation is `GroupSend` on a session stream.
 */
export interface GroupSendOperation {
  /**
   * The client's identifier of this operation, echoed in its `OperationResult`.
   */
  'requestId'?: (number | string | Long);
  /**
   * The group name.
   */
  'group'?: (string);
  /**
   * The encoded message.
   */
  'message'?: (Buffer | Uint8Array | string);
  /**
   * The capacity of a member channel that no rule matches. Zero means 100.
   */
  'capacity'?: (number);
  /**
   * Per-channel capacities, tried in order; at most 64 rules.
   */
  'channelCapacity'?: (_chanlayer_v1_CapacityRule)[];
  /**
   * How long each copy may wait unread, in milliseconds. Zero means 60 000.
   */
  'expiryMs'?: (number | string | Long);
}

/**
 * GroupSendOperation is `GroupSend` on a session stream.
 */
export interface GroupSendOperation__Output {
  /**
   * The client's identifier of this operation, echoed in its `OperationResult`.
   */
  'requestId': (number);
  /**
   * The group name.
   */
  'group': (string);
  /**
   * The encoded message.
   */
  'message': (Buffer);
  /**
   * The capacity of a member channel that no rule matches. Zero means 100.
   */
  'capacity': (number);
  /**
   * Per-channel capacities, tried in order; at most 64 rules.
   */
  'channelCapacity': (_chanlayer_v1_CapacityRule__Output)[];
  /**
   * How long each copy may wait unread, in milliseconds. Zero means 60 000.
   */
  'expiryMs': (number);
}
