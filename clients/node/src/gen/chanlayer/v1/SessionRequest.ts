// Original file: proto/chanlayer/v1/channel_layer.proto

import type { SessionOperation as _chanlayer_v1_SessionOperation, SessionOperation__Output as _chanlayer_v1_SessionOperation__Output } from '../../chanlayer/v1/SessionOperation.js';

/**
 * SessionRequest is one frame from the client: a batch of operations, served in order.
 */
export interface SessionRequest {
  /**
   * The operations of this frame.
   */
  'operations'?: (_chanlayer_v1_SessionOperation)[];
}

/**
 * SessionRequest is one frame from the client: a batch of operations, served in order.
 */
export interface SessionRequest__Output {
  /**
   * The operations of this frame.
   */
  'operations': (_chanlayer_v1_SessionOperation__Output)[];
}
