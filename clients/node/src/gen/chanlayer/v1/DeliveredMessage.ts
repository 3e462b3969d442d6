// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * DeliveredMessage is one message taken from a channel.
 */
export interface DeliveredMessage {
  /**
   * The encoded message.
   */
  'message'?: (Buffer | Uint8Array | string);
  /**
   * How long until the message expires, in milliseconds. A client that buffers messages
   * it received ahead of time must drop them once this has passed.
   */
  'expiresInMs'?: (number | string | Long);
}

/**
 * DeliveredMessage is one message taken from a channel.
 */
export interface DeliveredMessage__Output {
  /**
   * The encoded message.
   */
  'message': (Buffer);
  /**
   * How long until the message expires, in milliseconds. A client that buffers messages
   * it received ahead of time must drop them once this has passed.
   */
  'expiresInMs': (number);
}
