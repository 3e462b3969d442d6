// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * GroupAddRequest is the request of `GroupAdd`.
 */
export interface GroupAddRequest {
  /**
   * The namespace of the group and the channel.
   */
  'namespace'?: (string);
  /**
   * The group name: ASCII letters, digits, `-`, `_` and `.`, fewer than 100 characters.
   */
  'group'?: (string);
  /**
   * The channel to add.
   */
  'channel'?: (string);
  /**
   * How long the membership lasts after this call, in seconds. Zero means the default of
   * 86 400 (one day).
   */
  'groupExpirySeconds'?: (number | string | Long);
}

/**
 * GroupAddRequest is the request of `GroupAdd`.
 */
export interface GroupAddRequest__Output {
  /**
   * The namespace of the group and the channel.
   */
  'namespace': (string);
  /**
   * The group name: ASCII letters, digits, `-`, `_` and `.`, fewer than 100 characters.
   */
  'group': (string);
  /**
   * The channel to add.
   */
  'channel': (string);
  /**
   * How long the membership lasts after this call, in seconds. Zero means the default of
   * 86 400 (one day).
   */
  'groupExpirySeconds': (number);
}
