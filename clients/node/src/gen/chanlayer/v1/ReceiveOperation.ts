// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * ReceiveOperation registers demand for messages of one channel.
 * 
 * The server answers with exactly one `Delivery` carrying between one and
 * `max_messages` messages: those already queued, or else the first one sent. On a stream
 * opened with `shared_deliveries`, that answer may instead be the receive's entry in a
 * `SharedDelivery` (one message).
 */
export interface ReceiveOperation {
  /**
   * The client's identifier of this receive; unique among the session's pending receives.
   */
  'receiveId'?: (number | string | Long);
  /**
   * The channel to receive from.
   */
  'channel'?: (string);
  /**
   * The largest number of queued messages to deliver at once. Zero means one. Only
   * readers that are alone on a channel (specific channels) should ask for more.
   */
  'maxMessages'?: (number);
}

/**
 * ReceiveOperation registers demand for messages of one channel.
 * 
 * The server answers with exactly one `Delivery` carrying between one and
 * `max_messages` messages: those already queued, or else the first one sent. On a stream
 * opened with `shared_deliveries`, that answer may instead be the receive's entry in a
 * `SharedDelivery` (one message).
 */
export interface ReceiveOperation__Output {
  /**
   * The client's identifier of this receive; unique among the session's pending receives.
   */
  'receiveId': (number);
  /**
   * The channel to receive from.
   */
  'channel': (string);
  /**
   * The largest number of queued messages to deliver at once. Zero means one. Only
   * readers that are alone on a channel (specific channels) should ask for more.
   */
  'maxMessages': (number);
}
