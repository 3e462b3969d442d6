// Original file: proto/chanlayer/v1/channel_layer.proto

import type { DeliveredMessage as _chanlayer_v1_DeliveredMessage, DeliveredMessage__Output as _chanlayer_v1_DeliveredMessage__Output } from '../../chanlayer/v1/DeliveredMessage.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Delivery answers a receive with one or more messages, oldest first.
 */
export interface Delivery {
  /**
   * The receive this answers.
   */
  'receiveId'?: (number | string | Long);
  /**
   * The channel the messages come from.
   */
  'channel'?: (string);
  /**
   * The messages, in channel order.
   */
  'messages'?: (_chanlayer_v1_DeliveredMessage)[];
}

/**
 * Delivery answers a receive with one or more messages, oldest first.
 */
export interface Delivery__Output {
  /**
   * The receive this answers.
   */
  'receiveId': (number);
  /**
   * The channel the messages come from.
   */
  'channel': (string);
  /**
   * The messages, in channel order.
   */
  'messages': (_chanlayer_v1_DeliveredMessage__Output)[];
}
