// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * GetChannelResponse is the response of `GetChannel`.
 */
export interface GetChannelResponse {
  /**
   * The channel name.
   */
  'channel'?: (string);
  /**
   * How many unexpired messages wait in the channel.
   */
  'queuedMessages'?: (number);
  /**
   * The total size of those messages, in bytes.
   */
  'queuedBytes'?: (number | string | Long);
  /**
   * How many receives wait for a message on the channel.
   */
  'waitingReceives'?: (number);
  /**
   * How long the oldest queued message has waited, in milliseconds; zero when none does.
   */
  'oldestMessageAgeMs'?: (number | string | Long);
}

/**
 * GetChannelResponse is the response of `GetChannel`.
 */
export interface GetChannelResponse__Output {
  /**
   * The channel name.
   */
  'channel': (string);
  /**
   * How many unexpired messages wait in the channel.
   */
  'queuedMessages': (number);
  /**
   * The total size of those messages, in bytes.
   */
  'queuedBytes': (number);
  /**
   * How many receives wait for a message on the channel.
   */
  'waitingReceives': (number);
  /**
   * How long the oldest queued message has waited, in milliseconds; zero when none does.
   */
  'oldestMessageAgeMs': (number);
}
