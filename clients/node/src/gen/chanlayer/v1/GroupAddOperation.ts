// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * GroupAddOperation is `GroupAdd` on a session stream.
 */
export interface GroupAddOperation {
  /**
   * The client's identifier of this operation, echoed in its `OperationResult`.
   */
  'requestId'?: (number | string | Long);
  /**
   * The group name.
   */
  'group'?: (string);
  /**
   * The channel to add.
   */
  'channel'?: (string);
  /**
   * How long the membership lasts, in seconds. Zero means 86 400.
   */
  'groupExpirySeconds'?: (number | string | Long);
}

/**
 * GroupAddOperation is `GroupAdd` on a session stream.
 */
export interface GroupAddOperation__Output {
  /**
   * The client's identifier of this operation, echoed in its `OperationResult`.
   */
  'requestId': (number);
  /**
   * The group name.
   */
  'group': (string);
  /**
   * The channel to add.
   */
  'channel': (string);
  /**
   * How long the membership lasts, in seconds. Zero means 86 400.
   */
  'groupExpirySeconds': (number);
}
