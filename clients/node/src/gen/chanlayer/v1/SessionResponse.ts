// Original file: proto/chanlayer/v1/channel_layer.proto

import type { SessionEvent as _chanlayer_v1_SessionEvent, SessionEvent__Output as _chanlayer_v1_SessionEvent__Output } from '../../chanlayer/v1/SessionEvent.js';

/**
 * SessionResponse is one frame from the server: a batch of events.
 */
export interface SessionResponse {
  /**
   * The events of this frame, in the order they happened.
   */
  'events'?: (_chanlayer_v1_SessionEvent)[];
}

/**
 * SessionResponse is one frame from the server: a batch of events.
 */
export interface SessionResponse__Output {
  /**
   * The events of this frame, in the order they happened.
   */
  'events': (_chanlayer_v1_SessionEvent__Output)[];
}
