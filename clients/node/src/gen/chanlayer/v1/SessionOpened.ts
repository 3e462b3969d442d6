// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * SessionOpened answers `open`.
 */
export interface SessionOpened {
  /**
   * The session's client prefix, the proposed one or one the server chose.
   */
  'clientPrefix'?: (string);
  /**
   * The token that resumes this session on a new stream within the lease grace period.
   * Keep it secret: it grants the session's channels.
   */
  'resumeToken'?: (string);
  /**
   * True when an earlier stream's session was taken over.
   */
  'resumed'?: (boolean);
  /**
   * How long the session survives without a stream, in milliseconds.
   */
  'leaseGraceMs'?: (number | string | Long);
  /**
   * The largest message the server accepts, in bytes.
   */
  'maxMessageBytes'?: (number | string | Long);
  /**
   * The largest number of pending receives the session may hold.
   */
  'maxPendingReceives'?: (number);
}

/**
 * SessionOpened answers `open`.
 */
export interface SessionOpened__Output {
  /**
   * The session's client prefix, the proposed one or one the server chose.
   */
  'clientPrefix': (string);
  /**
   * The token that resumes this session on a new stream within the lease grace period.
   * Keep it secret: it grants the session's channels.
   */
  'resumeToken': (string);
  /**
   * True when an earlier stream's session was taken over.
   */
  'resumed': (boolean);
  /**
   * How long the session survives without a stream, in milliseconds.
   */
  'leaseGraceMs': (number);
  /**
   * The largest message the server accepts, in bytes.
   */
  'maxMessageBytes': (number);
  /**
   * The largest number of pending receives the session may hold.
   */
  'maxPendingReceives': (number);
}
