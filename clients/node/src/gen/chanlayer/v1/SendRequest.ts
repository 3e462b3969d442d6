// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * SendRequest is the request of `Send`.
 */
export interface SendRequest {
  /**
   * The namespace (Django's channel layer `prefix`) that isolates one application's
   * channels and groups from another's on the same server. Empty is a valid namespace.
   */
  'namespace'?: (string);
  /**
   * The channel name, following Django Channels' rules: ASCII letters, digits, `-`, `_`
   * and `.`, optionally followed by one `!` and a local part, fewer than 100 characters.
   */
  'channel'?: (string);
  /**
   * The encoded message. Opaque to the server.
   */
  'message'?: (Buffer | Uint8Array | string);
  /**
   * The capacity of the channel: the send fails when the channel already holds this many
   * unexpired messages. Zero means the default of 100.
   */
  'capacity'?: (number);
  /**
   * How long the message may wait unread before it is dropped, in milliseconds. Zero means
   * the default of 60 000 (60 seconds).
   */
  'expiryMs'?: (number | string | Long);
}

/**
 * SendRequest is the request of `Send`.
 */
export interface SendRequest__Output {
  /**
   * The namespace (Django's channel layer `prefix`) that isolates one application's
   * channels and groups from another's on the same server. Empty is a valid namespace.
   */
  'namespace': (string);
  /**
   * The channel name, following Django Channels' rules: ASCII letters, digits, `-`, `_`
   * and `.`, optionally followed by one `!` and a local part, fewer than 100 characters.
   */
  'channel': (string);
  /**
   * The encoded message. Opaque to the server.
   */
  'message': (Buffer);
  /**
   * The capacity of the channel: the send fails when the channel already holds this many
   * unexpired messages. Zero means the default of 100.
   */
  'capacity': (number);
  /**
   * How long the message may wait unread before it is dropped, in milliseconds. Zero means
   * the default of 60 000 (60 seconds).
   */
  'expiryMs': (number);
}
