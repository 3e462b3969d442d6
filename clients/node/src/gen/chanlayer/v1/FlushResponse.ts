// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * FlushResponse is the response of `Flush`.
 */
export interface FlushResponse {
  /**
   * How many queued messages were dropped.
   */
  'droppedMessages'?: (number | string | Long);
  /**
   * How many groups were removed.
   */
  'removedGroups'?: (number | string | Long);
}

/**
 * FlushResponse is the response of `Flush`.
 */
export interface FlushResponse__Output {
  /**
   * How many queued messages were dropped.
   */
  'droppedMessages': (number);
  /**
   * How many groups were removed.
   */
  'removedGroups': (number);
}
