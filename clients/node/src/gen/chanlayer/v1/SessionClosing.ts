// Original file: proto/chanlayer/v1/channel_layer.proto

import type { SessionCloseReason as _chanlayer_v1_SessionCloseReason, SessionCloseReason__Output as _chanlayer_v1_SessionCloseReason__Output } from '../../chanlayer/v1/SessionCloseReason.js';

/**
 * SessionClosing says the server ends the stream after this frame.
 */
export interface SessionClosing {
  /**
   * Why the stream ends.
   */
  'reason'?: (_chanlayer_v1_SessionCloseReason);
}

/**
 * SessionClosing says the server ends the stream after this frame.
 */
export interface SessionClosing__Output {
  /**
   * Why the stream ends.
   */
  'reason': (_chanlayer_v1_SessionCloseReason__Output);
}
