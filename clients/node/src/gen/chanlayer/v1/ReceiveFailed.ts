// Original file: proto/chanlayer/v1/channel_layer.proto

import type { ErrorDetail as _chanlayer_v1_ErrorDetail, ErrorDetail__Output as _chanlayer_v1_ErrorDetail__Output } from '../../chanlayer/v1/ErrorDetail.js';
import type { Long } from '@grpc/proto-loader';

/**
 * ReceiveFailed ends a receive without messages.
 */
export interface ReceiveFailed {
  /**
   * The receive that failed.
   */
  'receiveId'?: (number | string | Long);
  /**
   * Why it failed, for example INVALID_ARGUMENT / `INVALID_CHANNEL_NAME` or
   * RESOURCE_EXHAUSTED / `TOO_MANY_PENDING_RECEIVES`.
   */
  'error'?: (_chanlayer_v1_ErrorDetail | null);
}

/**
 * ReceiveFailed ends a receive without messages.
 */
export interface ReceiveFailed__Output {
  /**
   * The receive that failed.
   */
  'receiveId': (number);
  /**
   * Why it failed, for example INVALID_ARGUMENT / `INVALID_CHANNEL_NAME` or
   * RESOURCE_EXHAUSTED / `TOO_MANY_PENDING_RECEIVES`.
   */
  'error': (_chanlayer_v1_ErrorDetail__Output | null);
}
