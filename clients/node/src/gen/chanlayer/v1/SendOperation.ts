// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * SendOperation is `Send` on a session stream.
 */
export interface SendOperation {
  /**
   * The client's identifier of this operation, echoed in its `OperationResult`.
   */
  'requestId'?: (number | string | Long);
  /**
   * The channel name.
   */
  'channel'?: (string);
  /**
   * The encoded message.
   */
  'message'?: (Buffer | Uint8Array | string);
  /**
   * The capacity of the channel. Zero means the default of 100.
   */
  'capacity'?: (number);
  /**
   * How long the message may wait unread, in milliseconds. Zero means 60 000.
   */
  'expiryMs'?: (number | string | Long);
}

/**
 * SendOperation is `Send` on a session stream.
 */
export interface SendOperation__Output {
  /**
   * The client's identifier of this operation, echoed in its `OperationResult`.
   */
  'requestId': (number);
  /**
   * The channel name.
   */
  'channel': (string);
  /**
   * The encoded message.
   */
  'message': (Buffer);
  /**
   * The capacity of the channel. Zero means the default of 100.
   */
  'capacity': (number);
  /**
   * How long the message may wait unread, in milliseconds. Zero means 60 000.
   */
  'expiryMs': (number);
}
