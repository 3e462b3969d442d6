// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * CancelOperation withdraws a pending receive.
 */
export interface CancelOperation {
  /**
   * The receive to withdraw.
   */
  'receiveId'?: (number | string | Long);
}

/**
 * CancelOperation withdraws a pending receive.
 */
export interface CancelOperation__Output {
  /**
   * The receive to withdraw.
   */
  'receiveId': (number);
}
