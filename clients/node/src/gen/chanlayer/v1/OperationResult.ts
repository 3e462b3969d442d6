// Original file: proto/chanlayer/v1/channel_layer.proto

import type { ErrorDetail as _chanlayer_v1_ErrorDetail, ErrorDetail__Output as _chanlayer_v1_ErrorDetail__Output } from '../../chanlayer/v1/ErrorDetail.js';
import type { Long } from '@grpc/proto-loader';

/**
 * OperationResult acknowledges a send or group operation.
 */
export interface OperationResult {
  /**
   * The `request_id` of the operation.
   */
  'requestId'?: (number | string | Long);
  /**
   * Why the operation failed; absent when it succeeded.
   */
  'error'?: (_chanlayer_v1_ErrorDetail | null);
  /**
   * For `send`: true when the message was handed straight to a waiting receive.
   */
  'delivered'?: (boolean);
  /**
   * For `group_send`: how many members got the message.
   */
  'deliveredCount'?: (number);
  /**
   * For `group_send`: how many members were full and did not get it.
   */
  'droppedCount'?: (number);
  /**
   * For `group_add`: true when the channel was not a member before; for
   * `group_discard`: true when it was.
   */
  'changed'?: (boolean);
  /**
   * For a `send` that succeeded: how many messages the channel holds once this
   * one is queued, counted against its capacity (0 when the message went
   * straight to a waiting receive). A client may use it to tell how far a
   * channel is from full, and so whether it can let its next sends to that
   * channel complete before their results arrive. Absent for other operations,
   * for failures, for a normal channel that a cluster shares through JetStream
   * (the stream alone counts its messages), and from servers older than this
   * field.
   */
  'queued'?: (number);
  '_queued'?: "queued";
}

/**
 * OperationResult acknowledges a send or group operation.
 */
export interface OperationResult__Output {
  /**
   * The `request_id` of the operation.
   */
  'requestId': (number);
  /**
   * Why the operation failed; absent when it succeeded.
   */
  'error': (_chanlayer_v1_ErrorDetail__Output | null);
  /**
   * For `send`: true when the message was handed straight to a waiting receive.
   */
  'delivered': (boolean);
  /**
   * For `group_send`: how many members got the message.
   */
  'deliveredCount': (number);
  /**
   * For `group_send`: how many members were full and did not get it.
   */
  'droppedCount': (number);
  /**
   * For `group_add`: true when the channel was not a member before; for
   * `group_discard`: true when it was.
   */
  'changed': (boolean);
  /**
   * For a `send` that succeeded: how many messages the channel holds once this
   * one is queued, counted against its capacity (0 when the message went
   * straight to a waiting receive). A client may use it to tell how far a
   * channel is from full, and so whether it can let its next sends to that
   * channel complete before their results arrive. Absent for other operations,
   * for failures, for a normal channel that a cluster shares through JetStream
   * (the stream alone counts its messages), and from servers older than this
   * field.
   */
  'queued'?: (number);
  '_queued'?: "queued";
}
