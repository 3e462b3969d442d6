// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * GroupMember is one member of a group.
 */
export interface GroupMember {
  /**
   * The member channel's name.
   */
  'channel'?: (string);
  /**
   * How long until the membership expires, in milliseconds.
   */
  'expiresInMs'?: (number | string | Long);
}

/**
 * GroupMember is one member of a group.
 */
export interface GroupMember__Output {
  /**
   * The member channel's name.
   */
  'channel': (string);
  /**
   * How long until the membership expires, in milliseconds.
   */
  'expiresInMs': (number);
}
