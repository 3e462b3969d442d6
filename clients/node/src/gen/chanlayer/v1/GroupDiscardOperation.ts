// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * GroupDiscardOperation is `GroupDiscard` on a session stream.
 */
export interface GroupDiscardOperation {
  /**
   * The client's identifier of this operation, echoed in its `OperationResult`.
   */
  'requestId'?: (number | string | Long);
  /**
   * The group name.
   */
  'group'?: (string);
  /**
   * The channel to remove.
   */
  'channel'?: (string);
}

/**
 * GroupDiscardOperation is `GroupDiscard` on a session stream.
 */
export interface GroupDiscardOperation__Output {
  /**
   * The client's identifier of this operation, echoed in its `OperationResult`.
   */
  'requestId': (number);
  /**
   * The group name.
   */
  'group': (string);
  /**
   * The channel to remove.
   */
  'channel': (string);
}
