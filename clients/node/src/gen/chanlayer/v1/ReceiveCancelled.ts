// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * ReceiveCancelled answers `cancel`.
 */
export interface ReceiveCancelled {
  /**
   * The receive that was to be withdrawn.
   */
  'receiveId'?: (number | string | Long);
  /**
   * True when the receive was pending and is now withdrawn, so no `Delivery` will come
   * for it. False when it was not pending: it was already answered (its `Delivery` comes
   * before this event on the stream) or it never existed.
   */
  'wasPending'?: (boolean);
}

/**
 * ReceiveCancelled answers `cancel`.
 */
export interface ReceiveCancelled__Output {
  /**
   * The receive that was to be withdrawn.
   */
  'receiveId': (number);
  /**
   * True when the receive was pending and is now withdrawn, so no `Delivery` will come
   * for it. False when it was not pending: it was already answered (its `Delivery` comes
   * before this event on the stream) or it never existed.
   */
  'wasPending': (boolean);
}
