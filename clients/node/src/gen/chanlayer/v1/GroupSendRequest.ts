// Original file: proto/chanlayer/v1/channel_layer.proto

import type { CapacityRule as _chanlayer_v1_CapacityRule, CapacityRule__Output as _chanlayer_v1_CapacityRule__Output } from '../../chanlayer/v1/CapacityRule.js';
import type { Long } from '@grpc/proto-loader';

/**
 * GroupSendRequest is the request of `GroupSend`.
 */
export interface GroupSendRequest {
  /**
   * The namespace of the group.
   */
  'namespace'?: (string);
  /**
   * The group name.
   */
  'group'?: (string);
  /**
   * The encoded message, shared by every member.
   */
  'message'?: (Buffer | Uint8Array | string);
  /**
   * The capacity of a member channel that no rule of `channel_capacity` matches. Zero
   * means the default of 100.
   */
  'capacity'?: (number);
  /**
   * Per-channel capacities, tried in order; at most 64 rules.
   */
  'channelCapacity'?: (_chanlayer_v1_CapacityRule)[];
  /**
   * How long each copy may wait unread, in milliseconds. Zero means the default of 60 000.
   */
  'expiryMs'?: (number | string | Long);
}

/**
 * GroupSendRequest is the request of `GroupSend`.
 */
export interface GroupSendRequest__Output {
  /**
   * The namespace of the group.
   */
  'namespace': (string);
  /**
   * The group name.
   */
  'group': (string);
  /**
   * The encoded message, shared by every member.
   */
  'message': (Buffer);
  /**
   * The capacity of a member channel that no rule of `channel_capacity` matches. Zero
   * means the default of 100.
   */
  'capacity': (number);
  /**
   * Per-channel capacities, tried in order; at most 64 rules.
   */
  'channelCapacity': (_chanlayer_v1_CapacityRule__Output)[];
  /**
   * How long each copy may wait unread, in milliseconds. Zero means the default of 60 000.
   */
  'expiryMs': (number);
}
