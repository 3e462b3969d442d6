// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * SharedDelivery answers several receives with one message each, the same message: what a
 * `GroupSend` gives the members of a group whose receives wait on one stream. It stands for
 * one `Delivery` per receive id, with one message, in the order of `receive_ids`; the
 * channel of each is the one its receive named. Sent only on streams whose `open` set
 * `shared_deliveries`.
 */
export interface SharedDelivery {
  /**
   * The receives this answers, in delivery order.
   */
  'receiveIds'?: (number | string | Long)[];
  /**
   * The encoded message, delivered once to each receive.
   */
  'message'?: (Buffer | Uint8Array | string);
  /**
   * How long until the message expires, in milliseconds, as in `DeliveredMessage`.
   */
  'expiresInMs'?: (number | string | Long);
}

/**
 * SharedDelivery answers several receives with one message each, the same message: what a
 * `GroupSend` gives the members of a group whose receives wait on one stream. It stands for
 * one `Delivery` per receive id, with one message, in the order of `receive_ids`; the
 * channel of each is the one its receive named. Sent only on streams whose `open` set
 * `shared_deliveries`.
 */
export interface SharedDelivery__Output {
  /**
   * The receives this answers, in delivery order.
   */
  'receiveIds': (number)[];
  /**
   * The encoded message, delivered once to each receive.
   */
  'message': (Buffer);
  /**
   * How long until the message expires, in milliseconds, as in `DeliveredMessage`.
   */
  'expiresInMs': (number);
}
